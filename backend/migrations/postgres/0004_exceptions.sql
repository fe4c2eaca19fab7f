-- Banter schema v4 for PostgreSQL: ban exceptions (+e) and invite
-- exceptions (+I). The same change as ../0004_exceptions.sql (SQLite):
-- bans.list is 'ban' (+b), 'ban_exception' (+e) or 'invite_exception'
-- (+I), and part of the key.
ALTER TABLE bans ADD COLUMN list TEXT NOT NULL DEFAULT 'ban'
    CHECK (list IN ('ban', 'ban_exception', 'invite_exception'));
ALTER TABLE bans DROP CONSTRAINT bans_pkey;
ALTER TABLE bans ADD PRIMARY KEY (room, list, kind, target);
