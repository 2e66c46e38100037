package postgres

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

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

func scanLogoutDeliveries(rows pgx.Rows, what string) ([]storage.LogoutDelivery, error) {
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
	const what = "postgres: enqueue logout deliveries"
	if len(ds) == 0 {
		return nil
	}
	for _, d := range ds {
		if d.ID == "" {
			return errors.New(what + ": empty ID")
		}
	}
	return s.inTx(ctx, what, func(tx pgx.Tx) error {
		for _, d := range ds {
			_, err := tx.Exec(ctx, `INSERT INTO logout_deliveries (`+logoutDeliveryColumns+`)
				VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)`,
				d.ID, d.ClientID, d.URI, d.Token, d.UserID, d.SessionID, d.Reason, d.CreatedAt,
				d.Attempts, d.NextAttemptAt, d.ExpiresAt, optTime(d.LastAttemptAt),
				d.LastStatus, d.LastError, d.DeliveredAt, d.GaveUpAt)
			if err != nil {
				return wrapErr(fmt.Sprintf("%s: %s", what, d.ID), err)
			}
		}
		return nil
	})
}

// ClaimLogoutDeliveries leases the oldest due deliveries in one statement.
// FOR UPDATE SKIP LOCKED makes concurrent claims pass over the rows another
// claim is taking instead of queueing on them; a row leased by a claim that
// committed meanwhile is re-checked against the WHERE (READ COMMITTED), found
// no longer due, and left out. MATERIALIZED keeps the locking subquery from
// being folded into the UPDATE and run more than once.
func (s *Store) ClaimLogoutDeliveries(ctx context.Context, now time.Time, limit int, lease time.Duration) ([]storage.LogoutDelivery, error) {
	const what = "postgres: claim logout deliveries"
	if limit <= 0 || lease <= 0 {
		return nil, fmt.Errorf("%s: limit %d and lease %v must be positive", what, limit, lease)
	}
	rows, err := s.pool.Query(ctx, `WITH due AS MATERIALIZED (
			SELECT id FROM logout_deliveries
			WHERE `+pendingDelivery+` AND next_attempt_at <= $1
			ORDER BY created_at, id COLLATE "C" LIMIT $3
			FOR UPDATE SKIP LOCKED)
		UPDATE logout_deliveries SET next_attempt_at = $2
		WHERE id IN (SELECT id FROM due)
		RETURNING `+logoutDeliveryColumns,
		now, now.Add(lease), limit)
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
	return s.finishAttempt(ctx, "postgres: complete logout delivery", id, `UPDATE logout_deliveries
		SET attempts = attempts + 1, last_attempt_at = $1, last_status = $2, delivered_at = $1
		WHERE id = $3 AND `+pendingDelivery, at, status, id)
}

// RetryLogoutDelivery records a failed attempt and when to try again.
func (s *Store) RetryLogoutDelivery(ctx context.Context, id string, at time.Time, status int, errText string, next time.Time) error {
	return s.finishAttempt(ctx, "postgres: retry logout delivery", id, `UPDATE logout_deliveries
		SET attempts = attempts + 1, last_attempt_at = $1, last_status = $2, last_error = $3, next_attempt_at = $4
		WHERE id = $5 AND `+pendingDelivery, at, status, errText, next, id)
}

// GiveUpLogoutDelivery records the last failed attempt and gives up.
func (s *Store) GiveUpLogoutDelivery(ctx context.Context, id string, at time.Time, status int, errText string) error {
	return s.finishAttempt(ctx, "postgres: give up logout delivery", id, `UPDATE logout_deliveries
		SET attempts = attempts + 1, last_attempt_at = $1, last_status = $2, last_error = $3, gave_up_at = $1
		WHERE id = $4 AND `+pendingDelivery, at, status, errText, id)
}

// finishAttempt runs an update of a pending delivery. When it matches no row
// it tells an unknown delivery (ErrNotFound) from a finished one
// (ErrConflict). The update is the atomic step (concurrent ones queue on the
// row lock and re-check the WHERE); the look-up after it only names the
// failure, and finished rows never become pending again.
func (s *Store) finishAttempt(ctx context.Context, what, id, query string, args ...any) error {
	err := execOne(ctx, s.pool, what, query, args...)
	if !isNotFound(err) {
		return err
	}
	var one int
	err = s.pool.QueryRow(ctx, `SELECT 1 FROM logout_deliveries WHERE id = $1`, id).Scan(&one)
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

// ListLogoutDeliveries returns the deliveries f selects, newest first.
// COLLATE "C" orders IDs by bytes, as SQLite does, whatever the database's
// locale.
func (s *Store) ListLogoutDeliveries(ctx context.Context, f storage.LogoutDeliveryFilter) ([]storage.LogoutDelivery, error) {
	const what = "postgres: list logout deliveries"
	var where []string
	var args []any
	arg := func(v any) string {
		args = append(args, v)
		return fmt.Sprintf("$%d", len(args))
	}
	if f.ClientID != "" {
		where = append(where, "client_id = "+arg(f.ClientID))
	}
	if f.UserID != "" {
		where = append(where, "user_id = "+arg(f.UserID))
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
	q += ` ORDER BY created_at DESC, id COLLATE "C" DESC LIMIT ` + arg(limit)
	rows, err := s.pool.Query(ctx, q, args...)
	if err != nil {
		return nil, wrapErr(what, err)
	}
	return scanLogoutDeliveries(rows, what)
}

// CountPendingLogoutDeliveries counts pending deliveries up to limit. The
// inner query can walk the partial index of pending rows (the claim's) and
// stops at limit.
func (s *Store) CountPendingLogoutDeliveries(ctx context.Context, limit int) (int, error) {
	const what = "postgres: count pending logout deliveries"
	if limit <= 0 {
		return 0, fmt.Errorf("%s: limit %d must be positive", what, limit)
	}
	var n int
	err := s.pool.QueryRow(ctx, `SELECT count(*) FROM (SELECT 1 FROM logout_deliveries
		WHERE `+pendingDelivery+` LIMIT $1) AS pending`, limit).Scan(&n)
	return n, wrapErr(what, err)
}

// ClientsOfSession returns the clients granted tokens in the session, in
// byte order (COLLATE "C", as SQLite orders).
func (s *Store) ClientsOfSession(ctx context.Context, sessionID string) ([]string, error) {
	const what = "postgres: clients of session"
	if sessionID == "" { // grants without a session must not match
		return nil, nil
	}
	rows, err := s.pool.Query(ctx, `SELECT DISTINCT client_id COLLATE "C" FROM grants
		WHERE session_id = $1 ORDER BY 1`, sessionID)
	if err != nil {
		return nil, wrapErr(what, err)
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[string])
	return ids, wrapErr(what, err)
}
