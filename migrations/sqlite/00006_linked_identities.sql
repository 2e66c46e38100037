-- Accounts at upstream identity providers (GitHub, an OIDC issuer) linked to
-- local users. The key is the upstream's stable subject, never the email:
-- an address can change hands at the upstream, its subject does not. email
-- is what the upstream reported at link time, for display only;
-- last_used_at is NULL until the link is first used to sign in. Times are
-- INTEGER unix milliseconds (UTC). A user's links go with the user.

-- +goose Up
CREATE TABLE linked_identities (
    upstream     TEXT    NOT NULL,
    subject      TEXT    NOT NULL,
    user_id      TEXT    NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    email        TEXT    NOT NULL DEFAULT '',
    created_at   INTEGER NOT NULL,
    last_used_at INTEGER,
    PRIMARY KEY (upstream, subject)
) STRICT;
-- Listing a user's links, unlinking, and the cascade on user deletion.
CREATE INDEX linked_identities_user_id_idx ON linked_identities (user_id);

-- +goose Down
DROP TABLE linked_identities;
