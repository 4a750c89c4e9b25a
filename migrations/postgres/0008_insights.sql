-- Hourly roll-ups of live attempts per webhook, written in the transaction that records the
-- attempts, so figures over 24 h / 7 d / 30 d read a few hundred rows, never the attempts table.
-- `hour` counts whole hours since the Unix epoch (UTC).
CREATE TABLE webhook_hours (
    webhook_id      TEXT NOT NULL REFERENCES webhooks (id),
    hour            BIGINT NOT NULL,
    program_id      TEXT NOT NULL REFERENCES programs (id),
    attempts        BIGINT NOT NULL,
    successes       BIGINT NOT NULL,
    failures        BIGINT NOT NULL,
    dead_letters    BIGINT NOT NULL,
    retries         BIGINT NOT NULL,
    latency_sum_ms  BIGINT NOT NULL,
    latency_count   BIGINT NOT NULL,
    lag_sum_ms      BIGINT NOT NULL,
    lag_count       BIGINT NOT NULL,
    PRIMARY KEY (webhook_id, hour)
);
CREATE INDEX webhook_hours_program ON webhook_hours (program_id, hour);

-- Latency and lag histograms of the same hours: `metric` 0 is the HTTP round trip, 1 the
-- event-to-delivery lag of successful tries; `bucket` indexes domain::insights::BUCKET_BOUNDS_MS.
CREATE TABLE webhook_hour_buckets (
    webhook_id  TEXT NOT NULL REFERENCES webhooks (id),
    hour        BIGINT NOT NULL,
    metric      BIGINT NOT NULL,
    bucket      BIGINT NOT NULL,
    program_id  TEXT NOT NULL REFERENCES programs (id),
    n           BIGINT NOT NULL,
    PRIMARY KEY (webhook_id, hour, metric, bucket)
);
CREATE INDEX webhook_hour_buckets_program ON webhook_hour_buckets (program_id, hour);

-- Accepted events per program, type and hour, with the envelope's size in bytes (for the
-- "unusual payload" flag), written in the ingest transaction.
CREATE TABLE event_hours (
    program_id    TEXT NOT NULL REFERENCES programs (id),
    event_type    TEXT NOT NULL,
    hour          BIGINT NOT NULL,
    events        BIGINT NOT NULL,
    bytes_sum     BIGINT NOT NULL,
    bytes_sq_sum  DOUBLE PRECISION NOT NULL,
    bytes_min     BIGINT NOT NULL,
    bytes_max     BIGINT NOT NULL,
    PRIMARY KEY (program_id, event_type, hour)
);

-- Event types whose `data` is checked against the catalog schema at ingest (comma-separated; empty
-- by default: validation is opt-in per program and type). Changing it moves the program's
-- subscriber-list version, so every process's routing cache picks it up.
ALTER TABLE programs ADD COLUMN validated_event_types TEXT NOT NULL DEFAULT '';
