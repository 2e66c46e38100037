-- What the admin service needs (PostgreSQL): disabled accounts, row versions
-- for compare-and-set updates, and an index for paging users by email.
--
-- users.disabled_at: when an admin disabled the account; NULL for an
-- account that may sign in. A disabled account cannot sign in, use a
-- session, refresh or read userinfo; enabling clears it.
--
-- users.version and clients.version count the changes of the row: every
-- UPDATE adds one, so an admin who read version n can update "if still n"
-- and learns of anyone else's change in between (the admin API's ETag).
-- Existing rows start at 1.
--
-- users_email_c_idx: the admin listing pages through users in byte order of
-- the address (COLLATE "C", the order SQLite's binary collation gives), with
-- (email, id) of the last row as the cursor.

-- +goose Up
ALTER TABLE users ADD COLUMN disabled_at timestamptz;
ALTER TABLE users ADD COLUMN version bigint NOT NULL DEFAULT 1;
ALTER TABLE clients ADD COLUMN version bigint NOT NULL DEFAULT 1;
CREATE INDEX users_email_c_idx ON users (email COLLATE "C", id COLLATE "C");

-- +goose Down
DROP INDEX users_email_c_idx;
ALTER TABLE clients DROP COLUMN version;
ALTER TABLE users DROP COLUMN version;
ALTER TABLE users DROP COLUMN disabled_at;
