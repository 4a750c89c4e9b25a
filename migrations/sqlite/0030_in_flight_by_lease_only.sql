-- A delivery in flight is found through its lease (`deliveries_lease`, which holds every one):
-- claims of expired leases, the in-flight count, the deliveries list's in-flight piece. The due
-- index and the program's status index no longer hold it too. Nearly every delivery is stored
-- in flight (sent straight from ingest) and finishes moments later, so each of those two
-- entries was written and deleted again within a second: four of the about twenty B-tree
-- changes a delivery cost the writer. A delivery that finishes now gets its one entry in the
-- status index as it finishes, as before.
DROP INDEX deliveries_due_order;
CREATE INDEX deliveries_due_order ON deliveries (next_attempt_at, id) WHERE status = 'pending';
DROP INDEX deliveries_program_status;
CREATE INDEX deliveries_program_status ON deliveries (program_id, status, created_at)
    WHERE status <> 'in_flight';
