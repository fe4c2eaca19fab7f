-- Banter schema v6: memberships that outlive a connection.
--
-- The rooms each account is in: joined on any device, kept across logins
-- and restarts (the account is back in them as soon as it logs in again),
-- left by part or kick. `room` is rooms.name. A room left keeps its row,
-- with `left_at`, for a while: a device that reconnects and joins its
-- rooms again (`join` with `rejoin`) is not put back in one the account
-- left from another device meanwhile.
CREATE TABLE memberships (
    account TEXT    NOT NULL,   -- accounts.key
    room    TEXT    NOT NULL,
    since   INTEGER NOT NULL,   -- Unix ms of the join
    left_at INTEGER,            -- Unix ms of the part or kick; NULL: a member
    PRIMARY KEY (account, room)
) WITHOUT ROWID;

-- Whether the account stays in its rooms while none of its devices is
-- connected (listed as away, its whispers waiting), as Ergo's always-on
-- does: on unless the account turns it off.
ALTER TABLE accounts ADD COLUMN always_on INTEGER NOT NULL DEFAULT 1;
