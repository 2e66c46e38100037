-- Clients that require two factors (PostgreSQL): every sign-in into such a
-- client needs a second factor; users without one enrol first. Existing
-- clients get false.

-- +goose Up
ALTER TABLE clients ADD COLUMN require_mfa boolean NOT NULL DEFAULT false;

-- +goose Down
ALTER TABLE clients DROP COLUMN require_mfa;
