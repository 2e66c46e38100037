-- Where a session was signed in from (PostgreSQL), for the account page's
-- list of sessions ("Where you're signed in") and `gatehouse users sessions`.
--
-- user_agent is the browser's User-Agent header at sign-in, valid UTF-8
-- without control characters and cut to at most 512 bytes on a character
-- boundary (storage.Session.Clean); ip is the client address the sign-in
-- came from (X-Forwarded-For only from trusted proxies). Existing sessions
-- get '' for both: unknown.

-- +goose Up
ALTER TABLE sessions ADD COLUMN user_agent text NOT NULL DEFAULT '';
ALTER TABLE sessions ADD COLUMN ip         text NOT NULL DEFAULT '';

-- +goose Down
ALTER TABLE sessions DROP COLUMN ip;
ALTER TABLE sessions DROP COLUMN user_agent;
