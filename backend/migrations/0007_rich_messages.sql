-- Banter schema v7: replies, edits, deletions and reactions.
--
-- messages.account is the account the sender was logged into (NULL: a
-- guest): who may edit or delete the message. reply_to is the id of the
-- message it answers (same room; directs: same conversation). edited is
-- when its text was last replaced (Unix ms). A deleted message keeps its
-- row as a tombstone: deleted = 1 and an empty text.
ALTER TABLE messages ADD COLUMN account TEXT;
ALTER TABLE messages ADD COLUMN reply_to INTEGER;
ALTER TABLE messages ADD COLUMN edited INTEGER;
ALTER TABLE messages ADD COLUMN deleted INTEGER NOT NULL DEFAULT 0;
ALTER TABLE directs ADD COLUMN reply_to INTEGER;
ALTER TABLE directs ADD COLUMN edited INTEGER;
ALTER TABLE directs ADD COLUMN deleted INTEGER NOT NULL DEFAULT 0;

-- Reactions: one row per (message, who, reaction). `room` is the room's
-- name, or '' for a direct message (whose ids are unique on their own).
-- `who` is the reacting account's key, or '~' and the guest's nick key.
-- Removed with the message they are on (retention, account deletion).
CREATE TABLE reactions (
    room     TEXT    NOT NULL,
    id       INTEGER NOT NULL,
    who      TEXT    NOT NULL,
    nick     TEXT    NOT NULL,      -- as shown
    reaction TEXT    NOT NULL,
    ts       INTEGER NOT NULL,      -- Unix ms, for their order
    PRIMARY KEY (room, id, who, reaction)
) WITHOUT ROWID;
