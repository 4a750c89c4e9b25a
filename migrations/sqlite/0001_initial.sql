-- Herald's schema on SQLite. Times are RFC 3339 UTC text written by Herald (never DB defaults), so
-- they sort and compare lexically; ids are prefixed text; JSON is text.

CREATE TABLE programs (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    is_default  INTEGER NOT NULL DEFAULT 0,
    created_at  TEXT NOT NULL
);
CREATE UNIQUE INDEX programs_one_default ON programs (is_default) WHERE is_default = 1;

CREATE TABLE event_types (
    name         TEXT PRIMARY KEY,
    feed         TEXT NOT NULL,
    description  TEXT NOT NULL,
    schema       TEXT NOT NULL,
    example      TEXT NOT NULL
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
    filter                 TEXT NOT NULL DEFAULT '[]',
    retry_attempts         INTEGER NOT NULL,
    retry_delay_seconds    INTEGER NOT NULL,
    retry_backoff          TEXT NOT NULL,
    timeout_seconds        INTEGER NOT NULL,
    rate_limit_per_second  INTEGER,
    sandbox                INTEGER NOT NULL DEFAULT 0,
    enabled                INTEGER NOT NULL DEFAULT 1,
    total_attempts         INTEGER NOT NULL DEFAULT 0,
    successful_attempts    INTEGER NOT NULL DEFAULT 0,
    last_success_at        TEXT,
    last_failure_at        TEXT,
    last_attempt_failed    INTEGER NOT NULL DEFAULT 0,
    created_at             TEXT NOT NULL,
    updated_at             TEXT NOT NULL,
    deleted_at             TEXT
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
    event_timestamp  TEXT NOT NULL,
    body             TEXT NOT NULL,
    created_at       TEXT NOT NULL,
    PRIMARY KEY (program_id, id)
);

CREATE TABLE deliveries (
    id                TEXT PRIMARY KEY,
    program_id        TEXT NOT NULL REFERENCES programs (id),
    webhook_id        TEXT NOT NULL REFERENCES webhooks (id),
    event_id          TEXT NOT NULL,
    trigger           TEXT NOT NULL,
    status            TEXT NOT NULL,
    tries             INTEGER NOT NULL DEFAULT 0,
    claim_count       INTEGER NOT NULL DEFAULT 0,
    next_attempt_at   TEXT NOT NULL,
    lease_expires_at  TEXT,
    last_error        TEXT,
    created_at        TEXT NOT NULL,
    updated_at        TEXT NOT NULL
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
    attempt          INTEGER NOT NULL,
    trigger          TEXT NOT NULL,
    status           TEXT NOT NULL,
    status_code      INTEGER,
    error            TEXT,
    latency_ms       INTEGER,
    request_url      TEXT NOT NULL,
    request_headers  TEXT NOT NULL,
    request_body     TEXT NOT NULL,
    response_headers TEXT,
    response_body    TEXT,
    created_at       TEXT NOT NULL,
    delivered_at     TEXT
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
    created_at     TEXT NOT NULL
);
CREATE UNIQUE INDEX users_email ON users (lower(email));

CREATE TABLE sessions (
    id_hash       TEXT PRIMARY KEY,
    user_id       TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at    TEXT NOT NULL,
    last_seen_at  TEXT NOT NULL,
    expires_at    TEXT NOT NULL
);
CREATE INDEX sessions_user ON sessions (user_id);

CREATE TABLE api_keys (
    id            TEXT PRIMARY KEY,
    program_id    TEXT NOT NULL REFERENCES programs (id),
    name          TEXT NOT NULL,
    prefix        TEXT NOT NULL,
    key_hash      TEXT NOT NULL UNIQUE,
    created_at    TEXT NOT NULL,
    last_used_at  TEXT,
    revoked_at    TEXT
);
CREATE INDEX api_keys_program ON api_keys (program_id);
