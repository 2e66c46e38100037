-- What the last import (gatehouse import authjs / file) recorded of a user
-- (PostgreSQL), so that a later run applies what changed in the source and
-- never undoes what happened in Gatehouse since: password_sha256 is the
-- SHA-256 of the password hash the import gave the user (NULL for none) —
-- when the user's hash no longer matches it, it was set in Gatehouse and
-- stays; locked_until is the source's lock last carried over (NULL for
-- none), which a later run does not carry again. source_id is the user's ID
-- in the source system. The record goes with the user.

-- +goose Up
CREATE TABLE user_imports (
    user_id         text        PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    source_id       text        NOT NULL DEFAULT '',
    password_sha256 bytea,
    locked_until    timestamptz,
    imported_at     timestamptz NOT NULL
);

-- +goose Down
DROP TABLE user_imports;
