-- Banter schema v1: room and direct message history.
--
-- rooms.last_id is the highest id ever given in the room. It is written in
-- the same transaction as the messages, so ids keep increasing across
-- restarts even after retention deleted every message of a room.

CREATE TABLE rooms (
    name     TEXT PRIMARY KEY,          -- room name, lower case
    last_id  INTEGER NOT NULL DEFAULT 0,
    topic    TEXT,                      -- NULL: no topic
    topic_by TEXT,
    topic_ts INTEGER
) WITHOUT ROWID;

CREATE TABLE messages (
    room   TEXT    NOT NULL,            -- rooms.name
    id     INTEGER NOT NULL,            -- strictly increasing within the room
    sender TEXT    NOT NULL,            -- nick as shown
    text   TEXT    NOT NULL,
    ts     INTEGER NOT NULL,            -- Unix milliseconds
    PRIMARY KEY (room, id)
) WITHOUT ROWID;

CREATE INDEX messages_by_time ON messages (ts);

CREATE TABLE directs (
    id        INTEGER PRIMARY KEY,      -- one sequence for every direct message
    sender    TEXT    NOT NULL,
    recipient TEXT    NOT NULL,
    text      TEXT    NOT NULL,
    ts        INTEGER NOT NULL
);

-- Counters that must survive deletions: 'last_direct_id'.
CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value INTEGER NOT NULL
) WITHOUT ROWID;
