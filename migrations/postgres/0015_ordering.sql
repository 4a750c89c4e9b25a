-- Per-member ordering (opt-in per webhook): `webhooks.ordering_key` is a path into the event
-- (e.g. data.member_id); each delivery keeps the value it had at fan-out. A delivery with a value
-- is claimed only when no older unfinished delivery of the same webhook has the same value.
ALTER TABLE webhooks ADD COLUMN ordering_key TEXT;
ALTER TABLE deliveries ADD COLUMN ordering_key TEXT;
CREATE INDEX deliveries_ordering ON deliveries (webhook_id, ordering_key, id)
    WHERE ordering_key IS NOT NULL AND status IN ('pending', 'in_flight');
