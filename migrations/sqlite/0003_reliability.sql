-- Reliability: optimistic concurrency on webhooks, a fence for fan-out, crash-loop accounting and
-- superseded attempts.

-- Bumped by every change of a webhook; a write naming an older version is refused (409).
ALTER TABLE webhooks ADD COLUMN version INTEGER NOT NULL DEFAULT 1;

-- Bumped (in the same transaction) by every change to a program's webhooks; ingest checks it
-- inside its own transaction, so fan-out never uses a subscriber list that a committed change
-- has made stale.
ALTER TABLE programs ADD COLUMN webhooks_version INTEGER NOT NULL DEFAULT 0;

-- Times a claim's lease ran out before its result was recorded (the worker died or hung); each
-- counts as a try, so a delivery that kills its worker is dead-lettered instead of looping.
ALTER TABLE deliveries ADD COLUMN interruptions INTEGER NOT NULL DEFAULT 0;

-- A request that went out under a claim that a newer claim had already replaced: kept in the audit
-- log, but it moves neither the delivery nor the webhook's figures.
ALTER TABLE attempts ADD COLUMN superseded BOOLEAN NOT NULL DEFAULT FALSE;

-- Claims take due work oldest first (acceptance order within a due time).
DROP INDEX deliveries_due;
CREATE INDEX deliveries_due_order ON deliveries (next_attempt_at, id) WHERE status IN ('pending', 'in_flight');
