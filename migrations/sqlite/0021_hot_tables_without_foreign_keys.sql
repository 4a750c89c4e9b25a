-- PostgreSQL only (its foreign-key checks lock the parent row, shared by every concurrent
-- writer; see the PostgreSQL file). SQLite's checks are a look-up in the writer's own pages,
-- with no locks (measured: no difference with them off), so its tables keep them.
SELECT 1;
