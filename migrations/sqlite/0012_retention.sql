-- Retention (HERALD_RETENTION_DAYS) deletes events older than the cutoff in small batches, per
-- program, oldest first: this index finds them without scanning the table.
CREATE INDEX events_created ON events (program_id, created_at);
