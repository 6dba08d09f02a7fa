# concert-booking — common tasks. `just` lists them.
# Install just with `pip install rust-just` (or `cargo install just`).

set shell := ["bash", "-euo", "pipefail", "-c"]

# Where the services are; exported so cargo and the test binaries see them.
export DATABASE_URL := env_var_or_default("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/postgres")
export REDIS_URL := env_var_or_default("REDIS_URL", "redis://127.0.0.1:6379")
export KAFKA_BROKERS := env_var_or_default("KAFKA_BROKERS", "127.0.0.1:9092")

# List the recipes
default:
    @just --list

# Start PostgreSQL, Redis and the Kafka-compatible broker natively (installs what is missing)
infra-up:
    deploy/local/up

# Stop what infra-up started
infra-down:
    deploy/local/down

# Run the API in embedded mode (in-memory adapters, no services)
run:
    cargo run --release -p booking-api -- serve

# Run the API against PostgreSQL (and Redis) with a seat-locking strategy: pessimistic, optimistic or redis
run-db strategy="pessimistic": infra-up
    BOOKING__DATABASE__URL="$DATABASE_URL" BOOKING__REDIS__URL="$REDIS_URL" BOOKING__EVENTS__KAFKA_BROKERS="$KAFKA_BROKERS" BOOKING_JWT_SECRET="${BOOKING_JWT_SECRET:-dev-only-secret-change-me-0123456789}" cargo run --release -p booking-api -- serve --strategy {{strategy}}

# Two instances (127.0.0.1:8081, :8082) behind nginx on 127.0.0.1:8080, natively, for benchmarks: pessimistic, optimistic or redis
run-cluster strategy="pessimistic": infra-up
    deploy/local/cluster start {{strategy}}

# Stop what run-cluster started
stop-cluster:
    deploy/local/cluster stop

# Set the Redis stock of every schedule from the database (the redis strategy)
reconcile-stock: infra-up
    BOOKING__DATABASE__URL="$DATABASE_URL" BOOKING__REDIS__URL="$REDIS_URL" cargo run --release -p booking-api -- reconcile-stock

# Apply the database migrations
migrate: infra-up
    BOOKING__DATABASE__URL="$DATABASE_URL" cargo run -p booking-api -- migrate

# Run all tests (integration tests use DATABASE_URL and REDIS_URL)
test: infra-up
    cargo test --workspace

# Check formatting and clippy (warnings are errors)
lint:
    cargo fmt --all --check
    cargo clippy --workspace --all-targets -- -D warnings
