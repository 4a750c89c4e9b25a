-- Console access: first-run setup tokens, the admin activity log, and key lookup by prefix.

-- One-time links that let the first admin be created; all are deleted once any is used.
CREATE TABLE setup_tokens (
    token_hash  TEXT PRIMARY KEY,
    created_at  TIMESTAMPTZ NOT NULL
);

-- Who created, changed, deleted, tested, rotated or replayed what, and when.
CREATE TABLE activity (
    id          TEXT PRIMARY KEY,
    program_id  TEXT NOT NULL REFERENCES programs (id),
    actor       TEXT NOT NULL,
    action      TEXT NOT NULL,
    target      TEXT NOT NULL,
    detail      TEXT NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL
);
CREATE INDEX activity_program ON activity (program_id, id);

CREATE INDEX api_keys_prefix ON api_keys (prefix);
CREATE INDEX sessions_expires ON sessions (expires_at);
