-- Each try of a stored event also records when its event was accepted, and the audit log's event
-- index leads with that time: a new attempt's entry lands at the index's recent end instead of at
-- a random place (event ids are the senders' UUIDs), so recording a result dirties one page of
-- this index per commit rather than one per attempt. A search by event id reads the event's
-- acceptance time from the event first.
ALTER TABLE attempts ADD COLUMN event_accepted_at TEXT;
DROP INDEX attempts_event;
CREATE INDEX attempts_event_accepted ON attempts (program_id, event_accepted_at, event_id, created_at DESC, id DESC)
    WHERE event_accepted_at IS NOT NULL;
-- Test sends and verifications (their events are not stored) and attempts recorded before this
-- change are found by the event id alone.
CREATE INDEX attempts_event ON attempts (program_id, event_id, created_at DESC, id DESC)
    WHERE event_accepted_at IS NULL;
