-- The scene catalogue (#16, docs/scenes.md "Catalogue"): scenes uploaded by operators, stored
-- content-addressed (one copy of identical bytes however many names or versions point at it), versioned by
-- name, fetched by nodes by hash.
CREATE TABLE scene_blobs (
  sha256      TEXT PRIMARY KEY CHECK (sha256 ~ '^[0-9a-f]{64}$'),
  size        BIGINT NOT NULL CHECK (size > 0)
);
-- The bytes in chunks of 1 MiB: a scene is read back chunk by chunk, never as one value of hundreds of MB
-- (bytea values are capped at 1 GB and are copied whole in memory by the server).
CREATE TABLE scene_chunks (
  sha256      TEXT NOT NULL REFERENCES scene_blobs ON DELETE CASCADE,
  seq         INTEGER NOT NULL CHECK (seq >= 0),
  bytes       BYTEA NOT NULL,
  PRIMARY KEY (sha256, seq)
);
CREATE TABLE scene_versions (
  name          TEXT NOT NULL,
  version       INTEGER NOT NULL CHECK (version > 0),
  sha256        TEXT NOT NULL REFERENCES scene_blobs,
  size          BIGINT NOT NULL,
  triangles     BIGINT NOT NULL,
  textures      INTEGER NOT NULL,
  texture_bytes BIGINT NOT NULL,
  draws         INTEGER NOT NULL,
  uploaded_by   BIGINT REFERENCES users ON DELETE SET NULL,
  created_at    TIMESTAMPTZ NOT NULL DEFAULT now(),
  PRIMARY KEY (name, version)
);
CREATE INDEX scene_versions_by_hash ON scene_versions (sha256);

-- A session on a catalogue scene renders the version that was newest when it was created.
ALTER TABLE sessions ADD COLUMN scene_sha256 TEXT;
-- What each node holds in its scene cache (it reports changes): placement prefers those nodes.
ALTER TABLE nodes ADD COLUMN cached_scenes TEXT[] NOT NULL DEFAULT '{}';
