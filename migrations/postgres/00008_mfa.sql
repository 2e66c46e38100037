-- Second factors (PostgreSQL): passkeys and security keys (WebAuthn), TOTP,
-- and recovery codes. A NULL last_used_at means never used. Every row goes
-- with its user.
--
-- webauthn_credentials: id is the credential ID the authenticator chose,
-- unique across users. sign_count is the authenticator's signature counter
-- (a uint32, hence bigint); aaguid is NULL when the registration carried
-- none.
--
-- webauthn_user_handles: the random, stable handle a user is known by to
-- authenticators (WebAuthn user.id), never the email; at most one per user,
-- kept when the user's passkeys are removed so re-registered ones match.
--
-- totp_factors: one per user; the secret is encrypted by the caller.
-- last_step is the last time step whose code was accepted (0 before the
-- first), so no code is accepted twice.
--
-- recovery_codes: SHA-256 hashes of single-use codes; used_at is set once
-- a code is used. A new set replaces the old one.

-- +goose Up
CREATE TABLE webauthn_credentials (
    id               bytea       PRIMARY KEY,
    user_id          text        NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    name             text        NOT NULL DEFAULT '',
    public_key       bytea       NOT NULL,
    attestation_type text        NOT NULL DEFAULT '',
    aaguid           bytea,
    sign_count       bigint      NOT NULL DEFAULT 0 CHECK (sign_count BETWEEN 0 AND 4294967295),
    transports       text[]      NOT NULL DEFAULT '{}',
    user_verified    boolean     NOT NULL DEFAULT false,
    backup_eligible  boolean     NOT NULL DEFAULT false,
    backup_state     boolean     NOT NULL DEFAULT false,
    created_at       timestamptz NOT NULL,
    last_used_at     timestamptz
);
-- Listing a user's credentials in order, deleting them, and the cascade.
CREATE INDEX webauthn_credentials_user_id_idx ON webauthn_credentials (user_id, created_at, id);

CREATE TABLE webauthn_user_handles (
    user_id text  PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    handle  bytea NOT NULL UNIQUE
);

CREATE TABLE totp_factors (
    user_id      text        PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    secret_enc   bytea       NOT NULL,
    created_at   timestamptz NOT NULL,
    last_step    bigint      NOT NULL DEFAULT 0,
    last_used_at timestamptz
);

CREATE TABLE recovery_codes (
    user_id    text        NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    hash       bytea       NOT NULL,
    created_at timestamptz NOT NULL,
    used_at    timestamptz,
    PRIMARY KEY (user_id, hash)
);

-- +goose Down
DROP TABLE recovery_codes;
DROP TABLE totp_factors;
DROP TABLE webauthn_user_handles;
DROP TABLE webauthn_credentials;
