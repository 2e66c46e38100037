-- Device authorization grant (RFC 8628). The device code is kept as its
-- SHA-256 only; the user code normalised (upper case, no dash) and unique,
-- so a code a person types finds one request.

-- +goose Up
CREATE TABLE device_authorizations (
    id               text        PRIMARY KEY,
    device_code_hash bytea       NOT NULL UNIQUE,
    user_code        text        NOT NULL UNIQUE,
    client_id        text        NOT NULL REFERENCES clients (id) ON DELETE CASCADE,
    scopes           text[]      NOT NULL DEFAULT '{}',
    created_at       timestamptz NOT NULL,
    expires_at       timestamptz NOT NULL,
    interval_seconds integer     NOT NULL,
    polls            bigint      NOT NULL DEFAULT 0,
    last_polled_at   timestamptz,
    state            text        NOT NULL DEFAULT 'pending',
    user_id          text        REFERENCES users (id) ON DELETE CASCADE,
    session_id       text        NOT NULL DEFAULT '',
    auth_time        timestamptz,
    amr              text[]      NOT NULL DEFAULT '{}',
    idp              text        NOT NULL DEFAULT '',
    decided_at       timestamptz,
    redeemed_at      timestamptz
);
CREATE INDEX device_authorizations_expires_at_idx ON device_authorizations (expires_at);
CREATE INDEX device_authorizations_user_id_idx ON device_authorizations (user_id);
CREATE INDEX device_authorizations_client_id_idx ON device_authorizations (client_id);

-- +goose Down
DROP TABLE device_authorizations;
