DROP FUNCTION claim_all_or_nothing(BIGINT, INTEGER);
