-- Banter schema v3: bounded waiting whispers and expiring tokens.
--
-- directs.sender_key: whom a waiting whisper is from (the sender's
-- account key, or '*' for every guest together), so that one sender
-- cannot fill an offline account's waiting whispers. Rows from before
-- have none (they count for nobody).
--
-- tokens.last_used: when a token last logged in (Unix milliseconds); a
-- token unused for --token-days is refused, and deleted when its account
-- next gets a token.

ALTER TABLE directs ADD COLUMN sender_key TEXT;
ALTER TABLE tokens ADD COLUMN last_used BIGINT;
UPDATE tokens SET last_used = created;

-- Invite codes, for --registration invite: each creates up to uses_left
-- accounts until expires (Unix ms). Only the code's BLAKE2b-256 hash is
-- stored. created_by: the account key of the administrator who made it,
-- or NULL (the command line).
CREATE TABLE invites (
    hash       BLOB PRIMARY KEY,
    uses_left  INTEGER NOT NULL,
    expires    INTEGER NOT NULL,
    created    INTEGER NOT NULL,
    created_by TEXT
) WITHOUT ROWID;

-- Server administrators (besides those named by --server-admin): granted
-- and revoked by `banter admin grant|revoke NAME`.
ALTER TABLE accounts ADD COLUMN admin INTEGER NOT NULL DEFAULT 0;

-- Server-wide bans (K-lines): kind 'address' (target: an address or CIDR
-- range) or 'account' (target: an account key). expires: Unix ms, or NULL
-- for never.
CREATE TABLE server_bans (
    kind    TEXT    NOT NULL,
    target  TEXT    NOT NULL,
    reason  TEXT    NOT NULL,
    by      TEXT    NOT NULL,
    ts      INTEGER NOT NULL,
    expires INTEGER,
    PRIMARY KEY (kind, target)
) WITHOUT ROWID;

-- Room bans by mask (kind 'mask': target the mask in lower case, shown as
-- given). SQLite cannot change a CHECK constraint: the table is made anew.
CREATE TABLE bans_new (
    room   TEXT    NOT NULL,
    kind   TEXT    NOT NULL CHECK (kind IN ('nick', 'account', 'mask')),
    target TEXT    NOT NULL,
    shown  TEXT    NOT NULL,
    by     TEXT    NOT NULL,
    ts     INTEGER NOT NULL,
    PRIMARY KEY (room, kind, target)
) WITHOUT ROWID;
INSERT INTO bans_new SELECT room, kind, target, shown, by, ts FROM bans;
DROP TABLE bans;
ALTER TABLE bans_new RENAME TO bans;

-- Room modes (issue 22, "Private rooms"), flags 0 or 1: invite-only (+i),
-- moderated (+m), secret (+s), logged-in users only (+R); the key (+k,
-- NULL: none) is kept as given, since IRC shows it to members (324); the
-- member limit (+l, 0: none).
ALTER TABLE rooms ADD COLUMN invite_only     INTEGER NOT NULL DEFAULT 0;
ALTER TABLE rooms ADD COLUMN room_key        TEXT;
ALTER TABLE rooms ADD COLUMN member_limit    INTEGER NOT NULL DEFAULT 0;
ALTER TABLE rooms ADD COLUMN moderated       INTEGER NOT NULL DEFAULT 0;
ALTER TABLE rooms ADD COLUMN secret          INTEGER NOT NULL DEFAULT 0;
ALTER TABLE rooms ADD COLUMN registered_only INTEGER NOT NULL DEFAULT 0;
