-- The dispatcher's "when is the next lease up" question (MIN(lease_expires_at) over deliveries in
-- flight) walked every pending and in-flight delivery through the due index; with a deep backlog
-- that was a scan of the whole backlog each time the dispatcher went idle. Deliveries in flight
-- are few, so this partial index stays small.
CREATE INDEX deliveries_lease ON deliveries (lease_expires_at) WHERE status = 'in_flight';
