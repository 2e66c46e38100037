-- private_key_jwt client authentication (RFC 7523 §2.2, OIDC Core §9)
-- (PostgreSQL): a client's public signing keys, as a JWKS document or the
-- URL that serves it. '' for every existing client (they use secrets). Used
-- client-assertion jti values go to used_markers (00007), no table of
-- their own.

-- +goose Up
ALTER TABLE clients ADD COLUMN jwks text NOT NULL DEFAULT '';
ALTER TABLE clients ADD COLUMN jwks_uri text NOT NULL DEFAULT '';

-- +goose Down
ALTER TABLE clients DROP COLUMN jwks_uri;
ALTER TABLE clients DROP COLUMN jwks;
