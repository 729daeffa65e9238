-- A user's end of a session (the commonest change at a fleet's churn, issue 14) does the node's
-- bookkeeping in its own statement (control-plane/fleet_service.cpp, end_session): the slot given back and
-- the feed version moved, left in the row's node_feed_version. The PL/pgSQL trigger of migration 014 cost
-- about 6 % of the database's CPU at 500 ends a second, and its first call on each connection (compiling
-- the function) took 6 ms, paid by every connection at once when ends began. The trigger still does that
-- bookkeeping for every other change (a node's report, the sweep of a silent node, new caps): it fires
-- unless the statement set node_feed_version itself, which a statement does only when it has done the
-- bookkeeping (every version it sets is new: versions only grow).
-- The condition reads state, not live: a BEFORE trigger sees NEW before its generated columns are computed.
DROP TRIGGER sessions_feed ON sessions;
CREATE TRIGGER sessions_feed BEFORE UPDATE ON sessions FOR EACH ROW
  WHEN (((OLD.state IN ('placed', 'running')) IS DISTINCT FROM (NEW.state IN ('placed', 'running'))
         OR OLD.node_id IS DISTINCT FROM NEW.node_id
         OR OLD.max_bitrate_bps IS DISTINCT FROM NEW.max_bitrate_bps
         OR OLD.max_fps IS DISTINCT FROM NEW.max_fps
         OR OLD.foveation IS DISTINCT FROM NEW.foveation)
        AND OLD.node_feed_version IS NOT DISTINCT FROM NEW.node_feed_version)
  EXECUTE FUNCTION kairo_session_changed();
