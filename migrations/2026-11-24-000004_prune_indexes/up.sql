-- The row pruner deletes the oldest published outbox rows and processed-event
-- marks in batches; these let each batch find them without a full scan.
CREATE INDEX outbox_published_at ON outbox (published_at) WHERE published_at IS NOT NULL;
CREATE INDEX processed_events_processed_at ON processed_events (processed_at);
