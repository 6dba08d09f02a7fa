-- The operator's monitor reads one schedule's reservations every second:
-- those made in the last seconds (holds per second) and the active ones (the
-- oversell guard). Without this index both scan every reservation.
CREATE INDEX reservations_schedule_created ON reservations (schedule_id, created_at);
