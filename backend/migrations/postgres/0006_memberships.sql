-- Banter schema v6 for PostgreSQL: memberships that outlive a connection.
-- The same change as ../0006_memberships.sql (SQLite).
CREATE TABLE memberships (
    account TEXT   NOT NULL,
    room    TEXT   NOT NULL,
    since   BIGINT NOT NULL,
    left_at BIGINT,
    PRIMARY KEY (account, room)
);

ALTER TABLE accounts ADD COLUMN always_on INTEGER NOT NULL DEFAULT 1;
