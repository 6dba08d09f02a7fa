-- Sale settings of a schedule: when its sale opens (NULL: open now) and how
-- many seats one user may have of it at once.
ALTER TABLE concert_schedules
    ADD COLUMN sales_open_at TIMESTAMPTZ,
    ADD COLUMN max_seats_per_buyer INTEGER NOT NULL DEFAULT 4
        CHECK (max_seats_per_buyer BETWEEN 1 AND 100);

-- The seats a user has of a schedule in PENDING and CONFIRMED reservations.
-- Every hold statement adds to its row (INSERT .. ON CONFLICT DO UPDATE), so
-- concurrent holds of one user wait for each other on this row, and the
-- CHECK aborts the whole statement, seats claimed by its earlier CTEs
-- included, when the hold would pass the limit. Cancel and expiry subtract.
-- `max_seats` is the schedule's limit as of the user's last hold.
CREATE TABLE buyer_seats (
    schedule_id BIGINT NOT NULL REFERENCES concert_schedules (id) ON DELETE CASCADE,
    user_id     BIGINT NOT NULL REFERENCES users (id),
    seats       INTEGER NOT NULL CONSTRAINT buyer_seats_not_negative CHECK (seats >= 0),
    max_seats   INTEGER NOT NULL,
    PRIMARY KEY (schedule_id, user_id),
    CONSTRAINT buyer_seats_within_limit CHECK (seats <= max_seats)
);

-- What users already have; a limit they are over stays theirs until they
-- go under it.
INSERT INTO buyer_seats (schedule_id, user_id, seats, max_seats)
SELECT r.schedule_id, r.user_id, count(*), GREATEST(count(*), max(s.max_seats_per_buyer))
  FROM reservations r
  JOIN reservation_seats rs ON rs.reservation_id = r.id
  JOIN concert_schedules s ON s.id = r.schedule_id
 WHERE r.status IN ('PENDING', 'CONFIRMED')
 GROUP BY r.schedule_id, r.user_id;
