-- Browser sessions (WebRTC): a session says which transport it streams over; a node that takes browser
-- sessions registers the URL of its signalling WebSocket.
ALTER TABLE sessions ADD COLUMN transport TEXT NOT NULL DEFAULT 'udp';
ALTER TABLE nodes ADD COLUMN signalling_url TEXT;
