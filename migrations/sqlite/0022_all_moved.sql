-- PostgreSQL only (a function its one-statement recorder calls; see the PostgreSQL file).
-- SQLite records results in a transaction of its own process: a statement costs no round trip.
SELECT 1;
