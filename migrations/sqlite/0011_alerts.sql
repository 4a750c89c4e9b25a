-- Alerts (see src/domain/alerts.rs). A program's alert settings are one JSON document (the SMTP
-- password in it sealed like every other secret). An alert groups occurrences of one kind on one
-- webhook: while unsent (sent_at NULL) there is at most one per webhook and kind, and new
-- occurrences are counted into it. webhooks.alert_open says an exhausted/disabled alert was raised
-- and no recovery has been announced since.
ALTER TABLE programs ADD COLUMN alert_settings TEXT;
ALTER TABLE webhooks ADD COLUMN alert_open INTEGER NOT NULL DEFAULT 0;
CREATE TABLE alerts (
    id            TEXT PRIMARY KEY,
    program_id    TEXT NOT NULL REFERENCES programs (id),
    webhook_id    TEXT NOT NULL,
    webhook_name  TEXT NOT NULL,
    kind          TEXT NOT NULL,
    count         BIGINT NOT NULL,
    first_at      TEXT NOT NULL,
    last_at       TEXT NOT NULL,
    detail        TEXT NOT NULL,
    sent_at       TEXT,
    email_error   TEXT
);
CREATE UNIQUE INDEX alerts_unsent ON alerts (webhook_id, kind) WHERE sent_at IS NULL;
CREATE INDEX alerts_sent ON alerts (webhook_id, kind, sent_at);
CREATE INDEX alerts_program ON alerts (program_id, last_at);
