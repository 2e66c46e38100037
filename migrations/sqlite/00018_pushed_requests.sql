-- Pushed authorization requests (RFC 9126), SQLite. A pushed request is
-- kept until it is used once at /authorize or expires (60 s); the key is the
-- SHA-256 of its request_uri, never the request_uri itself. params is the
-- form-encoded authorization request, which /authorize validates again when
-- it is used. Times are INTEGER unix milliseconds (UTC); expired rows are
-- swept by the periodic cleanup. clients.require_par (0 or 1): the client may
-- start a sign-in only with a pushed request. DROP COLUMN needs SQLite 3.35
-- or later.

-- +goose Up
CREATE TABLE pushed_requests (
    request_uri_hash BLOB    PRIMARY KEY,
    client_id        TEXT    NOT NULL REFERENCES clients (id) ON DELETE CASCADE,
    params           TEXT    NOT NULL,
    created_at       INTEGER NOT NULL,
    expires_at       INTEGER NOT NULL
) STRICT;
CREATE INDEX pushed_requests_expires_at_idx ON pushed_requests (expires_at);

ALTER TABLE clients ADD COLUMN require_par INTEGER NOT NULL DEFAULT 0;

-- +goose Down
ALTER TABLE clients DROP COLUMN require_par;
DROP TABLE pushed_requests;
