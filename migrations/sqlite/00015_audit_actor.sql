-- The admin console filters the audit trail by who acted ("what did this
-- admin do"): an index by actor keeps that a range scan, newest first.

-- +goose Up
CREATE INDEX audit_events_actor_time_idx ON audit_events (actor, time, id);

-- +goose Down
DROP INDEX audit_events_actor_time_idx;
