package sqlite

import (
	"context"
	"time"

	"github.com/gatehouse-id/gatehouse/storage"
)

const linkedIdentityColumns = `upstream, subject, user_id, email, created_at, last_used_at`

func scanLinkedIdentity(row rowScanner) (*storage.LinkedIdentity, error) {
	var l storage.LinkedIdentity
	err := row.Scan(&l.Upstream, &l.Subject, &l.UserID, &l.Email, timeCol{&l.CreatedAt}, timeCol{&l.LastUsedAt})
	if err != nil {
		return nil, err
	}
	return &l, nil
}

// LinkIdentity inserts l. The primary key (upstream, subject) makes a second
// link of the account ErrConflict, and the foreign key an unknown user
// ErrNotFound, without a read first that a concurrent link could race.
func (s *Store) LinkIdentity(ctx context.Context, l *storage.LinkedIdentity) error {
	return linkIdentity(ctx, s.q, "sqlite: link identity", l)
}

// linkIdentity is LinkIdentity outside or inside a transaction (an import).
func linkIdentity(ctx context.Context, db execer, what string, l *storage.LinkedIdentity) error {
	_, err := db.ExecContext(ctx, `INSERT INTO linked_identities (`+linkedIdentityColumns+`)
		VALUES (?, ?, ?, ?, ?, ?)`,
		l.Upstream, l.Subject, l.UserID, l.Email, millis(l.CreatedAt), optMillis(l.LastUsedAt))
	return wrapErr(what, err)
}

// GetLinkedIdentity returns the link of the upstream account.
func (s *Store) GetLinkedIdentity(ctx context.Context, upstream, subject string) (*storage.LinkedIdentity, error) {
	return getLinkedIdentity(ctx, s.q, "sqlite: get linked identity", upstream, subject)
}

// getLinkedIdentity is GetLinkedIdentity outside or inside a transaction.
func getLinkedIdentity(ctx context.Context, db queryRower, what, upstream, subject string) (*storage.LinkedIdentity, error) {
	l, err := scanLinkedIdentity(db.QueryRowContext(ctx, `SELECT `+linkedIdentityColumns+`
		FROM linked_identities WHERE upstream = ? AND subject = ?`, upstream, subject))
	return l, wrapErr(what, err)
}

// ListLinkedIdentities returns the user's links ordered by upstream, subject
// (byte order: the columns use SQLite's default BINARY collation).
func (s *Store) ListLinkedIdentities(ctx context.Context, userID string) ([]storage.LinkedIdentity, error) {
	const what = "sqlite: list linked identities"
	rows, err := s.q.QueryContext(ctx, `SELECT `+linkedIdentityColumns+` FROM linked_identities
		WHERE user_id = ? ORDER BY upstream, subject`, userID)
	if err != nil {
		return nil, wrapErr(what, err)
	}
	defer rows.Close()
	var links []storage.LinkedIdentity
	for rows.Next() {
		l, err := scanLinkedIdentity(rows)
		if err != nil {
			return nil, wrapErr(what, err)
		}
		links = append(links, *l)
	}
	return links, wrapErr(what, rows.Err())
}

// TouchLinkedIdentity records a sign-in through the link.
func (s *Store) TouchLinkedIdentity(ctx context.Context, upstream, subject string, usedAt time.Time) error {
	return execOne(ctx, s.q, "sqlite: touch linked identity",
		`UPDATE linked_identities SET last_used_at = ? WHERE upstream = ? AND subject = ?`, millis(usedAt), upstream, subject)
}

// UnlinkIdentity removes the user's links to upstream.
func (s *Store) UnlinkIdentity(ctx context.Context, userID, upstream string) error {
	return execOne(ctx, s.q, "sqlite: unlink identity",
		`DELETE FROM linked_identities WHERE user_id = ? AND upstream = ?`, userID, upstream)
}
