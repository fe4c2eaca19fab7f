-- Banter schema v8: full-text search (SQLite FTS5).
--
-- message_search indexes the text of room messages. `messages` has no
-- rowid (its key is room and id), so search_rows gives each message one,
-- which is its rowid in the index. Triggers keep both in step with
-- `messages`: an insert adds the text, an edit replaces it, a deletion
-- (a tombstone's empty text) or a removal takes it out.
CREATE TABLE search_rows (
    rowid INTEGER PRIMARY KEY,
    room  TEXT    NOT NULL,
    id    INTEGER NOT NULL,
    UNIQUE (room, id)
);
CREATE VIRTUAL TABLE message_search USING fts5(text, content = '', contentless_delete = 1);

CREATE TRIGGER messages_search_insert AFTER INSERT ON messages BEGIN
    INSERT INTO search_rows (room, id) VALUES (new.room, new.id);
    INSERT INTO message_search (rowid, text) VALUES (last_insert_rowid(), new.text);
END;
CREATE TRIGGER messages_search_update AFTER UPDATE OF text ON messages BEGIN
    DELETE FROM message_search
     WHERE rowid = (SELECT rowid FROM search_rows WHERE room = old.room AND id = old.id);
    INSERT INTO message_search (rowid, text)
    SELECT rowid, new.text FROM search_rows
     WHERE room = new.room AND id = new.id AND new.deleted = 0 AND new.text <> '';
END;
CREATE TRIGGER messages_search_delete AFTER DELETE ON messages BEGIN
    DELETE FROM message_search
     WHERE rowid = (SELECT rowid FROM search_rows WHERE room = old.room AND id = old.id);
    DELETE FROM search_rows WHERE room = old.room AND id = old.id;
END;

-- Messages stored before v8.
INSERT INTO search_rows (room, id) SELECT room, id FROM messages ORDER BY room, id;
INSERT INTO message_search (rowid, text)
SELECT r.rowid, m.text FROM search_rows r JOIN messages m ON m.room = r.room AND m.id = r.id
 WHERE m.deleted = 0;

-- Direct messages have a rowid of their own (their id).
CREATE VIRTUAL TABLE direct_search USING fts5(text, content = '', contentless_delete = 1);
CREATE TRIGGER directs_search_insert AFTER INSERT ON directs BEGIN
    INSERT INTO direct_search (rowid, text) VALUES (new.id, new.text);
END;
CREATE TRIGGER directs_search_update AFTER UPDATE OF text ON directs BEGIN
    DELETE FROM direct_search WHERE rowid = old.id;
    INSERT INTO direct_search (rowid, text)
    SELECT new.id, new.text WHERE new.deleted = 0 AND new.text <> '';
END;
CREATE TRIGGER directs_search_delete AFTER DELETE ON directs BEGIN
    DELETE FROM direct_search WHERE rowid = old.id;
END;
INSERT INTO direct_search (rowid, text) SELECT id, text FROM directs WHERE deleted = 0;
