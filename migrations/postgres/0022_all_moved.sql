-- The recorder writes a batch of results in one statement, as if every delivery moved on (as
-- nearly all do). Its last step checks that they did; this function fails the statement when
-- they did not, so nothing of it is written, and Herald records that batch again in a
-- transaction that sorts out the superseded ones (SQLSTATE HR001 tells it so).
CREATE OR REPLACE FUNCTION herald_all_moved(ok BOOLEAN) RETURNS BOOLEAN
LANGUAGE plpgsql AS $$
BEGIN
    IF NOT ok THEN
        RAISE EXCEPTION 'a delivery in this batch of results had moved on; recording it apart'
            USING ERRCODE = 'HR001';
    END IF;
    RETURN TRUE;
END
$$;
