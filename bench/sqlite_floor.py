#!/usr/bin/env python3
"""SQLite's own cost of storing chat messages, without banter around it.

Runs the statements of the store's usual commit (schema v14: the rooms'
messages table, its indexes, the rooms' last ids; `backend/src/store/
writer.rs`, `sqlite_chats`) in a loop on a fresh WAL database with
`synchronous = NORMAL`, as banter runs them, and prints the CPU time (user
and system) per commit and per message. What the writer adds (sqlx, the
log copier, search indexing, the router) is not in it: this is the floor
under "the store's cost" in BENCHMARKS.md.

    bench/sqlite_floor.py [--rooms 200] [--per-commit 5] [--commits 20000]
                          [--index] [--dir DIR]

`--index` also indexes the messages for search after every 1,024, as the
writer does (a contentless FTS5 table: the store's `message_search` also
has `contentless_delete`, which Python's SQLite may lack).
"""

import argparse
import json
import os
import random
import resource
import sqlite3
import tempfile

SCHEMA = """
CREATE TABLE messages (
    room TEXT NOT NULL, id INTEGER NOT NULL, sender TEXT NOT NULL,
    text TEXT NOT NULL, ts INTEGER NOT NULL, account TEXT, reply_to INTEGER,
    edited INTEGER, deleted INTEGER NOT NULL DEFAULT 0, seq INTEGER,
    PRIMARY KEY (room, id)
) WITHOUT ROWID;
CREATE INDEX messages_by_time ON messages (ts);
CREATE UNIQUE INDEX messages_by_seq ON messages (seq);
CREATE TABLE rooms (name TEXT PRIMARY KEY, last_id INTEGER NOT NULL DEFAULT 0);
CREATE TABLE meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID;
INSERT INTO meta VALUES ('search_messages', 0);
CREATE VIRTUAL TABLE message_search USING fts5(text, content = '');
"""

# The writer's statements (insert_messages_json!, raise_last_ids_json!).
INSERT = """INSERT INTO messages (room, id, sender, text, ts, account, reply_to, seq)
SELECT value->>0, value->>1, value->>2, value->>3, value->>4, value->>5, value->>6,
       key + 1 + (SELECT max(coalesce((SELECT max(seq) FROM messages), 0),
                             (SELECT value FROM meta WHERE key = 'search_messages')))
  FROM json_each(?)"""
RAISE = """INSERT INTO rooms (name, last_id) SELECT key, value FROM json_each(?) WHERE true
ON CONFLICT (name) DO UPDATE SET last_id = excluded.last_id
 WHERE excluded.last_id > rooms.last_id"""
INDEX = [
    """INSERT INTO message_search (rowid, text) SELECT seq, text FROM messages
        WHERE seq > (SELECT value FROM meta WHERE key = 'search_messages')""",
    "UPDATE meta SET value = (SELECT max(seq) FROM messages) WHERE key = 'search_messages'",
]
INDEX_GAP = 1024


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rooms", type=int, default=200)
    ap.add_argument("--per-commit", type=int, default=5)
    ap.add_argument("--commits", type=int, default=20000)
    ap.add_argument("--index", action="store_true")
    ap.add_argument("--dir", default=None)
    a = ap.parse_args()
    rng = random.Random(1)
    with tempfile.TemporaryDirectory(dir=a.dir) as tmp:
        db = sqlite3.connect(os.path.join(tmp, "banter.db"), isolation_level=None)
        db.execute("PRAGMA journal_mode = WAL")
        db.execute("PRAGMA synchronous = NORMAL")
        db.execute("PRAGMA temp_store = MEMORY")
        db.executescript(SCHEMA)
        # The batches are made first: only SQLite's work is timed.
        last_id, batches, ts = {}, [], 1_700_000_000_000
        for _ in range(a.commits):
            rows, raised = [], {}
            for _ in range(a.per_commit):
                room = f"room{rng.randrange(a.rooms)}"
                last_id[room] = n = last_id.get(room, 0) + 1
                raised[room] = n
                ts += 1
                text = f"message {n} in {room}: a line of chat about {rng.random():.6f}"
                rows.append([room, n, f"user{rng.randrange(2000)}", text, ts, None, None])
            batches.append((json.dumps(rows), json.dumps(raised)))
        stored = 0
        start = resource.getrusage(resource.RUSAGE_SELF)
        for rows, raised in batches:
            db.execute("BEGIN IMMEDIATE")
            db.execute(INSERT, (rows,))
            db.execute(RAISE, (raised,))
            db.execute("COMMIT")
            stored += a.per_commit
            if a.index and stored >= INDEX_GAP:
                db.execute("BEGIN IMMEDIATE")
                for sql in INDEX:
                    db.execute(sql)
                db.execute("COMMIT")
                stored = 0
        end = resource.getrusage(resource.RUSAGE_SELF)
        db.close()
    user = (end.ru_utime - start.ru_utime) * 1e6
    system = (end.ru_stime - start.ru_stime) * 1e6
    messages = a.commits * a.per_commit
    print(
        f"rooms {a.rooms}, {a.per_commit} a commit, {a.commits} commits"
        f"{', indexed' if a.index else ''} (SQLite {sqlite3.sqlite_version}): "
        f"{(user + system) / a.commits:.1f} us a commit "
        f"(user {user / a.commits:.1f}, system {system / a.commits:.1f}), "
        f"{(user + system) / messages:.1f} us a message"
    )


if __name__ == "__main__":
    main()
