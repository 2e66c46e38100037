-- Sign-in through upstream identity providers (PostgreSQL).
--
-- idp is the configured ID of the upstream the user signed in through for a
-- session, and so for the auth requests it completed and the grants those
-- produced; '' is Gatehouse's own password. Existing rows get ''.
--
-- used_markers records single-use values (an upstream sign-in's state, later
-- DPoP and client-assertion jti) until they expire, so a replay within that
-- time is refused. An expired mark may be replaced and is swept by the
-- periodic cleanup.

-- +goose Up
ALTER TABLE sessions      ADD COLUMN idp text NOT NULL DEFAULT '';
ALTER TABLE auth_requests ADD COLUMN idp text NOT NULL DEFAULT '';
ALTER TABLE grants        ADD COLUMN idp text NOT NULL DEFAULT '';

CREATE TABLE used_markers (
    key        text        PRIMARY KEY,
    expires_at timestamptz NOT NULL
);
CREATE INDEX used_markers_expires_at_idx ON used_markers (expires_at);

-- +goose Down
DROP TABLE used_markers;
ALTER TABLE grants        DROP COLUMN idp;
ALTER TABLE auth_requests DROP COLUMN idp;
ALTER TABLE sessions      DROP COLUMN idp;
