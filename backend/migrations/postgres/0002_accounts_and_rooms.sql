-- Banter schema v2 for PostgreSQL: accounts, login tokens, room owners and
-- operators, bans, and whispers waiting for an offline account. The same
-- tables and columns as ../0002_accounts_and_rooms.sql (SQLite).
--
-- Name keys (`*_key`, accounts.key, room_roles.account, bans.target) are
-- nicks in ASCII lower case: nicks compare case-insensitively.

CREATE TABLE accounts (
    key           TEXT PRIMARY KEY,     -- lower-case nick
    name          TEXT   NOT NULL,      -- the nick as registered
    password_hash TEXT   NOT NULL,      -- argon2id, PHC string format
    created       BIGINT NOT NULL       -- Unix milliseconds
);

CREATE TABLE tokens (
    hash    BYTEA PRIMARY KEY,          -- BLAKE2b-256 of the token; the token itself is never stored
    account TEXT   NOT NULL REFERENCES accounts (key) ON DELETE CASCADE,
    created BIGINT NOT NULL
);

CREATE INDEX tokens_by_account ON tokens (account);

CREATE TABLE room_roles (
    room    TEXT NOT NULL,              -- rooms.name
    account TEXT NOT NULL,              -- accounts.key
    role    TEXT NOT NULL CHECK (role IN ('owner', 'op')),
    PRIMARY KEY (room, account)
);

CREATE TABLE bans (
    room   TEXT   NOT NULL,
    kind   TEXT   NOT NULL CHECK (kind IN ('nick', 'account')),
    target TEXT   NOT NULL,             -- lower-case nick or account key
    shown  TEXT   NOT NULL,             -- as given
    by     TEXT   NOT NULL,
    ts     BIGINT NOT NULL,
    PRIMARY KEY (room, kind, target)
);

-- A whisper to a registered user who is offline waits here (pending = 1)
-- until that account's client has read it (see session.rs). INTEGER 0/1,
-- as in SQLite, so that the same statements and binds serve both.
ALTER TABLE directs ADD COLUMN recipient_key TEXT;
ALTER TABLE directs ADD COLUMN pending INTEGER NOT NULL DEFAULT 0;
UPDATE directs SET recipient_key = lower(recipient);
CREATE INDEX directs_pending ON directs (recipient_key) WHERE pending = 1;
