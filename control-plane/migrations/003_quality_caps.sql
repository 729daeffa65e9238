-- Quality caps a client or operator sets on a running session (PATCH /v1/sessions/{id}/quality), obeyed by the
-- node's quality controller beside max_bitrate_bps.
ALTER TABLE sessions ADD COLUMN max_fps INT CHECK (max_fps BETWEEN 1 AND 240);
ALTER TABLE sessions ADD COLUMN foveation BOOLEAN;
