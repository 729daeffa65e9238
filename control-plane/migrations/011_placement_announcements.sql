-- Each replica chooses where to try a placement from its own picture of the fleet
-- (control-plane/placement_snapshot.hpp). Every change to what decides a node's eligibility is announced on
-- the channel kairo_placement_inputs, so every replica drops its picture at once and reads the fleet again:
-- a node registered or removed, up or down, drained, its capacity, folder scenes, encoders, cache or
-- browser signalling; the catalogue's versions. Slot counts and load are left out on purpose: they change
-- with every placement and heartbeat, a picture a few hundred milliseconds behind on them only orders the
-- candidates a little differently, and the conditional update of the slot counter decides.
CREATE FUNCTION kairo_placement_inputs_changed() RETURNS trigger AS $$
BEGIN
  PERFORM pg_notify('kairo_placement_inputs', '');
  RETURN NULL;
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER nodes_added_or_removed AFTER INSERT OR DELETE ON nodes
  FOR EACH STATEMENT EXECUTE FUNCTION kairo_placement_inputs_changed();
-- Per row with a condition, so the heartbeat batches (which set state = 'up' on rows already up) announce
-- nothing.
CREATE TRIGGER nodes_eligibility_changed AFTER UPDATE ON nodes FOR EACH ROW
  WHEN (OLD.state IS DISTINCT FROM NEW.state OR OLD.drained IS DISTINCT FROM NEW.drained
        OR OLD.max_sessions IS DISTINCT FROM NEW.max_sessions OR OLD.scenes IS DISTINCT FROM NEW.scenes
        OR OLD.encoders IS DISTINCT FROM NEW.encoders OR OLD.cached_scenes IS DISTINCT FROM NEW.cached_scenes
        OR OLD.signalling_url IS DISTINCT FROM NEW.signalling_url)
  EXECUTE FUNCTION kairo_placement_inputs_changed();
CREATE TRIGGER scene_versions_changed AFTER INSERT OR UPDATE OR DELETE ON scene_versions
  FOR EACH STATEMENT EXECUTE FUNCTION kairo_placement_inputs_changed();
