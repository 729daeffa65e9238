-- Kairo control plane, schema version 1. Applied once, under an advisory lock, by whichever replica starts first.
CREATE TABLE users (
  id            BIGSERIAL PRIMARY KEY,
  username      TEXT NOT NULL UNIQUE CHECK (length(username) BETWEEN 1 AND 64),
  password_hash TEXT NOT NULL,  -- argon2id (libsodium crypto_pwhash_str)
  role          TEXT NOT NULL CHECK (role IN ('client', 'operator', 'admin')),
  created_at    TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- Rotating refresh tokens, stored hashed. A family is one login; reusing a spent token revokes the family.
CREATE TABLE refresh_tokens (
  id          BIGSERIAL PRIMARY KEY,
  user_id     BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
  family      TEXT NOT NULL,
  token_hash  BYTEA NOT NULL UNIQUE,
  expires_at  TIMESTAMPTZ NOT NULL,
  spent_at    TIMESTAMPTZ,
  revoked_at  TIMESTAMPTZ
);
CREATE INDEX refresh_tokens_family ON refresh_tokens (family);

CREATE TABLE node_tokens (
  id          BIGSERIAL PRIMARY KEY,
  token_hash  BYTEA NOT NULL UNIQUE,
  created_by  BIGINT REFERENCES users (id) ON DELETE SET NULL,
  created_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
  revoked_at  TIMESTAMPTZ
);

CREATE TABLE nodes (
  id              BIGSERIAL PRIMARY KEY,
  name            TEXT NOT NULL UNIQUE,
  address         TEXT NOT NULL,
  device          TEXT NOT NULL DEFAULT '',
  encoders        TEXT[] NOT NULL DEFAULT '{}',
  scenes          TEXT[] NOT NULL DEFAULT '{}',
  max_sessions    INT NOT NULL CHECK (max_sessions BETWEEN 0 AND 10000),
  state           TEXT NOT NULL DEFAULT 'up' CHECK (state IN ('up', 'down')),
  drained         BOOLEAN NOT NULL DEFAULT false,
  load            DOUBLE PRECISION NOT NULL DEFAULT 0,
  last_heartbeat  TIMESTAMPTZ NOT NULL DEFAULT now(),
  registered_at   TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE TABLE sessions (
  id              TEXT PRIMARY KEY,
  user_id         BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
  node_id         BIGINT REFERENCES nodes (id) ON DELETE SET NULL,
  scene           TEXT NOT NULL,
  eye_width       INT NOT NULL CHECK (eye_width BETWEEN 16 AND 8192),
  eye_height      INT NOT NULL CHECK (eye_height BETWEEN 16 AND 8192),
  fps             INT NOT NULL CHECK (fps BETWEEN 1 AND 240),
  codec           TEXT NOT NULL DEFAULT 'h264',
  room            TEXT,
  state           TEXT NOT NULL CHECK (state IN ('placed', 'running', 'ended', 'failed')),
  failure_reason  TEXT,
  session_key     BYTEA NOT NULL,
  max_bitrate_bps BIGINT,
  created_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
  ended_at        TIMESTAMPTZ
);
CREATE INDEX sessions_by_node ON sessions (node_id) WHERE state IN ('placed', 'running');
CREATE INDEX sessions_by_user ON sessions (user_id);

CREATE TABLE audit_log (
  id        BIGSERIAL PRIMARY KEY,
  at        TIMESTAMPTZ NOT NULL DEFAULT now(),
  event     TEXT NOT NULL,
  username  TEXT,
  address   TEXT,
  detail    TEXT
);
