-- Bulk replay of dead letters by filter, run as a background job. While a job runs there is one
-- per program and filter (a second start returns it: idempotent). Deliveries are taken in
-- (created_at, id) order after the cursor, only those that existed when the job started, so a
-- replayed delivery that fails again is not replayed again by the same job. Any process may run
-- a job whose lease has run out (the one running it died).
CREATE TABLE replay_jobs (
    id              TEXT PRIMARY KEY,
    program_id      TEXT NOT NULL REFERENCES programs (id),
    filter_key      TEXT NOT NULL,
    webhook_id      TEXT,
    event_type      TEXT,
    created_from    TIMESTAMPTZ,
    created_before  TIMESTAMPTZ,
    status          TEXT NOT NULL,
    total           BIGINT NOT NULL,
    replayed        BIGINT NOT NULL DEFAULT 0,
    cursor_at       TIMESTAMPTZ,
    cursor_id       TEXT,
    started_by      TEXT NOT NULL,
    lease_until     TIMESTAMPTZ,
    created_at      TIMESTAMPTZ NOT NULL,
    updated_at      TIMESTAMPTZ NOT NULL,
    finished_at     TIMESTAMPTZ
);
CREATE UNIQUE INDEX replay_jobs_running ON replay_jobs (program_id, filter_key) WHERE status = 'running';
CREATE INDEX replay_jobs_program ON replay_jobs (program_id, created_at);
