-- The member an event is about (its envelope's `member_id`, or `user_id` when it has none), so
-- support can find what Herald sent about one member: the audit log's search takes a member id
-- and reads this index, then each event's attempts through their own index. Events without a
-- member (and those accepted before this migration) are left out of the index.
ALTER TABLE events ADD COLUMN member TEXT;
CREATE INDEX events_member ON events (program_id, member, created_at, id) WHERE member IS NOT NULL;
