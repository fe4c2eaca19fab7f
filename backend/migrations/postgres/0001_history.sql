-- Banter schema v1 for PostgreSQL: room and direct message history. The
-- same tables, columns and meaning as ../0001_history.sql (SQLite), in
-- PostgreSQL's types: BIGINT for ids and Unix milliseconds.
--
-- rooms.last_id is the highest id ever given in the room. It is written in
-- the same transaction as the messages, so ids keep increasing across
-- restarts even after retention deleted every message of a room.

CREATE TABLE rooms (
    name     TEXT PRIMARY KEY,          -- room name, lower case
    last_id  BIGINT NOT NULL DEFAULT 0,
    topic    TEXT,                      -- NULL: no topic
    topic_by TEXT,
    topic_ts BIGINT
);

CREATE TABLE messages (
    room   TEXT   NOT NULL,             -- rooms.name
    id     BIGINT NOT NULL,             -- strictly increasing within the room
    sender TEXT   NOT NULL,             -- nick as shown
    text   TEXT   NOT NULL,
    ts     BIGINT NOT NULL,             -- Unix milliseconds
    PRIMARY KEY (room, id)
);

CREATE INDEX messages_by_time ON messages (ts);

CREATE TABLE directs (
    id        BIGINT PRIMARY KEY,       -- one sequence for every direct message (given by banter)
    sender    TEXT   NOT NULL,
    recipient TEXT   NOT NULL,
    text      TEXT   NOT NULL,
    ts        BIGINT NOT NULL
);

-- Counters that must survive deletions: 'last_direct_id'.
CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value BIGINT NOT NULL
);
