-- Banter schema v10 (PostgreSQL): Web Push subscriptions.
--
-- One row per browser subscription (its endpoint is unique), for the
-- account that made it: the browser's P-256 public key and secret
-- (base64url) and when it subscribed (the oldest goes past the limit).
CREATE TABLE push_subscriptions (
    endpoint TEXT PRIMARY KEY,
    account  TEXT    NOT NULL,   -- accounts.key
    p256dh   TEXT    NOT NULL,
    auth     TEXT    NOT NULL,
    created  BIGINT  NOT NULL    -- Unix ms
);
CREATE INDEX push_subscriptions_by_account ON push_subscriptions (account, created);
