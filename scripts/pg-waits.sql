-- What PostgreSQL's client backends are doing while a benchmark runs: 600 samples of
-- pg_stat_activity, 10 ms apart, then the share of each state and wait event, and of each
-- statement's. Run beside `herald bench --database postgres://...` (start it a few seconds in):
--   psql -h 127.0.0.1 -U postgres -d postgres -f scripts/pg-waits.sql
-- A wait event of NULL while active is CPU; `ClientRead` while idle in a transaction is the
-- backend waiting for Herald's next statement.
CREATE TEMP TABLE samples (n int, pid int, state text, wait_type text, wait_event text, query text);
DO $$ BEGIN FOR i IN 1..600 LOOP
  PERFORM pg_stat_clear_snapshot();
  INSERT INTO samples SELECT i, pid, state, wait_event_type, wait_event, left(query, 40)
    FROM pg_stat_activity
   WHERE backend_type = 'client backend' AND pid <> pg_backend_pid() AND datname <> 'postgres';
  PERFORM pg_sleep(0.01);
END LOOP; END $$;
SELECT state, coalesce(wait_type, '-') AS wait_type, coalesce(wait_event, 'CPU') AS wait_event,
       count(*), round(100.0 * count(*) / sum(count(*)) OVER (), 1) AS pct
  FROM samples WHERE state <> 'idle' GROUP BY 1, 2, 3 ORDER BY 4 DESC LIMIT 20;
SELECT query, coalesce(wait_event, 'CPU') AS wait_event, count(*)
  FROM samples WHERE state = 'active' GROUP BY 1, 2 ORDER BY 3 DESC LIMIT 25;
