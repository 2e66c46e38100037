-- RFC 8707 resource indicators (SQLite): the resources a client may ask
-- tokens for, the ones an authorization request named, and the ones a grant's
-- access tokens may be for, each a JSON list like the other list columns.
-- Existing rows get the empty list. DROP COLUMN needs SQLite 3.35 or later.

-- +goose Up
ALTER TABLE clients       ADD COLUMN resources TEXT NOT NULL DEFAULT '[]';
ALTER TABLE auth_requests ADD COLUMN resources TEXT NOT NULL DEFAULT '[]';
ALTER TABLE grants        ADD COLUMN resources TEXT NOT NULL DEFAULT '[]';

-- +goose Down
ALTER TABLE grants        DROP COLUMN resources;
ALTER TABLE auth_requests DROP COLUMN resources;
ALTER TABLE clients       DROP COLUMN resources;
