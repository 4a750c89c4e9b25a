-- The member an event is about (its envelope's `member_id`, or `user_id` when it has none), so
-- support can find what Herald sent about one member: the audit log's search takes a member id
-- and reads this index, then each event's attempts through their own index. Events without a
-- member (and those accepted before this migration) are left out of the index. The key is the
-- member alone, the smallest entry each event adds to ingest's writes (the program is checked on
-- the event's row: a member id seldom recurs in another program).
ALTER TABLE events ADD COLUMN member TEXT;
CREATE INDEX events_member ON events (member) WHERE member IS NOT NULL;
