-- Where a session was signed in from (SQLite), for the account page's list
-- of sessions ("Where you're signed in") and `gatehouse users sessions`.
--
-- user_agent is the browser's User-Agent header at sign-in, valid UTF-8
-- without control characters and cut to at most 512 bytes on a character
-- boundary (storage.Session.Clean); ip is the client address the sign-in
-- came from (X-Forwarded-For only from trusted proxies). Existing sessions
-- get '' for both: unknown. DROP COLUMN needs SQLite 3.35 or later.

-- +goose Up
ALTER TABLE sessions ADD COLUMN user_agent TEXT NOT NULL DEFAULT '';
ALTER TABLE sessions ADD COLUMN ip         TEXT NOT NULL DEFAULT '';

-- +goose Down
ALTER TABLE sessions DROP COLUMN ip;
ALTER TABLE sessions DROP COLUMN user_agent;
