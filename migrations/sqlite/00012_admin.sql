-- What the admin service needs (SQLite): disabled accounts and row versions
-- for compare-and-set updates.
--
-- users.disabled_at: unix milliseconds when an admin disabled the account;
-- NULL for an account that may sign in. A disabled account cannot sign in,
-- use a session, refresh or read userinfo; enabling clears it.
--
-- users.version and clients.version count the changes of the row: every
-- UPDATE adds one, so an admin who read version n can update "if still n"
-- and learns of anyone else's change in between (the admin API's ETag).
-- Existing rows start at 1. The admin listing pages through users by
-- (email, id), which the UNIQUE index on email already serves. DROP COLUMN
-- needs SQLite 3.35 or later.

-- +goose Up
ALTER TABLE users ADD COLUMN disabled_at INTEGER;
ALTER TABLE users ADD COLUMN version INTEGER NOT NULL DEFAULT 1;
ALTER TABLE clients ADD COLUMN version INTEGER NOT NULL DEFAULT 1;

-- +goose Down
ALTER TABLE clients DROP COLUMN version;
ALTER TABLE users DROP COLUMN version;
ALTER TABLE users DROP COLUMN disabled_at;
