-- Dynamic client registration (RFC 7591/7592), PostgreSQL.
-- registration_tokens are the initial access tokens an admin hands out (only
-- their SHA-256 is kept): expires_at NULL never expires, max_uses 0 is
-- unlimited, uses counts the registrations made with it.
-- client_registrations holds the SHA-256 of each registered client's
-- registration access token (RFC 7592), and the initial access token it was
-- registered with ('' for none); it goes with the client. A client created
-- any other way has no row and cannot be managed through the registration
-- endpoint.

-- +goose Up
CREATE TABLE registration_tokens (
    id         text        PRIMARY KEY,
    hash       bytea       NOT NULL UNIQUE,
    created_at timestamptz NOT NULL,
    expires_at timestamptz,
    max_uses   integer     NOT NULL DEFAULT 0,
    uses       integer     NOT NULL DEFAULT 0
);

CREATE TABLE client_registrations (
    client_id        text        PRIMARY KEY REFERENCES clients (id) ON DELETE CASCADE,
    token_hash       bytea       NOT NULL,
    initial_token_id text        NOT NULL DEFAULT '',
    created_at       timestamptz NOT NULL
);

-- +goose Down
DROP TABLE client_registrations;
DROP TABLE registration_tokens;
