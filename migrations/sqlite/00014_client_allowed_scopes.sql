-- Scopes beyond the OpenID Connect ones a client may ask for (SQLite), a
-- JSON list like resources: gatehouse:admin, the admin API's scope, is
-- issued only to a client that lists it. Existing clients get none. DROP
-- COLUMN needs SQLite 3.35 or later.

-- +goose Up
ALTER TABLE clients ADD COLUMN allowed_scopes TEXT NOT NULL DEFAULT '[]';

-- +goose Down
ALTER TABLE clients DROP COLUMN allowed_scopes;
