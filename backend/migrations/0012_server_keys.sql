-- Banter schema v12: the server's own keys, shared by every node of a
-- cluster: 'vapid', the Web Push key pair (PKCS#8, base64url), made by the
-- first server that needs it.
CREATE TABLE server_keys (
    name  TEXT PRIMARY KEY,
    value TEXT NOT NULL
) WITHOUT ROWID;
