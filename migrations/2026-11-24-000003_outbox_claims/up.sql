-- Relay claims: a relay takes a batch for a while, so two relays do not
-- publish the same rows while both run; a dead relay's claim runs out.
ALTER TABLE outbox ADD COLUMN claimed_by TEXT, ADD COLUMN claimed_until TIMESTAMPTZ;
