DROP INDEX IF EXISTS processed_events_processed_at;
DROP INDEX IF EXISTS outbox_published_at;
