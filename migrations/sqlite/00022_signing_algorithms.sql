-- Per-client signing algorithms, SQLite. Gatehouse keeps an active and a
-- next signing key of each algorithm it signs with (RS256, ES256, EdDSA),
-- so "one active, one next" becomes one of each per algorithm.
-- clients.id_token_signed_response_alg (OIDC Dynamic Client Registration
-- 1.0 §2) is the algorithm of the client's ID tokens, JWT access tokens and
-- logout tokens; '' means the instance default (GATEHOUSE_SIGNING_ALG).
--
-- Down keeps what an older binary can load: it cannot read EdDSA keys, so
-- they go (tokens they signed stop verifying), and it expects one active and
-- one next key, so the RS256 ones stay and the others are retired (still
-- published for a week, so tokens they signed verify) or, never having
-- signed, deleted.

-- +goose Up
DROP INDEX signing_keys_one_active_idx;
DROP INDEX signing_keys_one_next_idx;
CREATE UNIQUE INDEX signing_keys_one_active_idx ON signing_keys (algorithm) WHERE state = 'active';
CREATE UNIQUE INDEX signing_keys_one_next_idx ON signing_keys (algorithm) WHERE state = 'next';
ALTER TABLE clients ADD COLUMN id_token_signed_response_alg TEXT NOT NULL DEFAULT '';

-- +goose Down
ALTER TABLE clients DROP COLUMN id_token_signed_response_alg;
DELETE FROM signing_keys WHERE algorithm = 'EdDSA';
DELETE FROM signing_keys WHERE state = 'next' AND algorithm <> 'RS256'
    AND EXISTS (SELECT 1 FROM signing_keys k WHERE k.state = 'next' AND k.algorithm = 'RS256');
UPDATE signing_keys SET state = 'retired',
    retired_at = CAST(unixepoch('subsec') * 1000 AS INTEGER),
    remove_after = CAST(unixepoch('subsec') * 1000 AS INTEGER) + 7 * 24 * 3600 * 1000
    WHERE state = 'active' AND algorithm <> 'RS256'
    AND EXISTS (SELECT 1 FROM signing_keys k WHERE k.state = 'active' AND k.algorithm = 'RS256');
DROP INDEX signing_keys_one_active_idx;
DROP INDEX signing_keys_one_next_idx;
CREATE UNIQUE INDEX signing_keys_one_active_idx ON signing_keys (state) WHERE state = 'active';
CREATE UNIQUE INDEX signing_keys_one_next_idx ON signing_keys (state) WHERE state = 'next';
