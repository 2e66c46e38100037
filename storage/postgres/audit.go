package postgres

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/gatehouse-id/gatehouse/storage"
)

const auditColumns = `id, time, action, actor, subject, ip, user_agent, client_id, detail`

// AppendAudit stores e, giving it a UUIDv7 ID when it has none.
func (s *Store) AppendAudit(ctx context.Context, e *storage.AuditEvent) error {
	e.Clean()
	if e.ID == "" {
		e.ID = uuid.Must(uuid.NewV7()).String()
	}
	detail := e.Detail
	if detail == nil {
		detail = map[string]string{} // pgx would send a nil map as JSON null
	}
	_, err := s.pool.Exec(ctx, `INSERT INTO audit_events (`+auditColumns+`)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`,
		e.ID, e.Time, e.Action, e.Actor, e.Subject, e.IP, e.UserAgent, e.ClientID, detail)
	return wrapErr("postgres: append audit event", err)
}

// ListAudit returns the events f selects, newest first. The WHERE clause is
// built from the fields set, so each shape of query can use an index.
func (s *Store) ListAudit(ctx context.Context, f storage.AuditFilter) ([]storage.AuditEvent, error) {
	const what = "postgres: list audit events"
	var where []string
	var args []any
	arg := func(v any) string {
		args = append(args, v)
		return fmt.Sprintf("$%d", len(args))
	}
	if len(f.Subjects) > 0 {
		where = append(where, "subject = ANY("+arg(f.Subjects)+")")
	}
	if len(f.Actions) > 0 {
		where = append(where, "action = ANY("+arg(f.Actions)+")")
	}
	if f.Actor != "" {
		where = append(where, "actor = "+arg(f.Actor))
	}
	if !f.Since.IsZero() {
		where = append(where, "time >= "+arg(f.Since))
	}
	if f.Before != "" {
		var at time.Time
		err := s.pool.QueryRow(ctx, `SELECT time FROM audit_events WHERE id = $1`, f.Before).Scan(timeCol{&at})
		if err != nil {
			return nil, wrapErr(what+": cursor "+f.Before, err)
		}
		where = append(where, fmt.Sprintf("(time, id) < (%s, %s)", arg(at), arg(f.Before)))
	}
	q := `SELECT ` + auditColumns + ` FROM audit_events`
	if len(where) > 0 {
		q += " WHERE " + strings.Join(where, " AND ")
	}
	q += " ORDER BY time DESC, id DESC"
	if f.Limit > 0 {
		q += " LIMIT " + arg(f.Limit)
	}
	rows, err := s.pool.Query(ctx, q, args...)
	if err != nil {
		return nil, wrapErr(what, err)
	}
	defer rows.Close()
	var out []storage.AuditEvent
	for rows.Next() {
		var e storage.AuditEvent
		if err := rows.Scan(&e.ID, timeCol{&e.Time}, &e.Action, &e.Actor, &e.Subject, &e.IP,
			&e.UserAgent, &e.ClientID, &e.Detail); err != nil {
			return nil, wrapErr(what, err)
		}
		if len(e.Detail) == 0 {
			e.Detail = nil
		}
		out = append(out, e)
	}
	return out, wrapErr(what, rows.Err())
}

// DeleteAuditBefore removes events older than t.
func (s *Store) DeleteAuditBefore(ctx context.Context, t time.Time) (int64, error) {
	tag, err := s.pool.Exec(ctx, `DELETE FROM audit_events WHERE time < $1`, t)
	if err != nil {
		return 0, wrapErr("postgres: delete audit events", err)
	}
	return tag.RowsAffected(), nil
}
