-- Feed changes announced after their commit, by the replica that made them (control-plane/node_feed_hub.hpp),
-- instead of by a NOTIFY inside the transaction (issue 14). PostgreSQL serialises the commits of every
-- transaction that sent a NOTIFY on one lock, held through the commit: every placement and end through
-- every replica queued there, and a placement holding a node's row lock meanwhile made the next one on that
-- node wait too (sampled at 500 placements and 500 ends a second: most waiting statements were waiting on
-- it). The trigger still gives the slot back and moves the node's feed version, and now runs before the
-- row is written so that it can leave the version it made in the row (node_feed_version), for the
-- statement's RETURNING: the replica announces the exact version, and the others need not read it.
-- kairo_announce_node_feed stays for replicas of the version before during a rolling upgrade.
ALTER TABLE sessions ADD COLUMN node_feed_version BIGINT;

CREATE OR REPLACE FUNCTION kairo_session_changed() RETURNS trigger AS $$
DECLARE
  was_live BOOLEAN := OLD.state IN ('placed', 'running') AND OLD.node_id IS NOT NULL;
  is_live BOOLEAN := NEW.state IN ('placed', 'running') AND NEW.node_id IS NOT NULL;
  version BIGINT;
BEGIN
  IF was_live AND (NOT is_live OR OLD.node_id IS DISTINCT FROM NEW.node_id) THEN
    UPDATE nodes SET feed_version = feed_version + 1, active_sessions = active_sessions - 1
      WHERE id = OLD.node_id RETURNING feed_version INTO version;
  ELSIF is_live AND (OLD.max_bitrate_bps IS DISTINCT FROM NEW.max_bitrate_bps
                     OR OLD.max_fps IS DISTINCT FROM NEW.max_fps
                     OR OLD.foveation IS DISTINCT FROM NEW.foveation) THEN
    UPDATE nodes SET feed_version = feed_version + 1 WHERE id = NEW.node_id RETURNING feed_version INTO version;
  END IF;
  NEW.node_feed_version := version;
  RETURN NEW;
END;
$$ LANGUAGE plpgsql;

-- Before the row is written (PostgreSQL calls it with the row locked, once for the version it updates).
DROP TRIGGER sessions_feed ON sessions;
CREATE TRIGGER sessions_feed BEFORE UPDATE ON sessions FOR EACH ROW
  WHEN ((OLD.state IN ('placed', 'running')) IS DISTINCT FROM (NEW.state IN ('placed', 'running'))
        OR OLD.node_id IS DISTINCT FROM NEW.node_id
        OR OLD.max_bitrate_bps IS DISTINCT FROM NEW.max_bitrate_bps
        OR OLD.max_fps IS DISTINCT FROM NEW.max_fps
        OR OLD.foveation IS DISTINCT FROM NEW.foveation)
  EXECUTE FUNCTION kairo_session_changed();
