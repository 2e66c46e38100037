-- Ending a sign-in session also removes its completed authorization
-- requests whose code was not redeemed (signing out stops a code in flight);
-- this index finds them.

-- +goose Up
CREATE INDEX auth_requests_session_id_idx ON auth_requests (session_id);

-- +goose Down
DROP INDEX auth_requests_session_id_idx;
