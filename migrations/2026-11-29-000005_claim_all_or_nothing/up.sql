-- The optimistic strategy holds seats in one statement: it claims each seat
-- against the version it read, and a claim that lost a race matches no row.
-- If it won some seats and lost others, the statement must not commit the
-- winners: this aborts it (SQLSTATE 40001, serialization_failure), so the
-- whole statement rolls back and the hold is retried. True when every seat
-- was claimed, false when none was (nothing to undo).
CREATE FUNCTION claim_all_or_nothing(claimed BIGINT, wanted INTEGER) RETURNS BOOLEAN
LANGUAGE plpgsql AS $$
BEGIN
    IF claimed > 0 AND claimed < wanted THEN
        RAISE EXCEPTION 'claimed % of % seats: lost a race for the others', claimed, wanted
            USING ERRCODE = 'serialization_failure';
    END IF;
    RETURN claimed = wanted;
END
$$;
