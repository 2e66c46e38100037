-- Initial Gatehouse schema for SQLite.
-- Times are INTEGER unix milliseconds (UTC); NULL means "not set".
-- String lists are JSON arrays in TEXT; booleans are INTEGER 0/1.
-- Secrets (client secrets, refresh tokens, session cookies, auth codes) are
-- stored only as SHA-256 hashes in BLOB columns.

-- +goose Up
CREATE TABLE users (
    id             TEXT    PRIMARY KEY,
    email          TEXT    NOT NULL UNIQUE,
    name           TEXT    NOT NULL DEFAULT '',
    role           TEXT    NOT NULL DEFAULT '',
    email_verified INTEGER NOT NULL DEFAULT 0,
    password_hash  TEXT    NOT NULL DEFAULT '',
    created_at     INTEGER NOT NULL,
    updated_at     INTEGER NOT NULL
) STRICT;

CREATE TABLE clients (
    id                        TEXT    PRIMARY KEY,
    name                      TEXT    NOT NULL DEFAULT '',
    secret_hash               BLOB,
    redirect_uris             TEXT    NOT NULL DEFAULT '[]',
    post_logout_redirect_uris TEXT    NOT NULL DEFAULT '[]',
    app_type                  TEXT    NOT NULL DEFAULT '',
    auth_method               TEXT    NOT NULL DEFAULT '',
    grant_types               TEXT    NOT NULL DEFAULT '[]',
    access_token_format       TEXT    NOT NULL DEFAULT '',
    require_consent           INTEGER NOT NULL DEFAULT 0,
    created_at                INTEGER NOT NULL,
    updated_at                INTEGER NOT NULL
) STRICT;

CREATE TABLE sessions (
    id              TEXT    PRIMARY KEY,
    token_hash      BLOB    NOT NULL UNIQUE,
    user_id         TEXT    NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    auth_time       INTEGER NOT NULL,
    amr             TEXT    NOT NULL DEFAULT '[]',
    created_at      INTEGER NOT NULL,
    last_seen_at    INTEGER NOT NULL,
    expires_at      INTEGER NOT NULL,
    idle_expires_at INTEGER NOT NULL
) STRICT;
CREATE INDEX sessions_user_id_idx ON sessions (user_id);
CREATE INDEX sessions_expires_at_idx ON sessions (expires_at);
CREATE INDEX sessions_idle_expires_at_idx ON sessions (idle_expires_at);

-- user_id is NULL until the request is completed. session_id is a loose
-- reference: a request outlives the session that completed it.
CREATE TABLE auth_requests (
    id                    TEXT    PRIMARY KEY,
    client_id             TEXT    NOT NULL REFERENCES clients (id) ON DELETE CASCADE,
    redirect_uri          TEXT    NOT NULL DEFAULT '',
    state                 TEXT    NOT NULL DEFAULT '',
    nonce                 TEXT    NOT NULL DEFAULT '',
    scopes                TEXT    NOT NULL DEFAULT '[]',
    response_type         TEXT    NOT NULL DEFAULT '',
    response_mode         TEXT    NOT NULL DEFAULT '',
    code_challenge        TEXT    NOT NULL DEFAULT '',
    code_challenge_method TEXT    NOT NULL DEFAULT '',
    prompt                TEXT    NOT NULL DEFAULT '[]',
    max_age               INTEGER,
    login_hint            TEXT    NOT NULL DEFAULT '',
    hint_subject          TEXT    NOT NULL DEFAULT '',
    created_at            INTEGER NOT NULL,
    expires_at            INTEGER NOT NULL,
    done                  INTEGER NOT NULL DEFAULT 0,
    user_id               TEXT    REFERENCES users (id) ON DELETE CASCADE,
    session_id            TEXT    NOT NULL DEFAULT '',
    auth_time             INTEGER,
    amr                   TEXT    NOT NULL DEFAULT '[]',
    code_hash             BLOB    UNIQUE,
    code_expires_at       INTEGER,
    code_used_at          INTEGER
) STRICT;
CREATE INDEX auth_requests_client_id_idx ON auth_requests (client_id);
CREATE INDEX auth_requests_user_id_idx ON auth_requests (user_id);
CREATE INDEX auth_requests_expires_at_idx ON auth_requests (expires_at);

-- user_id is nullable so a grant without a user (client credentials) fits.
CREATE TABLE grants (
    id         TEXT    PRIMARY KEY,
    user_id    TEXT    REFERENCES users (id) ON DELETE CASCADE,
    client_id  TEXT    NOT NULL REFERENCES clients (id) ON DELETE CASCADE,
    session_id TEXT    NOT NULL DEFAULT '',
    scopes     TEXT    NOT NULL DEFAULT '[]',
    auth_time  INTEGER,
    amr        TEXT    NOT NULL DEFAULT '[]',
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    revoked_at INTEGER
) STRICT;
CREATE INDEX grants_user_id_idx ON grants (user_id);
CREATE INDEX grants_client_id_idx ON grants (client_id);
CREATE INDEX grants_session_id_idx ON grants (session_id);
CREATE INDEX grants_expires_at_idx ON grants (expires_at);

CREATE TABLE refresh_tokens (
    hash        BLOB    PRIMARY KEY,
    grant_id    TEXT    NOT NULL REFERENCES grants (id) ON DELETE CASCADE,
    parent_hash BLOB,
    scopes      TEXT    NOT NULL DEFAULT '[]',
    created_at  INTEGER NOT NULL,
    expires_at  INTEGER NOT NULL,
    rotated_at  INTEGER
) STRICT;
CREATE INDEX refresh_tokens_grant_id_idx ON refresh_tokens (grant_id);
CREATE INDEX refresh_tokens_expires_at_idx ON refresh_tokens (expires_at);

CREATE TABLE denied_access_tokens (
    token_id   TEXT    PRIMARY KEY,
    expires_at INTEGER NOT NULL
) STRICT;
CREATE INDEX denied_access_tokens_expires_at_idx ON denied_access_tokens (expires_at);

CREATE TABLE consents (
    user_id    TEXT    NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    client_id  TEXT    NOT NULL REFERENCES clients (id) ON DELETE CASCADE,
    scopes     TEXT    NOT NULL DEFAULT '[]',
    granted_at INTEGER NOT NULL,
    PRIMARY KEY (user_id, client_id)
) STRICT;
CREATE INDEX consents_client_id_idx ON consents (client_id);

CREATE TABLE signing_keys (
    id           TEXT    PRIMARY KEY,
    algorithm    TEXT    NOT NULL,
    state        TEXT    NOT NULL CHECK (state IN ('next', 'active', 'retired')),
    private_key  BLOB    NOT NULL,
    public_key   BLOB    NOT NULL,
    created_at   INTEGER NOT NULL,
    activated_at INTEGER,
    retired_at   INTEGER,
    remove_after INTEGER
) STRICT;
-- At most one key signs and at most one waits to: rotation relies on it, and a
-- second process racing to create either gets ErrConflict instead of a fork.
CREATE UNIQUE INDEX signing_keys_one_active_idx ON signing_keys (state) WHERE state = 'active';
CREATE UNIQUE INDEX signing_keys_one_next_idx ON signing_keys (state) WHERE state = 'next';

-- +goose Down
DROP TABLE signing_keys;
DROP TABLE consents;
DROP TABLE denied_access_tokens;
DROP TABLE refresh_tokens;
DROP TABLE grants;
DROP TABLE auth_requests;
DROP TABLE sessions;
DROP TABLE clients;
DROP TABLE users;
