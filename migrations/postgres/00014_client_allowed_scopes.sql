-- Scopes beyond the OpenID Connect ones a client may ask for (PostgreSQL):
-- gatehouse:admin, the admin API's scope, is issued only to a client that
-- lists it. Existing clients get none.

-- +goose Up
ALTER TABLE clients ADD COLUMN allowed_scopes text[] NOT NULL DEFAULT '{}';

-- +goose Down
ALTER TABLE clients DROP COLUMN allowed_scopes;
