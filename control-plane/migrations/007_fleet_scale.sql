-- Fleet scale (docs/control-api.md "Node feed", "Placement").
--
-- Placement reserves a slot with one conditional update of the node's counter (active_sessions <
-- max_sessions), instead of locking every candidate node's row and counting its sessions: placements only
-- meet on the node they both chose. The trigger below gives slots back, so every way a session stops being
-- live (ended by its user, reported by its node, failed by the sweeper, its node deleted) keeps the counter
-- exact.
--
-- Each node has a feed version, bumped by every change a node must act on (a session placed on it or taken
-- off it, new quality caps, a drain); the change is announced on the channel kairo_node_feed with payload
-- '<node id>:<microseconds since the epoch>', so a replica holding the node's feed request answers at once.
ALTER TABLE nodes ADD COLUMN active_sessions INT NOT NULL DEFAULT 0 CHECK (active_sessions >= 0);
ALTER TABLE nodes ADD COLUMN feed_version BIGINT NOT NULL DEFAULT 1;
UPDATE nodes n SET active_sessions =
  (SELECT count(*) FROM sessions s WHERE s.node_id = n.id AND s.state IN ('placed', 'running'));

-- The request that created a session: its id follows the session to its node's logs.
ALTER TABLE sessions ADD COLUMN request_id TEXT;

-- Lists page by (created_at, id): an index for the whole table and one per user.
CREATE INDEX sessions_by_created ON sessions (created_at, id);
CREATE INDEX sessions_by_user_created ON sessions (user_id, created_at, id);

CREATE FUNCTION kairo_announce_node_feed(node BIGINT, version BIGINT) RETURNS void AS $$
BEGIN
  PERFORM pg_notify('kairo_node_feed', node::text || ':' ||
                    (extract(epoch FROM clock_timestamp()) * 1000000)::bigint::text || ':' || version::text);
END;
$$ LANGUAGE plpgsql;

CREATE FUNCTION kairo_node_feed_changed(node BIGINT, slots_freed INT) RETURNS void AS $$
DECLARE
  version BIGINT;
BEGIN
  UPDATE nodes SET feed_version = feed_version + 1, active_sessions = active_sessions - slots_freed
    WHERE id = node RETURNING feed_version INTO version;
  IF version IS NOT NULL THEN
    PERFORM kairo_announce_node_feed(node, version);
  END IF;
END;
$$ LANGUAGE plpgsql;

CREATE FUNCTION kairo_session_changed() RETURNS trigger AS $$
DECLARE
  was_live BOOLEAN := OLD.state IN ('placed', 'running') AND OLD.node_id IS NOT NULL;
  is_live BOOLEAN := NEW.state IN ('placed', 'running') AND NEW.node_id IS NOT NULL;
BEGIN
  IF was_live AND (NOT is_live OR OLD.node_id IS DISTINCT FROM NEW.node_id) THEN
    PERFORM kairo_node_feed_changed(OLD.node_id, 1);
  ELSIF is_live AND (OLD.max_bitrate_bps IS DISTINCT FROM NEW.max_bitrate_bps
                     OR OLD.max_fps IS DISTINCT FROM NEW.max_fps
                     OR OLD.foveation IS DISTINCT FROM NEW.foveation) THEN
    PERFORM kairo_node_feed_changed(NEW.node_id, 0);
  END IF;
  RETURN NEW;
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER sessions_feed AFTER UPDATE ON sessions FOR EACH ROW EXECUTE FUNCTION kairo_session_changed();
