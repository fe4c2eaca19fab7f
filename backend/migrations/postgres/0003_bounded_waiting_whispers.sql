-- Banter schema v3: whom a waiting whisper is from, so that one sender
-- cannot fill an offline account's waiting whispers.
--
-- sender_key: the sender's account key, or '*' for every guest together.
-- Rows from before have none (they count for nobody).

ALTER TABLE directs ADD COLUMN sender_key TEXT;
