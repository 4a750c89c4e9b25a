-- Each row inserted into a table with a foreign key runs a check that reads the parent row and
-- locks it (FOR KEY SHARE) until commit. Every event, delivery and attempt of a program names
-- the same program row, and every delivery and attempt of a webhook the same webhook row, which
-- the results also update (its counters): concurrent ingest, result and claim transactions lock
-- the same few rows, and each lock taken beside another one creates a multixact (a shared list
-- of lockers that PostgreSQL writes to its own log). Measured flat out: deliveries 15% faster
-- without these checks. The references hold without them: programs and webhooks are never
-- deleted (a deleted webhook is marked so), ingest writes nothing unless every delivery names a
-- webhook of its event's program, and an attempt is written for a delivery or webhook Herald
-- has just read. Other tables keep their keys.
ALTER TABLE events DROP CONSTRAINT IF EXISTS events_program_id_fkey;
ALTER TABLE deliveries DROP CONSTRAINT IF EXISTS deliveries_program_id_fkey;
ALTER TABLE deliveries DROP CONSTRAINT IF EXISTS deliveries_webhook_id_fkey;
ALTER TABLE attempts DROP CONSTRAINT IF EXISTS attempts_program_id_fkey;
ALTER TABLE attempts DROP CONSTRAINT IF EXISTS attempts_webhook_id_fkey;
