-- The whole schema of ARCHITECTURE.md, including the tables later features
-- use (outbox, processed_events, job_leases), so they add no schema churn.

CREATE TABLE users (
    id            BIGSERIAL PRIMARY KEY,
    email         TEXT NOT NULL UNIQUE,
    nickname      TEXT NOT NULL,
    password_hash TEXT NOT NULL,
    role          TEXT NOT NULL DEFAULT 'USER' CHECK (role IN ('USER', 'ADMIN')),
    created_at    TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE TABLE concerts (
    id          BIGSERIAL PRIMARY KEY,
    title       TEXT NOT NULL,
    artist      TEXT NOT NULL,
    venue       TEXT NOT NULL,
    description TEXT NOT NULL DEFAULT '',
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE TABLE concert_schedules (
    id              BIGSERIAL PRIMARY KEY,
    concert_id      BIGINT NOT NULL REFERENCES concerts (id) ON DELETE CASCADE,
    starts_at       TIMESTAMPTZ NOT NULL,
    total_seats     INTEGER NOT NULL CHECK (total_seats >= 0),
    -- Invariant 2 (sold + held <= capacity) as a constraint on the counter.
    available_seats INTEGER NOT NULL CHECK (available_seats BETWEEN 0 AND total_seats),
    created_at      TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX concert_schedules_concert ON concert_schedules (concert_id);

CREATE TABLE seats (
    id          BIGSERIAL PRIMARY KEY,
    schedule_id BIGINT NOT NULL REFERENCES concert_schedules (id) ON DELETE CASCADE,
    section     TEXT NOT NULL,
    row_number  INTEGER NOT NULL,
    seat_number INTEGER NOT NULL,
    price       BIGINT NOT NULL CHECK (price >= 0),
    status      TEXT NOT NULL DEFAULT 'AVAILABLE' CHECK (status IN ('AVAILABLE', 'HELD', 'RESERVED')),
    version     BIGINT NOT NULL DEFAULT 0,
    UNIQUE (schedule_id, section, row_number, seat_number)
);
CREATE INDEX seats_schedule_status ON seats (schedule_id, status);

CREATE TABLE reservations (
    id              BIGSERIAL PRIMARY KEY,
    user_id         BIGINT NOT NULL REFERENCES users (id),
    schedule_id     BIGINT NOT NULL REFERENCES concert_schedules (id) ON DELETE RESTRICT,
    status          TEXT NOT NULL CHECK (status IN ('PENDING', 'CONFIRMED', 'CANCELLED', 'EXPIRED')),
    total_amount    BIGINT NOT NULL CHECK (total_amount >= 0),
    expires_at      TIMESTAMPTZ NOT NULL,
    idempotency_key TEXT,
    created_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    UNIQUE (user_id, idempotency_key)
);
CREATE INDEX reservations_user ON reservations (user_id, created_at DESC);
CREATE INDEX reservations_pending_expiry ON reservations (expires_at) WHERE status = 'PENDING';

CREATE TABLE reservation_seats (
    reservation_id BIGINT NOT NULL REFERENCES reservations (id) ON DELETE CASCADE,
    seat_id        BIGINT NOT NULL REFERENCES seats (id),
    -- True while the reservation is PENDING or CONFIRMED.
    active         BOOLEAN NOT NULL DEFAULT TRUE,
    PRIMARY KEY (reservation_id, seat_id)
);
-- Invariant 1, the last word for every strategy: a seat is in at most one
-- active reservation, whatever the application or Redis believes.
CREATE UNIQUE INDEX reservation_seats_one_active ON reservation_seats (seat_id) WHERE active;

CREATE TABLE payments (
    id              BIGSERIAL PRIMARY KEY,
    reservation_id  BIGINT NOT NULL UNIQUE REFERENCES reservations (id),
    user_id         BIGINT NOT NULL REFERENCES users (id),
    amount          BIGINT NOT NULL CHECK (amount >= 0),
    status          TEXT NOT NULL CHECK (status IN ('COMPLETED')),
    idempotency_key TEXT,
    created_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    UNIQUE (user_id, idempotency_key)
);

CREATE TABLE outbox (
    id           BIGSERIAL PRIMARY KEY,
    topic        TEXT NOT NULL,
    key          TEXT NOT NULL,
    payload      JSONB NOT NULL,
    headers      JSONB NOT NULL DEFAULT '{}',
    created_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    published_at TIMESTAMPTZ
);
CREATE INDEX outbox_unpublished ON outbox (id) WHERE published_at IS NULL;

CREATE TABLE processed_events (
    consumer     TEXT NOT NULL,
    event_id     TEXT NOT NULL,
    processed_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (consumer, event_id)
);

CREATE TABLE job_leases (
    name         TEXT PRIMARY KEY,
    locked_until TIMESTAMPTZ NOT NULL,
    locked_at    TIMESTAMPTZ NOT NULL,
    locked_by    TEXT NOT NULL
);
