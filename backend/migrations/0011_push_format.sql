-- Banter schema v11: what a push subscription gets: the JSON a web page's
-- service worker reads ('json'), or an IRC line (draft/webpush: 'irc').
ALTER TABLE push_subscriptions ADD COLUMN format TEXT NOT NULL DEFAULT 'json';
