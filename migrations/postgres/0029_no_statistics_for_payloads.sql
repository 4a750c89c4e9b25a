-- PostgreSQL keeps statistics on each column for the planner's estimates of conditions on it.
-- These columns are written and read back whole, never filtered, joined, grouped or sorted on,
-- yet every ANALYZE sampled and sorted them: up to 30,000 JSON header documents, request and
-- response bodies and error texts each time, and the statistics keeper analyzes the busy tables
-- as they grow. Sampling them was about a sixth of PostgreSQL's CPU in a batched run (`perf`,
-- README, Benchmarks, thirty-fourth sitting). A catalog change only: no table is rewritten, and
-- writes go on meanwhile.
ALTER TABLE attempts
    ALTER COLUMN request_url SET STATISTICS 0,
    ALTER COLUMN request_headers SET STATISTICS 0,
    ALTER COLUMN request_body SET STATISTICS 0,
    ALTER COLUMN response_headers SET STATISTICS 0,
    ALTER COLUMN response_body SET STATISTICS 0,
    ALTER COLUMN error SET STATISTICS 0;
ALTER TABLE events ALTER COLUMN body SET STATISTICS 0;
ALTER TABLE deliveries ALTER COLUMN last_error SET STATISTICS 0;
