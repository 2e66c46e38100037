package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/gatehouse-id/gatehouse/storage"
)

const logoutDeliveryColumns = `id, client_id, uri, token, user_id, session_id, reason, created_at,
	attempts, next_attempt_at, expires_at, last_attempt_at, last_status, last_error, delivered_at, gave_up_at`

// pendingDelivery is the condition of a delivery neither delivered nor given up.
const pendingDelivery = `delivered_at IS NULL AND gave_up_at IS NULL`

func scanLogoutDelivery(row rowScanner) (*storage.LogoutDelivery, error) {
	var d storage.LogoutDelivery
	err := row.Scan(&d.ID, &d.ClientID, &d.URI, &d.Token, &d.UserID, &d.SessionID, &d.Reason,
		timeCol{&d.CreatedAt}, &d.Attempts, timeCol{&d.NextAttemptAt}, timeCol{&d.ExpiresAt},
		timeCol{&d.LastAttemptAt}, &d.LastStatus, &d.LastError, timePtrCol{&d.DeliveredAt}, timePtrCol{&d.GaveUpAt})
	if err != nil {
		return nil, err
	}
	return &d, nil
}

func scanLogoutDeliveries(rows *sql.Rows, what string) ([]storage.LogoutDelivery, error) {
	defer rows.Close()
	var out []storage.LogoutDelivery
	for rows.Next() {
		d, err := scanLogoutDelivery(rows)
		if err != nil {
			return nil, wrapErr(what, err)
		}
		out = append(out, *d)
	}
	return out, wrapErr(what, rows.Err())
}

// EnqueueLogoutDeliveries inserts ds in one transaction; the first failing
// insert (a taken ID, an unknown client) rolls back the ones before it.
func (s *Store) EnqueueLogoutDeliveries(ctx context.Context, ds []storage.LogoutDelivery) error {
	const what = "sqlite: enqueue logout deliveries"
	if len(ds) == 0 {
		return nil
	}
	for _, d := range ds {
		if d.ID == "" {
			return errors.New(what + ": empty ID")
		}
	}
	return s.inTx(ctx, what, func(tx *txq) error {
		for _, d := range ds {
			_, err := tx.ExecContext(ctx, `INSERT INTO logout_deliveries (`+logoutDeliveryColumns+`)
				VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
				d.ID, d.ClientID, d.URI, d.Token, d.UserID, d.SessionID, d.Reason, millis(d.CreatedAt),
				d.Attempts, millis(d.NextAttemptAt), millis(d.ExpiresAt), optMillis(d.LastAttemptAt),
				d.LastStatus, d.LastError, ptrMillis(d.DeliveredAt), ptrMillis(d.GaveUpAt))
			if err != nil {
				return wrapErr(fmt.Sprintf("%s: %s", what, d.ID), err)
			}
		}
		return nil
	})
}

// ClaimLogoutDeliveries leases the oldest due deliveries. One UPDATE picks
// and leases them: SQLite runs one writer at a time and a RETURNING
// statement makes all its changes before returning its first row, so a
// concurrent claim runs wholly before or after this one and, after it, finds
// these rows no longer due.
func (s *Store) ClaimLogoutDeliveries(ctx context.Context, now time.Time, limit int, lease time.Duration) ([]storage.LogoutDelivery, error) {
	const what = "sqlite: claim logout deliveries"
	if limit <= 0 || lease <= 0 {
		return nil, fmt.Errorf("%s: limit %d and lease %v must be positive", what, limit, lease)
	}
	rows, err := s.q.QueryContext(ctx, `UPDATE logout_deliveries SET next_attempt_at = ?
		WHERE id IN (SELECT id FROM logout_deliveries
			WHERE `+pendingDelivery+` AND next_attempt_at <= ?
			ORDER BY created_at, id LIMIT ?)
		RETURNING `+logoutDeliveryColumns,
		millis(now.Add(lease)), millis(now), limit)
	if err != nil {
		return nil, wrapErr(what, err)
	}
	ds, err := scanLogoutDeliveries(rows, what)
	if err != nil {
		return nil, err
	}
	// RETURNING gives rows in no promised order.
	sortOldestFirst(ds)
	return ds, nil
}

// sortOldestFirst orders deliveries by CreatedAt, then ID (bytes), as the
// claim query picked them.
func sortOldestFirst(ds []storage.LogoutDelivery) {
	slices.SortFunc(ds, func(a, b storage.LogoutDelivery) int {
		if c := a.CreatedAt.Compare(b.CreatedAt); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
}

// CompleteLogoutDelivery marks the pending delivery delivered.
func (s *Store) CompleteLogoutDelivery(ctx context.Context, id string, at time.Time, status int) error {
	return s.finishAttempt(ctx, "sqlite: complete logout delivery", id, `UPDATE logout_deliveries
		SET attempts = attempts + 1, last_attempt_at = ?, last_status = ?, delivered_at = ?
		WHERE id = ? AND `+pendingDelivery, millis(at), status, millis(at), id)
}

// RetryLogoutDelivery records a failed attempt and when to try again.
func (s *Store) RetryLogoutDelivery(ctx context.Context, id string, at time.Time, status int, errText string, next time.Time) error {
	return s.finishAttempt(ctx, "sqlite: retry logout delivery", id, `UPDATE logout_deliveries
		SET attempts = attempts + 1, last_attempt_at = ?, last_status = ?, last_error = ?, next_attempt_at = ?
		WHERE id = ? AND `+pendingDelivery, millis(at), status, errText, millis(next), id)
}

// GiveUpLogoutDelivery records the last failed attempt and gives up.
func (s *Store) GiveUpLogoutDelivery(ctx context.Context, id string, at time.Time, status int, errText string) error {
	return s.finishAttempt(ctx, "sqlite: give up logout delivery", id, `UPDATE logout_deliveries
		SET attempts = attempts + 1, last_attempt_at = ?, last_status = ?, last_error = ?, gave_up_at = ?
		WHERE id = ? AND `+pendingDelivery, millis(at), status, errText, millis(at), id)
}

// finishAttempt runs an update of a pending delivery. When it matches no row
// it tells an unknown delivery (ErrNotFound) from a finished one
// (ErrConflict). The update is the atomic step; the look-up after it only
// names the failure, and finished rows never become pending again.
func (s *Store) finishAttempt(ctx context.Context, what, id, query string, args ...any) error {
	err := execOne(ctx, s.q, what, query, args...)
	if !isNotFound(err) {
		return err
	}
	var one int
	err = s.q.QueryRowContext(ctx, `SELECT 1 FROM logout_deliveries WHERE id = ?`, id).Scan(&one)
	if err != nil {
		return wrapErr(what+": "+id, err)
	}
	return fmt.Errorf("%s: %s already delivered or given up: %w", what, id, storage.ErrConflict)
}

// deliveryStateWhere maps a filter state to its condition.
var deliveryStateWhere = map[string]string{
	storage.DeliveryPending:   pendingDelivery,
	storage.DeliveryDelivered: `delivered_at IS NOT NULL`,
	storage.DeliveryGaveUp:    `gave_up_at IS NOT NULL`,
}

// ListLogoutDeliveries returns the deliveries f selects, newest first. The
// query has one shape per combination of filter fields set (at most sixteen),
// so the prepared-statement cache stays bounded.
func (s *Store) ListLogoutDeliveries(ctx context.Context, f storage.LogoutDeliveryFilter) ([]storage.LogoutDelivery, error) {
	const what = "sqlite: list logout deliveries"
	var where []string
	var args []any
	if f.ClientID != "" {
		where, args = append(where, "client_id = ?"), append(args, f.ClientID)
	}
	if f.UserID != "" {
		where, args = append(where, "user_id = ?"), append(args, f.UserID)
	}
	if f.State != "" {
		cond, ok := deliveryStateWhere[f.State]
		if !ok {
			return nil, fmt.Errorf("%s: unknown state %q", what, f.State)
		}
		where = append(where, cond)
	}
	limit := f.Limit
	if limit <= 0 {
		limit = storage.DefaultLogoutDeliveryLimit
	}
	q := `SELECT ` + logoutDeliveryColumns + ` FROM logout_deliveries`
	if len(where) > 0 {
		q += " WHERE " + strings.Join(where, " AND ")
	}
	rows, err := s.q.QueryContext(ctx, q+" ORDER BY created_at DESC, id DESC LIMIT ?", append(args, limit)...)
	if err != nil {
		return nil, wrapErr(what, err)
	}
	return scanLogoutDeliveries(rows, what)
}

// CountPendingLogoutDeliveries counts pending deliveries up to limit. The
// inner query walks the partial index of pending rows (the claim's) and
// stops at limit.
func (s *Store) CountPendingLogoutDeliveries(ctx context.Context, limit int) (int, error) {
	const what = "sqlite: count pending logout deliveries"
	if limit <= 0 {
		return 0, fmt.Errorf("%s: limit %d must be positive", what, limit)
	}
	var n int
	err := s.q.QueryRowContext(ctx, `SELECT count(*) FROM (SELECT 1 FROM logout_deliveries
		WHERE `+pendingDelivery+` LIMIT ?)`, limit).Scan(&n)
	return n, wrapErr(what, err)
}

// ClientsOfSession returns the clients granted tokens in the session.
func (s *Store) ClientsOfSession(ctx context.Context, sessionID string) ([]string, error) {
	const what = "sqlite: clients of session"
	if sessionID == "" { // grants without a session must not match
		return nil, nil
	}
	rows, err := s.q.QueryContext(ctx, `SELECT DISTINCT client_id FROM grants
		WHERE session_id = ? ORDER BY client_id`, sessionID)
	if err != nil {
		return nil, wrapErr(what, err)
	}
	defer rows.Close()
	var ids []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, wrapErr(what, err)
		}
		ids = append(ids, id)
	}
	return ids, wrapErr(what, rows.Err())
}
