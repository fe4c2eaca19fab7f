-- Banter schema v5: direct-message history between accounts, and read
-- positions.
--
-- directs.pair names the two accounts of a whisper ('alice bob': their
-- keys, sorted, a space between; keys never hold one), set only when both
-- sender and recipient are logged-in accounts: `history` with `with` pages
-- by it. Guests' whispers stay out of history (a guest nick is anyone's
-- later), as do whispers stored before v5.
ALTER TABLE directs ADD COLUMN pair TEXT;
CREATE INDEX directs_by_pair ON directs (pair, id);

-- Each account's direct conversations, newest activity last (IRC
-- `CHATHISTORY TARGETS`, JSON `targets`): one row per (account, peer),
-- moved forward by every whisper between them. `shown` is the peer's
-- account name as spelled.
CREATE TABLE conversations (
    account TEXT    NOT NULL,
    peer    TEXT    NOT NULL,
    shown   TEXT    NOT NULL,
    last_id INTEGER NOT NULL,
    last_ts INTEGER NOT NULL,
    PRIMARY KEY (account, peer)
) WITHOUT ROWID;
CREATE INDEX conversations_by_time ON conversations (account, last_ts);

-- Read positions (`mark_read`): how far an account has read in a room
-- (target '#room') or a direct conversation (target: the other account's
-- key). They only move forward.
CREATE TABLE read_positions (
    account TEXT    NOT NULL,
    target  TEXT    NOT NULL,
    shown   TEXT    NOT NULL,   -- the room or account name as spelled
    id      INTEGER NOT NULL,
    ts      INTEGER NOT NULL,
    PRIMARY KEY (account, target)
) WITHOUT ROWID;
