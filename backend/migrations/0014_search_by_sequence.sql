-- Banter schema v14 (SQLite): each room message gets a number in commit
-- order, which is its rowid in the full-text index.
--
-- messages.seq: increasing over every room's messages in the order they
-- were stored (the writer's commit gives it; any other insert gets the
-- next by the trigger below). A unique index keeps it, and it is
-- message_search's rowid: search_rows (v8) and search_queue (v13) go.
-- As for direct messages since v13, meta 'search_messages' is the
-- highest seq indexed, and the writer indexes what is past it, in
-- batches beside the commit: a commit writes one index page for its
-- messages' numbers instead of a queue row each, and indexing writes no
-- per-room page (search_rows' key was the room).
ALTER TABLE messages ADD COLUMN seq INTEGER;

-- What is indexed keeps its rowid in the index.
UPDATE messages SET seq = r.rowid
  FROM search_rows r WHERE r.room = messages.room AND r.id = messages.id;
-- The mark: past every number the index may hold (search_rows' too,
-- should one outlive its message), so that no later message shares one.
INSERT INTO meta (key, value)
SELECT 'search_messages', max(coalesce((SELECT max(seq) FROM messages), 0),
                              coalesce((SELECT max(rowid) FROM search_rows), 0)) WHERE true
    ON CONFLICT (key) DO UPDATE SET value = excluded.value;
-- What was queued (and anything else not indexed) comes after it, to be
-- indexed by the writer.
UPDATE messages SET seq = q.n + (SELECT value FROM meta WHERE key = 'search_messages')
  FROM (SELECT room, id, row_number() OVER (ORDER BY ts, room, id) AS n
          FROM messages WHERE seq IS NULL) q
 WHERE q.room = messages.room AND q.id = messages.id;
CREATE UNIQUE INDEX messages_by_seq ON messages (seq);

DROP TRIGGER messages_search_queue;
DROP TRIGGER messages_search_update;
DROP TRIGGER messages_search_delete;
DROP TABLE search_queue;
DROP TABLE search_rows;

-- A message stored without a number (not by the writer's commit of a
-- batch) gets the next one: past both the highest given and the highest
-- indexed (a removed message's number is never reused for a message that
-- would then count as indexed).
CREATE TRIGGER messages_seq AFTER INSERT ON messages WHEN new.seq IS NULL BEGIN
    UPDATE messages SET seq = 1 + max(
        coalesce((SELECT max(seq) FROM messages), 0),
        (SELECT value FROM meta WHERE key = 'search_messages'))
     WHERE room = new.room AND id = new.id;
END;
-- Edits and deletions change the index at once, for what is indexed
-- already; what is not yet indexed is indexed as it then reads.
CREATE TRIGGER messages_search_update AFTER UPDATE OF text ON messages
WHEN old.seq <= (SELECT value FROM meta WHERE key = 'search_messages') BEGIN
    DELETE FROM message_search WHERE rowid = old.seq;
    INSERT INTO message_search (rowid, text)
    SELECT new.seq, new.text WHERE new.deleted = 0 AND new.text <> '';
END;
CREATE TRIGGER messages_search_delete AFTER DELETE ON messages
WHEN old.seq <= (SELECT value FROM meta WHERE key = 'search_messages') BEGIN
    DELETE FROM message_search WHERE rowid = old.seq;
END;
