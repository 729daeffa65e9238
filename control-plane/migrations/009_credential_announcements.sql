-- Node credentials are cached by every replica (a node asks about once a second). Every change to them is
-- announced on the channel kairo_credentials, so each replica drops its cache at once: a token revoked or
-- rotated through one replica is refused by all of them within the notification's few milliseconds
-- (control-plane/fleet_service.cpp, FleetService::credentials_changed).
CREATE FUNCTION kairo_credentials_changed() RETURNS trigger AS $$
BEGIN
  PERFORM pg_notify('kairo_credentials', '');
  RETURN NULL;
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER node_tokens_changed AFTER INSERT OR UPDATE OR DELETE ON node_tokens
  FOR EACH STATEMENT EXECUTE FUNCTION kairo_credentials_changed();
CREATE TRIGGER nodes_token_changed AFTER UPDATE OF token_id OR DELETE ON nodes
  FOR EACH STATEMENT EXECUTE FUNCTION kairo_credentials_changed();
