-- Banter schema v9 (PostgreSQL): what notifies an account.
--
-- notify_levels: the account's level in a room (target '#room') or a
-- direct conversation (target: the other account's key), when it is not
-- the default (mentions): 'all' or 'none'. `shown` is the room or account
-- name as spelled. accounts.highlights: its highlight words, a JSON array
-- (NULL: none).
CREATE TABLE notify_levels (
    account TEXT NOT NULL,   -- accounts.key
    target  TEXT NOT NULL,
    shown   TEXT NOT NULL,
    level   TEXT NOT NULL,
    PRIMARY KEY (account, target)
);
ALTER TABLE accounts ADD COLUMN highlights TEXT;
