-- Device authorization grant (RFC 8628). The device code is kept as its
-- SHA-256 only; the user code normalised (upper case, no dash) and unique,
-- so a code a person types finds one request. Times are INTEGER unix
-- milliseconds (UTC); NULL means "not yet".

-- +goose Up
CREATE TABLE device_authorizations (
    id               TEXT    PRIMARY KEY,
    device_code_hash BLOB    NOT NULL UNIQUE,
    user_code        TEXT    NOT NULL UNIQUE,
    client_id        TEXT    NOT NULL REFERENCES clients (id) ON DELETE CASCADE,
    scopes           TEXT    NOT NULL DEFAULT '[]',
    created_at       INTEGER NOT NULL,
    expires_at       INTEGER NOT NULL,
    interval_seconds INTEGER NOT NULL,
    polls            INTEGER NOT NULL DEFAULT 0,
    last_polled_at   INTEGER,
    state            TEXT    NOT NULL DEFAULT 'pending',
    user_id          TEXT    REFERENCES users (id) ON DELETE CASCADE,
    session_id       TEXT    NOT NULL DEFAULT '',
    auth_time        INTEGER,
    amr              TEXT    NOT NULL DEFAULT '[]',
    idp              TEXT    NOT NULL DEFAULT '',
    decided_at       INTEGER,
    redeemed_at      INTEGER
) STRICT;
CREATE INDEX device_authorizations_expires_at_idx ON device_authorizations (expires_at);
CREATE INDEX device_authorizations_user_id_idx ON device_authorizations (user_id);
CREATE INDEX device_authorizations_client_id_idx ON device_authorizations (client_id);

-- +goose Down
DROP TABLE device_authorizations;
