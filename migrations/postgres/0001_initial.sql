-- Herald's schema on PostgreSQL. Times are timestamptz; ids are prefixed text; settings JSON is jsonb;
-- an event's body is kept as the exact text receivers get, so retries send identical bytes.

CREATE TABLE programs (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    is_default  BOOLEAN NOT NULL DEFAULT FALSE,
    created_at  TIMESTAMPTZ NOT NULL
);
CREATE UNIQUE INDEX programs_one_default ON programs (is_default) WHERE is_default;

CREATE TABLE event_types (
    name         TEXT PRIMARY KEY,
    feed         TEXT NOT NULL,
    description  TEXT NOT NULL,
    schema       JSONB NOT NULL,
    example      JSONB NOT NULL
);

CREATE TABLE webhooks (
    id                     TEXT PRIMARY KEY,
    program_id             TEXT NOT NULL REFERENCES programs (id),
    name                   TEXT NOT NULL,
    url                    TEXT NOT NULL,
    method                 TEXT NOT NULL DEFAULT 'POST',
    description            TEXT NOT NULL DEFAULT '',
    auth_kind              TEXT NOT NULL,
    auth_username          TEXT,
    -- sealed secrets (signing secrets with their expiry, or the Basic password); never plain text
    secrets                TEXT NOT NULL,
    filter                 JSONB NOT NULL DEFAULT '[]'::jsonb,
    retry_attempts         BIGINT NOT NULL,
    retry_delay_seconds    BIGINT NOT NULL,
    retry_backoff          TEXT NOT NULL,
    timeout_seconds        BIGINT NOT NULL,
    rate_limit_per_second  BIGINT,
    sandbox                BOOLEAN NOT NULL DEFAULT FALSE,
    enabled                BOOLEAN NOT NULL DEFAULT TRUE,
    total_attempts         BIGINT NOT NULL DEFAULT 0,
    successful_attempts    BIGINT NOT NULL DEFAULT 0,
    last_success_at        TIMESTAMPTZ,
    last_failure_at        TIMESTAMPTZ,
    last_attempt_failed    BOOLEAN NOT NULL DEFAULT FALSE,
    created_at             TIMESTAMPTZ NOT NULL,
    updated_at             TIMESTAMPTZ NOT NULL,
    deleted_at             TIMESTAMPTZ
);
-- Names are unique per program among live webhooks, ignoring case.
CREATE UNIQUE INDEX webhooks_name_unique ON webhooks (program_id, lower(name)) WHERE deleted_at IS NULL;
CREATE INDEX webhooks_program_created ON webhooks (program_id, created_at) WHERE deleted_at IS NULL;

CREATE TABLE subscriptions (
    webhook_id  TEXT NOT NULL REFERENCES webhooks (id),
    program_id  TEXT NOT NULL REFERENCES programs (id),
    event_type  TEXT NOT NULL,
    PRIMARY KEY (webhook_id, event_type)
);
CREATE INDEX subscriptions_fanout ON subscriptions (program_id, event_type);

CREATE TABLE events (
    program_id       TEXT NOT NULL REFERENCES programs (id),
    id               TEXT NOT NULL,
    event_type       TEXT NOT NULL,
    event_timestamp  TIMESTAMPTZ NOT NULL,
    body             TEXT NOT NULL,
    created_at       TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (program_id, id)
);

CREATE TABLE deliveries (
    id                TEXT PRIMARY KEY,
    program_id        TEXT NOT NULL REFERENCES programs (id),
    webhook_id        TEXT NOT NULL REFERENCES webhooks (id),
    event_id          TEXT NOT NULL,
    trigger           TEXT NOT NULL,
    status            TEXT NOT NULL,
    tries             BIGINT NOT NULL DEFAULT 0,
    claim_count       BIGINT NOT NULL DEFAULT 0,
    next_attempt_at   TIMESTAMPTZ NOT NULL,
    lease_expires_at  TIMESTAMPTZ,
    last_error        TEXT,
    created_at        TIMESTAMPTZ NOT NULL,
    updated_at        TIMESTAMPTZ NOT NULL
);
CREATE INDEX deliveries_due ON deliveries (next_attempt_at) WHERE status IN ('pending', 'in_flight');
CREATE INDEX deliveries_program_status ON deliveries (program_id, status, created_at);
CREATE INDEX deliveries_webhook ON deliveries (webhook_id, status);

CREATE TABLE attempts (
    id               TEXT PRIMARY KEY,
    program_id       TEXT NOT NULL REFERENCES programs (id),
    webhook_id       TEXT NOT NULL REFERENCES webhooks (id),
    webhook_name     TEXT NOT NULL,
    delivery_id      TEXT,
    event_id         TEXT NOT NULL,
    event_type       TEXT NOT NULL,
    attempt          BIGINT NOT NULL,
    trigger          TEXT NOT NULL,
    status           TEXT NOT NULL,
    status_code      INTEGER,
    error            TEXT,
    latency_ms       BIGINT,
    request_url      TEXT NOT NULL,
    request_headers  JSONB NOT NULL,
    request_body     TEXT NOT NULL,
    response_headers JSONB,
    response_body    TEXT,
    created_at       TIMESTAMPTZ NOT NULL,
    delivered_at     TIMESTAMPTZ
);
CREATE INDEX attempts_program_created ON attempts (program_id, created_at DESC, id DESC);
CREATE INDEX attempts_webhook_created ON attempts (webhook_id, created_at DESC, id DESC);
CREATE INDEX attempts_event ON attempts (program_id, event_id);
CREATE INDEX attempts_delivery ON attempts (delivery_id);

CREATE TABLE users (
    id             TEXT PRIMARY KEY,
    program_id     TEXT NOT NULL REFERENCES programs (id),
    email          TEXT NOT NULL,
    password_hash  TEXT NOT NULL,
    role           TEXT NOT NULL,
    created_at     TIMESTAMPTZ NOT NULL
);
CREATE UNIQUE INDEX users_email ON users (lower(email));

CREATE TABLE sessions (
    id_hash       TEXT PRIMARY KEY,
    user_id       TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at    TIMESTAMPTZ NOT NULL,
    last_seen_at  TIMESTAMPTZ NOT NULL,
    expires_at    TIMESTAMPTZ NOT NULL
);
CREATE INDEX sessions_user ON sessions (user_id);

CREATE TABLE api_keys (
    id            TEXT PRIMARY KEY,
    program_id    TEXT NOT NULL REFERENCES programs (id),
    name          TEXT NOT NULL,
    prefix        TEXT NOT NULL,
    key_hash      TEXT NOT NULL UNIQUE,
    created_at    TIMESTAMPTZ NOT NULL,
    last_used_at  TIMESTAMPTZ,
    revoked_at    TIMESTAMPTZ
);
CREATE INDEX api_keys_program ON api_keys (program_id);
