-- A node token belongs to one node: bound when that node first registers with it, or minted for a named node
-- (rotation: the node then answers to the new token; the old one is revoked after the roll-out). Never, for the static
-- fleet-wide token given to `kairo control --node-token`, whose nodes have token_id NULL).
ALTER TABLE node_tokens ADD COLUMN node_id BIGINT REFERENCES nodes (id) ON DELETE SET NULL;
ALTER TABLE nodes ADD COLUMN token_id BIGINT REFERENCES node_tokens (id) ON DELETE SET NULL;
-- Rooms are owned: by the user who first used the name (private to the owner and the members the owner
-- lists), or open to every user (made so by an operator). A name cannot be squatted on another scene.
CREATE TABLE rooms (
  name        TEXT PRIMARY KEY,
  owner_id    BIGINT REFERENCES users (id) ON DELETE SET NULL,
  scene       TEXT NOT NULL,
  open        BOOLEAN NOT NULL DEFAULT false,
  members     BIGINT[] NOT NULL DEFAULT '{}',
  created_at  TIMESTAMPTZ NOT NULL DEFAULT now()
);
-- Access tokens of a revoked refresh family are refused: each replica reads the recently revoked families.
CREATE INDEX refresh_tokens_revoked ON refresh_tokens (revoked_at) WHERE revoked_at IS NOT NULL;
-- The per-user limit on concurrent sessions counts a user's live sessions.
CREATE INDEX sessions_live_by_user ON sessions (user_id) WHERE state IN ('placed', 'running');
