-- Clients that require two factors (SQLite): every sign-in into such a
-- client needs a second factor; users without one enrol first. 0 or 1, like
-- require_consent; existing clients get 0. DROP COLUMN needs SQLite 3.35 or
-- later.

-- +goose Up
ALTER TABLE clients ADD COLUMN require_mfa INTEGER NOT NULL DEFAULT 0;

-- +goose Down
ALTER TABLE clients DROP COLUMN require_mfa;
