package sqlite

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/gatehouse-id/gatehouse/storage"
)

const auditColumns = `id, time, action, actor, subject, ip, user_agent, client_id, detail`

// AppendAudit stores e, giving it a UUIDv7 ID when it has none.
func (s *Store) AppendAudit(ctx context.Context, e *storage.AuditEvent) error {
	const what = "sqlite: append audit event"
	e.Clean()
	if e.ID == "" {
		e.ID = uuid.Must(uuid.NewV7()).String()
	}
	detail := []byte("{}")
	if len(e.Detail) > 0 {
		var err error
		if detail, err = json.Marshal(e.Detail); err != nil {
			return fmt.Errorf("%s: encode detail: %w", what, err)
		}
	}
	_, err := s.q.ExecContext(ctx, `INSERT INTO audit_events (`+auditColumns+`)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		e.ID, millis(e.Time), e.Action, e.Actor, e.Subject, e.IP, e.UserAgent, e.ClientID, string(detail))
	return wrapErr(what, err)
}

// ListAudit returns the events f selects, newest first. The WHERE clause is
// built from the fields set (a few shapes: callers name one or two
// subjects, so the prepared-statement cache stays bounded), and each shape can use an index.
func (s *Store) ListAudit(ctx context.Context, f storage.AuditFilter) ([]storage.AuditEvent, error) {
	const what = "sqlite: list audit events"
	var where []string
	var args []any
	if len(f.Subjects) > 0 {
		where = append(where, "subject IN (?"+strings.Repeat(", ?", len(f.Subjects)-1)+")")
		for _, sub := range f.Subjects {
			args = append(args, sub)
		}
	}
	if len(f.Actions) > 0 {
		where = append(where, "action IN (?"+strings.Repeat(", ?", len(f.Actions)-1)+")")
		for _, a := range f.Actions {
			args = append(args, a)
		}
	}
	if f.Actor != "" {
		where, args = append(where, "actor = ?"), append(args, f.Actor)
	}
	if !f.Since.IsZero() {
		where, args = append(where, "time >= ?"), append(args, millis(f.Since))
	}
	if f.Before != "" {
		var at int64
		err := s.q.QueryRowContext(ctx, `SELECT time FROM audit_events WHERE id = ?`, f.Before).Scan(&at)
		if err != nil {
			return nil, wrapErr(what+": cursor "+f.Before, err)
		}
		where, args = append(where, "(time, id) < (?, ?)"), append(args, at, f.Before)
	}
	q := `SELECT ` + auditColumns + ` FROM audit_events`
	if len(where) > 0 {
		q += " WHERE " + strings.Join(where, " AND ")
	}
	limit := -1 // SQLite: no limit
	if f.Limit > 0 {
		limit = f.Limit
	}
	rows, err := s.q.QueryContext(ctx, q+" ORDER BY time DESC, id DESC LIMIT ?", append(args, limit)...)
	if err != nil {
		return nil, wrapErr(what, err)
	}
	defer rows.Close()
	var out []storage.AuditEvent
	for rows.Next() {
		var e storage.AuditEvent
		var detail string
		if err := rows.Scan(&e.ID, timeCol{&e.Time}, &e.Action, &e.Actor, &e.Subject, &e.IP,
			&e.UserAgent, &e.ClientID, &detail); err != nil {
			return nil, wrapErr(what, err)
		}
		if err := json.Unmarshal([]byte(detail), &e.Detail); err != nil {
			return nil, fmt.Errorf("%s: decode detail of %s: %w", what, e.ID, err)
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
	const what = "sqlite: delete audit events"
	res, err := s.q.ExecContext(ctx, `DELETE FROM audit_events WHERE time < ?`, millis(t))
	if err != nil {
		return 0, wrapErr(what, err)
	}
	n, err := res.RowsAffected()
	return n, wrapErr(what, err)
}
