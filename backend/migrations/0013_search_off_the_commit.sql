-- Banter schema v13 (SQLite): the full-text index is kept beside the
-- commit, not in it.
--
-- v8's triggers indexed each message inside the transaction that stored
-- it, which halved the store's throughput. Now a stored message only
-- queues its key in search_queue (an append-only table: one page per
-- commit, not one per room), and the writer indexes what is queued in
-- batches of its own: in the gaps between commits, after a moment idle,
-- at once when thousands wait, and always before a search reads it (so a search
-- finds every message committed before it). A crash leaves the queue on
-- disk, to be indexed after the restart.
--
-- Direct messages need no queue: their ids increase in commit order, so
-- meta 'search_directs' (the highest id indexed) says where to go on.
-- Edits and deletions still change the index at once, for what is
-- indexed already; what is not yet indexed is indexed as it then reads.
CREATE TABLE search_queue (
    rowid INTEGER PRIMARY KEY,
    room  TEXT    NOT NULL,
    id    INTEGER NOT NULL
);

DROP TRIGGER messages_search_insert;
CREATE TRIGGER messages_search_queue AFTER INSERT ON messages BEGIN
    INSERT INTO search_queue (room, id) VALUES (new.room, new.id);
END;

DROP TRIGGER directs_search_insert;
DROP TRIGGER directs_search_update;
DROP TRIGGER directs_search_delete;
INSERT INTO meta (key, value) SELECT 'search_directs', coalesce(max(id), 0) FROM directs WHERE true
    ON CONFLICT (key) DO UPDATE SET value = excluded.value;
CREATE TRIGGER directs_search_update AFTER UPDATE OF text ON directs
WHEN old.id <= (SELECT value FROM meta WHERE key = 'search_directs') BEGIN
    DELETE FROM direct_search WHERE rowid = old.id;
    INSERT INTO direct_search (rowid, text)
    SELECT new.id, new.text WHERE new.deleted = 0 AND new.text <> '';
END;
CREATE TRIGGER directs_search_delete AFTER DELETE ON directs
WHEN old.id <= (SELECT value FROM meta WHERE key = 'search_directs') BEGIN
    DELETE FROM direct_search WHERE rowid = old.id;
END;
