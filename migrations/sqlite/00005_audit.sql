-- The audit trail: who did what to which account, client or key, from where.
-- Times are INTEGER unix milliseconds (UTC); detail is a JSON object. No
-- foreign keys: an event outlives the user or client it concerns (the trail
-- of a deleted account is the point). Rows go after
-- GATEHOUSE_AUDIT_RETENTION (DeleteAuditBefore).

-- +goose Up
CREATE TABLE audit_events (
    id         TEXT    PRIMARY KEY,
    time       INTEGER NOT NULL,
    action     TEXT    NOT NULL,
    actor      TEXT    NOT NULL DEFAULT '',
    subject    TEXT    NOT NULL DEFAULT '',
    ip         TEXT    NOT NULL DEFAULT '',
    user_agent TEXT    NOT NULL DEFAULT '',
    client_id  TEXT    NOT NULL DEFAULT '',
    detail     TEXT    NOT NULL DEFAULT '{}'
) STRICT;
-- Listing is newest first by (time, id), overall or for one subject; the
-- retention delete uses the first index too.
CREATE INDEX audit_events_time_idx ON audit_events (time, id);
CREATE INDEX audit_events_subject_time_idx ON audit_events (subject, time, id);

-- +goose Down
DROP TABLE audit_events;
