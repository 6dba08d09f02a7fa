DROP TABLE buyer_seats;
ALTER TABLE concert_schedules DROP COLUMN sales_open_at, DROP COLUMN max_seats_per_buyer;
