-- Sign-in through upstream identity providers (SQLite).
--
-- idp is the configured ID of the upstream the user signed in through for a
-- session, and so for the auth requests it completed and the grants those
-- produced; '' is Gatehouse's own password. Existing rows get ''.
--
-- used_markers records single-use values (an upstream sign-in's state, later
-- DPoP and client-assertion jti) until they expire, so a replay within that
-- time is refused. expires_at is INTEGER unix milliseconds (UTC); an expired
-- mark may be replaced and is swept by the periodic cleanup.
-- DROP COLUMN needs SQLite 3.35 or later.

-- +goose Up
ALTER TABLE sessions      ADD COLUMN idp TEXT NOT NULL DEFAULT '';
ALTER TABLE auth_requests ADD COLUMN idp TEXT NOT NULL DEFAULT '';
ALTER TABLE grants        ADD COLUMN idp TEXT NOT NULL DEFAULT '';

CREATE TABLE used_markers (
    key        TEXT    PRIMARY KEY,
    expires_at INTEGER NOT NULL
) STRICT;
CREATE INDEX used_markers_expires_at_idx ON used_markers (expires_at);

-- +goose Down
DROP TABLE used_markers;
ALTER TABLE grants        DROP COLUMN idp;
ALTER TABLE auth_requests DROP COLUMN idp;
ALTER TABLE sessions      DROP COLUMN idp;
