-- Event-to-delivery lag per attempt: from the event's acceptance to this try's end, in ms (null for
-- tests, verifications and tries that sent nothing).
ALTER TABLE attempts ADD COLUMN lag_ms BIGINT;
