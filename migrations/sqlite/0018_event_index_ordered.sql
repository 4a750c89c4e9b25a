-- The audit log's search by event id asks for the event's attempts newest first. With only
-- (program_id, event_id) in the index, the planner could take the program's index instead, for
-- its order, and walk every attempt of the program (seconds at 10,000,000 attempts); with the
-- order in the event index it is the better fit on both counts.
DROP INDEX attempts_event;
CREATE INDEX attempts_event ON attempts (program_id, event_id, created_at DESC, id DESC);
