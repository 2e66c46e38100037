-- Dynamic client registration (RFC 7591/7592), SQLite. registration_tokens
-- are the initial access tokens an admin hands out (only their SHA-256 is
-- kept): expires_at NULL never expires, max_uses 0 is unlimited, uses counts
-- the registrations made with it. client_registrations holds the SHA-256 of
-- each registered client's registration access token (RFC 7592), and the
-- initial access token it was registered with ('' for none); it goes with the
-- client. A client created any other way has no row and cannot be managed
-- through the registration endpoint. Times are INTEGER unix milliseconds.

-- +goose Up
CREATE TABLE registration_tokens (
    id         TEXT    PRIMARY KEY,
    hash       BLOB    NOT NULL UNIQUE,
    created_at INTEGER NOT NULL,
    expires_at INTEGER,
    max_uses   INTEGER NOT NULL DEFAULT 0,
    uses       INTEGER NOT NULL DEFAULT 0
) STRICT;

CREATE TABLE client_registrations (
    client_id        TEXT    PRIMARY KEY REFERENCES clients (id) ON DELETE CASCADE,
    token_hash       BLOB    NOT NULL,
    initial_token_id TEXT    NOT NULL DEFAULT '',
    created_at       INTEGER NOT NULL
) STRICT;

-- +goose Down
DROP TABLE client_registrations;
DROP TABLE registration_tokens;
