-- Banter schema v4: ban exceptions (+e) and invite exceptions (+I).
--
-- They are kept beside the bans, in the same table: bans.list is 'ban'
-- (+b), 'ban_exception' (+e: whom it matches no ban stops) or
-- 'invite_exception' (+I: whom it matches joins an invite-only room
-- uninvited). The same target may be on several lists, so the list is part
-- of the key. SQLite cannot change a primary key: the table is made anew.
CREATE TABLE bans_new (
    room   TEXT    NOT NULL,
    list   TEXT    NOT NULL DEFAULT 'ban'
           CHECK (list IN ('ban', 'ban_exception', 'invite_exception')),
    kind   TEXT    NOT NULL CHECK (kind IN ('nick', 'account', 'mask')),
    target TEXT    NOT NULL,
    shown  TEXT    NOT NULL,
    by     TEXT    NOT NULL,
    ts     INTEGER NOT NULL,
    PRIMARY KEY (room, list, kind, target)
) WITHOUT ROWID;
INSERT INTO bans_new (room, list, kind, target, shown, by, ts)
    SELECT room, 'ban', kind, target, shown, by, ts FROM bans;
DROP TABLE bans;
ALTER TABLE bans_new RENAME TO bans;
