-- Room placement looks up a room's live members and, for an empty room, the node it last ran on.
CREATE INDEX sessions_by_room ON sessions (room, created_at DESC) WHERE room IS NOT NULL;
