-- RFC 8707 resource indicators (PostgreSQL): the resources a client may ask
-- tokens for, the ones an authorization request named, and the ones a grant's
-- access tokens may be for. Existing rows get the empty list.

-- +goose Up
ALTER TABLE clients       ADD COLUMN resources text[] NOT NULL DEFAULT '{}';
ALTER TABLE auth_requests ADD COLUMN resources text[] NOT NULL DEFAULT '{}';
ALTER TABLE grants        ADD COLUMN resources text[] NOT NULL DEFAULT '{}';

-- +goose Down
ALTER TABLE grants        DROP COLUMN resources;
ALTER TABLE auth_requests DROP COLUMN resources;
ALTER TABLE clients       DROP COLUMN resources;
