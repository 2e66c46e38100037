-- Initial Gatehouse schema for PostgreSQL.
-- Secrets (client secrets, refresh tokens, session cookies, auth codes) are
-- stored only as SHA-256 hashes in bytea columns.

-- +goose Up
CREATE TABLE users (
    id             text        PRIMARY KEY,
    email          text        NOT NULL UNIQUE,
    name           text        NOT NULL DEFAULT '',
    role           text        NOT NULL DEFAULT '',
    email_verified boolean     NOT NULL DEFAULT false,
    password_hash  text        NOT NULL DEFAULT '',
    created_at     timestamptz NOT NULL,
    updated_at     timestamptz NOT NULL
);

CREATE TABLE clients (
    id                        text        PRIMARY KEY,
    name                      text        NOT NULL DEFAULT '',
    secret_hash               bytea,
    redirect_uris             text[]      NOT NULL DEFAULT '{}',
    post_logout_redirect_uris text[]      NOT NULL DEFAULT '{}',
    app_type                  text        NOT NULL DEFAULT '',
    auth_method               text        NOT NULL DEFAULT '',
    grant_types               text[]      NOT NULL DEFAULT '{}',
    access_token_format       text        NOT NULL DEFAULT '',
    require_consent           boolean     NOT NULL DEFAULT false,
    created_at                timestamptz NOT NULL,
    updated_at                timestamptz NOT NULL
);

CREATE TABLE sessions (
    id              text        PRIMARY KEY,
    token_hash      bytea       NOT NULL UNIQUE,
    user_id         text        NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    auth_time       timestamptz NOT NULL,
    amr             text[]      NOT NULL DEFAULT '{}',
    created_at      timestamptz NOT NULL,
    last_seen_at    timestamptz NOT NULL,
    expires_at      timestamptz NOT NULL,
    idle_expires_at timestamptz NOT NULL
);
CREATE INDEX sessions_user_id_idx ON sessions (user_id);
CREATE INDEX sessions_expires_at_idx ON sessions (expires_at);
CREATE INDEX sessions_idle_expires_at_idx ON sessions (idle_expires_at);

-- user_id is NULL until the request is completed. session_id is a loose
-- reference: a request outlives the session that completed it.
CREATE TABLE auth_requests (
    id                    text        PRIMARY KEY,
    client_id             text        NOT NULL REFERENCES clients (id) ON DELETE CASCADE,
    redirect_uri          text        NOT NULL DEFAULT '',
    state                 text        NOT NULL DEFAULT '',
    nonce                 text        NOT NULL DEFAULT '',
    scopes                text[]      NOT NULL DEFAULT '{}',
    response_type         text        NOT NULL DEFAULT '',
    response_mode         text        NOT NULL DEFAULT '',
    code_challenge        text        NOT NULL DEFAULT '',
    code_challenge_method text        NOT NULL DEFAULT '',
    prompt                text[]      NOT NULL DEFAULT '{}',
    max_age               bigint,
    login_hint            text        NOT NULL DEFAULT '',
    hint_subject          text        NOT NULL DEFAULT '',
    created_at            timestamptz NOT NULL,
    expires_at            timestamptz NOT NULL,
    done                  boolean     NOT NULL DEFAULT false,
    user_id               text        REFERENCES users (id) ON DELETE CASCADE,
    session_id            text        NOT NULL DEFAULT '',
    auth_time             timestamptz,
    amr                   text[]      NOT NULL DEFAULT '{}',
    code_hash             bytea       UNIQUE,
    code_expires_at       timestamptz,
    code_used_at          timestamptz
);
CREATE INDEX auth_requests_client_id_idx ON auth_requests (client_id);
CREATE INDEX auth_requests_user_id_idx ON auth_requests (user_id);
CREATE INDEX auth_requests_expires_at_idx ON auth_requests (expires_at);

-- user_id is nullable so a grant without a user (client credentials) fits.
CREATE TABLE grants (
    id         text        PRIMARY KEY,
    user_id    text        REFERENCES users (id) ON DELETE CASCADE,
    client_id  text        NOT NULL REFERENCES clients (id) ON DELETE CASCADE,
    session_id text        NOT NULL DEFAULT '',
    scopes     text[]      NOT NULL DEFAULT '{}',
    auth_time  timestamptz,
    amr        text[]      NOT NULL DEFAULT '{}',
    created_at timestamptz NOT NULL,
    expires_at timestamptz NOT NULL,
    revoked_at timestamptz
);
CREATE INDEX grants_user_id_idx ON grants (user_id);
CREATE INDEX grants_client_id_idx ON grants (client_id);
CREATE INDEX grants_session_id_idx ON grants (session_id);
CREATE INDEX grants_expires_at_idx ON grants (expires_at);

CREATE TABLE refresh_tokens (
    hash        bytea       PRIMARY KEY,
    grant_id    text        NOT NULL REFERENCES grants (id) ON DELETE CASCADE,
    parent_hash bytea,
    scopes      text[]      NOT NULL DEFAULT '{}',
    created_at  timestamptz NOT NULL,
    expires_at  timestamptz NOT NULL,
    rotated_at  timestamptz
);
CREATE INDEX refresh_tokens_grant_id_idx ON refresh_tokens (grant_id);
CREATE INDEX refresh_tokens_expires_at_idx ON refresh_tokens (expires_at);

CREATE TABLE denied_access_tokens (
    token_id   text        PRIMARY KEY,
    expires_at timestamptz NOT NULL
);
CREATE INDEX denied_access_tokens_expires_at_idx ON denied_access_tokens (expires_at);

CREATE TABLE consents (
    user_id    text        NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    client_id  text        NOT NULL REFERENCES clients (id) ON DELETE CASCADE,
    scopes     text[]      NOT NULL DEFAULT '{}',
    granted_at timestamptz NOT NULL,
    PRIMARY KEY (user_id, client_id)
);
CREATE INDEX consents_client_id_idx ON consents (client_id);

CREATE TABLE signing_keys (
    id           text        PRIMARY KEY,
    algorithm    text        NOT NULL,
    state        text        NOT NULL CHECK (state IN ('next', 'active', 'retired')),
    private_key  bytea       NOT NULL,
    public_key   bytea       NOT NULL,
    created_at   timestamptz NOT NULL,
    activated_at timestamptz,
    retired_at   timestamptz,
    remove_after timestamptz
);
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
