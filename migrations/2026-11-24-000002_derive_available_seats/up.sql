-- A schedule's available seats are counted from the seats themselves (index
-- seats_schedule_status) instead of a counter every hold, cancel and expiry
-- must update: that counter row was a per-schedule lock that serialised all
-- holds of a schedule, whatever the strategy.
ALTER TABLE concert_schedules DROP COLUMN available_seats;
