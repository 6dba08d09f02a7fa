ALTER TABLE concert_schedules ADD COLUMN available_seats INTEGER NOT NULL DEFAULT 0;
UPDATE concert_schedules c
   SET available_seats = (SELECT count(*) FROM seats s WHERE s.schedule_id = c.id AND s.status = 'AVAILABLE');
ALTER TABLE concert_schedules ADD CHECK (available_seats BETWEEN 0 AND total_seats);
