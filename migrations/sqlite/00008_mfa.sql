-- Second factors (SQLite): passkeys and security keys (WebAuthn), TOTP, and
-- recovery codes. Times are INTEGER unix milliseconds (UTC); a NULL
-- last_used_at means never used. Every row goes with its user.
--
-- webauthn_credentials: id is the credential ID the authenticator chose,
-- unique across users. sign_count is the authenticator's signature counter
-- (a uint32), transports a JSON list of strings, the flags 0 or 1; aaguid is
-- NULL when the registration carried none.
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
    id               BLOB    PRIMARY KEY,
    user_id          TEXT    NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    name             TEXT    NOT NULL DEFAULT '',
    public_key       BLOB    NOT NULL,
    attestation_type TEXT    NOT NULL DEFAULT '',
    aaguid           BLOB,
    sign_count       INTEGER NOT NULL DEFAULT 0 CHECK (sign_count BETWEEN 0 AND 4294967295),
    transports       TEXT    NOT NULL DEFAULT '[]',
    user_verified    INTEGER NOT NULL DEFAULT 0,
    backup_eligible  INTEGER NOT NULL DEFAULT 0,
    backup_state     INTEGER NOT NULL DEFAULT 0,
    created_at       INTEGER NOT NULL,
    last_used_at     INTEGER
) STRICT;
-- Listing a user's credentials in order, deleting them, and the cascade.
CREATE INDEX webauthn_credentials_user_id_idx ON webauthn_credentials (user_id, created_at, id);

CREATE TABLE webauthn_user_handles (
    user_id TEXT PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    handle  BLOB NOT NULL UNIQUE
) STRICT;

CREATE TABLE totp_factors (
    user_id      TEXT    PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    secret_enc   BLOB    NOT NULL,
    created_at   INTEGER NOT NULL,
    last_step    INTEGER NOT NULL DEFAULT 0,
    last_used_at INTEGER
) STRICT;

CREATE TABLE recovery_codes (
    user_id    TEXT    NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    hash       BLOB    NOT NULL,
    created_at INTEGER NOT NULL,
    used_at    INTEGER,
    PRIMARY KEY (user_id, hash)
) STRICT;

-- +goose Down
DROP TABLE recovery_codes;
DROP TABLE totp_factors;
DROP TABLE webauthn_user_handles;
DROP TABLE webauthn_credentials;
