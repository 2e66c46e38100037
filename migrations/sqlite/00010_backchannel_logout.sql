-- Back-channel logout (SQLite): clients' registration and the outbox of
-- logout tokens. Times are INTEGER unix milliseconds (UTC).
--
-- clients: backchannel_logout_uri is where logout tokens are POSTed ('' for
-- none); backchannel_logout_session_required (0 or 1) asks for "sid" in
-- them; offline_survives_logout (0 or 1) keeps offline_access refresh tokens
-- alive when their session ends. Existing clients get none of it. DROP
-- COLUMN needs SQLite 3.35 or later.
--
-- logout_deliveries: one logout token per row, pending until delivered_at or
-- gave_up_at is set (never both). next_attempt_at is when a pending one is
-- due; a claim pushes it forward by a lease. uri is the client's URI at the
-- time, kept so a later registration change does not redirect old tokens.
-- The rows go with their client, but user_id and session_id are loose
-- references on purpose: account deletion enqueues logouts for a user about
-- to vanish, and the record must outlive the session it reports.

-- +goose Up
ALTER TABLE clients ADD COLUMN backchannel_logout_uri TEXT NOT NULL DEFAULT '';
ALTER TABLE clients ADD COLUMN backchannel_logout_session_required INTEGER NOT NULL DEFAULT 0;
ALTER TABLE clients ADD COLUMN offline_survives_logout INTEGER NOT NULL DEFAULT 0;

CREATE TABLE logout_deliveries (
    id              TEXT    PRIMARY KEY,
    client_id       TEXT    NOT NULL REFERENCES clients (id) ON DELETE CASCADE,
    uri             TEXT    NOT NULL,
    token           TEXT    NOT NULL,
    user_id         TEXT    NOT NULL DEFAULT '',
    session_id      TEXT    NOT NULL DEFAULT '',
    reason          TEXT    NOT NULL DEFAULT '',
    created_at      INTEGER NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER NOT NULL,
    expires_at      INTEGER NOT NULL,
    last_attempt_at INTEGER,
    last_status     INTEGER NOT NULL DEFAULT 0,
    last_error      TEXT    NOT NULL DEFAULT '',
    delivered_at    INTEGER,
    gave_up_at      INTEGER,
    CHECK (delivered_at IS NULL OR gave_up_at IS NULL)
) STRICT;
-- Claiming: only pending rows, by due time.
CREATE INDEX logout_deliveries_due_idx ON logout_deliveries (next_attempt_at)
    WHERE delivered_at IS NULL AND gave_up_at IS NULL;
-- Listing newest first (all, by client, by user), the sweep of old finished
-- rows (a row finishes after it is created), and the client cascade.
CREATE INDEX logout_deliveries_created_at_idx ON logout_deliveries (created_at, id);
CREATE INDEX logout_deliveries_client_id_idx ON logout_deliveries (client_id, created_at, id);
CREATE INDEX logout_deliveries_user_id_idx ON logout_deliveries (user_id, created_at, id);

-- +goose Down
DROP TABLE logout_deliveries;
ALTER TABLE clients DROP COLUMN offline_survives_logout;
ALTER TABLE clients DROP COLUMN backchannel_logout_session_required;
ALTER TABLE clients DROP COLUMN backchannel_logout_uri;
