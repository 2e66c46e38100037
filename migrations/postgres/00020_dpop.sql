-- DPoP (RFC 9449), PostgreSQL. clients.require_dpop: the client's token
-- requests must carry a DPoP proof. grants.dpop_jkt: the JWK SHA-256
-- thumbprint (RFC 7638) a public client's refresh tokens are bound to, ''
-- when unbound. auth_requests.dpop_jkt: the key /authorize's dpop_jkt
-- parameter bound the code to, ''. Seen proof jtis go in used_markers.

-- +goose Up
ALTER TABLE clients ADD COLUMN require_dpop boolean NOT NULL DEFAULT false;
ALTER TABLE grants ADD COLUMN dpop_jkt text NOT NULL DEFAULT '';
ALTER TABLE auth_requests ADD COLUMN dpop_jkt text NOT NULL DEFAULT '';

-- +goose Down
ALTER TABLE auth_requests DROP COLUMN dpop_jkt;
ALTER TABLE grants DROP COLUMN dpop_jkt;
ALTER TABLE clients DROP COLUMN require_dpop;
