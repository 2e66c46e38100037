-- The audit trail: who did what to which account, client or key, from where.
-- No foreign keys: an event outlives the user or client it concerns (the
-- trail of a deleted account is the point). Rows go after
-- GATEHOUSE_AUDIT_RETENTION (DeleteAuditBefore).

-- +goose Up
CREATE TABLE audit_events (
    id         text        PRIMARY KEY,
    time       timestamptz NOT NULL,
    action     text        NOT NULL,
    actor      text        NOT NULL DEFAULT '',
    subject    text        NOT NULL DEFAULT '',
    ip         text        NOT NULL DEFAULT '',
    user_agent text        NOT NULL DEFAULT '',
    client_id  text        NOT NULL DEFAULT '',
    detail     jsonb       NOT NULL DEFAULT '{}'
);
-- Listing is newest first by (time, id), overall or for one subject; the
-- retention delete uses the first index too.
CREATE INDEX audit_events_time_idx ON audit_events (time, id);
CREATE INDEX audit_events_subject_time_idx ON audit_events (subject, time, id);

-- +goose Down
DROP TABLE audit_events;
