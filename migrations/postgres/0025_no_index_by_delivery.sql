-- `attempts_delivery` indexed every attempt by its delivery, and no query reads attempts by
-- delivery: the audit log goes by program, webhook or event, retention by program and time.
-- It was one of the B-tree entries every recorded attempt writes (about 19 per delivery), and on a
-- long audit log one of its largest indexes.
DROP INDEX IF EXISTS attempts_delivery;
