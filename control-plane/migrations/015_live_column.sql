-- A session's "running" report (placed -> running) made a new row version with an entry in every index
-- of sessions: state was in the predicates of the partial indexes, so PostgreSQL could never update the
-- row in place (a HOT update). At 500 placements and 500 ends a second (issue 14) that was 5 index
-- insertions per report, and dead entries for vacuum to clear. The predicates now read a stored generated
-- column that placed -> running does not change, and the table leaves room on each page for the row's next
-- version (fillfactor), so the report is a HOT update: no index written.
-- Adding a stored column rewrites the table under an exclusive lock: on a long session history, apply it
-- in a quiet hour. Replicas of the version before keep working meanwhile (their state IN (...) queries are
-- right, only slower).
ALTER TABLE sessions SET (fillfactor = 80);
ALTER TABLE sessions ADD COLUMN live BOOLEAN GENERATED ALWAYS AS (state IN ('placed', 'running')) STORED;

DROP INDEX sessions_by_node;
CREATE INDEX sessions_by_node ON sessions (node_id) WHERE live;
DROP INDEX sessions_live_by_user;
CREATE INDEX sessions_live_by_user ON sessions (user_id) WHERE live;
