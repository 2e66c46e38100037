-- Sign-in lockout counters and single-use emailed tokens (SQLite).
-- Times are INTEGER unix milliseconds (UTC); NULL means "not set".

-- +goose Up
-- One row per normalised submitted email, whether or not an account exists.
-- locked_until is NULL when the key is not locked; updated_at is the last
-- attempt that was let through, which DeleteExpired ages unlocked rows by.
CREATE TABLE login_attempts (
    key          TEXT    PRIMARY KEY,
    failures     INTEGER NOT NULL DEFAULT 0,
    locked_until INTEGER,
    updated_at   INTEGER NOT NULL
) STRICT;
CREATE INDEX login_attempts_updated_at_idx ON login_attempts (updated_at);

-- A new token of a kind replaces the user's earlier ones, so a user holds at
-- most one token per kind: the unique key makes creation a single upsert.
CREATE TABLE one_time_tokens (
    hash       BLOB    PRIMARY KEY,
    kind       TEXT    NOT NULL,
    user_id    TEXT    NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    email      TEXT    NOT NULL DEFAULT '',
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    used_at    INTEGER,
    UNIQUE (user_id, kind)
) STRICT;
CREATE INDEX one_time_tokens_expires_at_idx ON one_time_tokens (expires_at);

-- +goose Down
DROP TABLE one_time_tokens;
DROP TABLE login_attempts;
