-- PostgreSQL only (which columns its ANALYZE samples; see the PostgreSQL file). SQLite's ANALYZE
-- keeps statistics for indexes only.
SELECT 1;
