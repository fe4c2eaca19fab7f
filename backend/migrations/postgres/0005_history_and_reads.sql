-- Banter schema v5 for PostgreSQL: direct-message history between
-- accounts. The same change as ../0005_history_and_reads.sql (SQLite).
ALTER TABLE directs ADD COLUMN pair TEXT;
CREATE INDEX directs_by_pair ON directs (pair, id);

CREATE TABLE conversations (
    account TEXT   NOT NULL,
    peer    TEXT   NOT NULL,
    shown   TEXT   NOT NULL,
    last_id BIGINT NOT NULL,
    last_ts BIGINT NOT NULL,
    PRIMARY KEY (account, peer)
);
CREATE INDEX conversations_by_time ON conversations (account, last_ts);

CREATE TABLE read_positions (
    account TEXT   NOT NULL,
    target  TEXT   NOT NULL,
    shown   TEXT   NOT NULL,
    id      BIGINT NOT NULL,
    ts      BIGINT NOT NULL,
    PRIMARY KEY (account, target)
);
