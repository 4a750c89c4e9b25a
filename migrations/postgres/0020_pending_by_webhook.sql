-- Deliveries by webhook are only ever looked up while pending (held ones, due ones, those to
-- hold or release when the webhook is switched, those to cancel when it is deleted). With
-- (webhook_id, status) over every row, each delivery took an entry when stored and moved it
-- when it finished; most deliveries go straight from stored to succeeded and now never touch
-- this index. Due time second: a webhook with a large hold answers "anything due?" at once.
DROP INDEX deliveries_webhook;
CREATE INDEX deliveries_webhook_pending ON deliveries (webhook_id, next_attempt_at)
    WHERE status = 'pending';
