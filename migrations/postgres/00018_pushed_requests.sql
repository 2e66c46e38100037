-- Pushed authorization requests (RFC 9126), PostgreSQL. A pushed request is
-- kept until it is used once at /authorize or expires (60 s); the key is the
-- SHA-256 of its request_uri, never the request_uri itself. params is the
-- form-encoded authorization request, which /authorize validates again when
-- it is used. Expired rows are swept by the periodic cleanup.
-- clients.require_par: the client may start a sign-in only with a pushed
-- request; existing clients get false.

-- +goose Up
CREATE TABLE pushed_requests (
    request_uri_hash bytea       PRIMARY KEY,
    client_id        text        NOT NULL REFERENCES clients (id) ON DELETE CASCADE,
    params           text        NOT NULL,
    created_at       timestamptz NOT NULL,
    expires_at       timestamptz NOT NULL
);
CREATE INDEX pushed_requests_expires_at_idx ON pushed_requests (expires_at);

ALTER TABLE clients ADD COLUMN require_par boolean NOT NULL DEFAULT false;

-- +goose Down
ALTER TABLE clients DROP COLUMN require_par;
DROP TABLE pushed_requests;
