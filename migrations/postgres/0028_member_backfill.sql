-- Events accepted before migration 0027 name their member only in their body. Herald fills the
-- column in from the bodies in the background (`delivery::backfill`), a page of events at a time
-- in key order; this row is where that walk stands, and it is deleted once the walk is done (a
-- new installation's first walk finds nothing to do).
CREATE TABLE member_backfill (
    id            INTEGER PRIMARY KEY CHECK (id = 1),
    after_program TEXT NOT NULL,
    after_id      TEXT NOT NULL
);
INSERT INTO member_backfill (id, after_program, after_id) VALUES (1, '', '');
