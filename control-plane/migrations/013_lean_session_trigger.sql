-- The session trigger of migration 007, leaner (issue 14: an end was the costliest statement at 500
-- placements a second): it fires only when a session's liveness, node or quality caps change, a test
-- PostgreSQL makes without calling into PL/pgSQL (a node's "running" report, placed -> running, no longer
-- runs the function only to do nothing), and does its work in one function instead of three nested calls.
-- Same effect as before: the slot given back, the node's feed version bumped and announced.
CREATE OR REPLACE FUNCTION kairo_session_changed() RETURNS trigger AS $$
DECLARE
  was_live BOOLEAN := OLD.state IN ('placed', 'running') AND OLD.node_id IS NOT NULL;
  is_live BOOLEAN := NEW.state IN ('placed', 'running') AND NEW.node_id IS NOT NULL;
  node BIGINT;
  freed INT;
  version BIGINT;
BEGIN
  IF was_live AND (NOT is_live OR OLD.node_id IS DISTINCT FROM NEW.node_id) THEN
    node := OLD.node_id;
    freed := 1;
  ELSIF is_live AND (OLD.max_bitrate_bps IS DISTINCT FROM NEW.max_bitrate_bps
                     OR OLD.max_fps IS DISTINCT FROM NEW.max_fps
                     OR OLD.foveation IS DISTINCT FROM NEW.foveation) THEN
    node := NEW.node_id;
    freed := 0;
  ELSE
    RETURN NEW;
  END IF;
  UPDATE nodes SET feed_version = feed_version + 1, active_sessions = active_sessions - freed
    WHERE id = node RETURNING feed_version INTO version;
  IF version IS NOT NULL THEN
    PERFORM pg_notify('kairo_node_feed', node::text || ':' ||
                      (extract(epoch FROM clock_timestamp()) * 1000000)::bigint::text || ':' || version::text);
  END IF;
  RETURN NEW;
END;
$$ LANGUAGE plpgsql;

DROP TRIGGER sessions_feed ON sessions;
CREATE TRIGGER sessions_feed AFTER UPDATE ON sessions FOR EACH ROW
  WHEN ((OLD.state IN ('placed', 'running')) IS DISTINCT FROM (NEW.state IN ('placed', 'running'))
        OR OLD.node_id IS DISTINCT FROM NEW.node_id
        OR OLD.max_bitrate_bps IS DISTINCT FROM NEW.max_bitrate_bps
        OR OLD.max_fps IS DISTINCT FROM NEW.max_fps
        OR OLD.foveation IS DISTINCT FROM NEW.foveation)
  EXECUTE FUNCTION kairo_session_changed();
DROP FUNCTION kairo_node_feed_changed(BIGINT, INT);
