-- Banter schema v8 (PostgreSQL): full-text search.
--
-- Each message's and direct message's text as a search vector (the
-- 'simple' configuration: words as written, no language's stemming),
-- kept by PostgreSQL itself, with a GIN index. A tombstone's empty text
-- has none.
ALTER TABLE messages ADD COLUMN search tsvector
    GENERATED ALWAYS AS (to_tsvector('simple', text)) STORED;
CREATE INDEX messages_search ON messages USING GIN (search);
ALTER TABLE directs ADD COLUMN search tsvector
    GENERATED ALWAYS AS (to_tsvector('simple', text)) STORED;
CREATE INDEX directs_search ON directs USING GIN (search);
