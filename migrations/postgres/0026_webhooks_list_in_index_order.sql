-- The Webhooks list goes newest first by (created_at, id). Without id in the index, webhooks
-- created in the same instant (a seeded or imported batch) were all sorted before the first page
-- came out, each with its subscriptions read: 31 ms for 10,000 such webhooks on SQLite, 2 ms with
-- id in the index, which the list (and its keyset pages) then reads in order without sorting.
DROP INDEX IF EXISTS webhooks_program_created;
CREATE INDEX webhooks_program_created ON webhooks (program_id, created_at, id) WHERE deleted_at IS NULL;
