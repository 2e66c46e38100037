package postgres

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
	return linkIdentity(ctx, s.pool, "postgres: link identity", l)
}

// linkIdentity is LinkIdentity on the pool or in a transaction (an import).
func linkIdentity(ctx context.Context, db execer, what string, l *storage.LinkedIdentity) error {
	_, err := db.Exec(ctx, `INSERT INTO linked_identities (`+linkedIdentityColumns+`)
		VALUES ($1, $2, $3, $4, $5, $6)`,
		l.Upstream, l.Subject, l.UserID, l.Email, l.CreatedAt, optTime(l.LastUsedAt))
	return wrapErr(what, err)
}

// GetLinkedIdentity returns the link of the upstream account.
func (s *Store) GetLinkedIdentity(ctx context.Context, upstream, subject string) (*storage.LinkedIdentity, error) {
	return getLinkedIdentity(ctx, s.pool, "postgres: get linked identity", upstream, subject)
}

// getLinkedIdentity is GetLinkedIdentity on the pool or in a transaction.
func getLinkedIdentity(ctx context.Context, db queryRower, what, upstream, subject string) (*storage.LinkedIdentity, error) {
	l, err := scanLinkedIdentity(db.QueryRow(ctx, `SELECT `+linkedIdentityColumns+`
		FROM linked_identities WHERE upstream = $1 AND subject = $2`, upstream, subject))
	return l, wrapErr(what, err)
}

// ListLinkedIdentities returns the user's links ordered by upstream, subject.
// COLLATE "C" orders by bytes, as SQLite does, whatever the database's locale.
func (s *Store) ListLinkedIdentities(ctx context.Context, userID string) ([]storage.LinkedIdentity, error) {
	const what = "postgres: list linked identities"
	rows, err := s.pool.Query(ctx, `SELECT `+linkedIdentityColumns+` FROM linked_identities
		WHERE user_id = $1 ORDER BY upstream COLLATE "C", subject COLLATE "C"`, userID)
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
	return execOne(ctx, s.pool, "postgres: touch linked identity",
		`UPDATE linked_identities SET last_used_at = $1 WHERE upstream = $2 AND subject = $3`, usedAt, upstream, subject)
}

// UnlinkIdentity removes the user's links to upstream.
func (s *Store) UnlinkIdentity(ctx context.Context, userID, upstream string) error {
	return execOne(ctx, s.pool, "postgres: unlink identity",
		`DELETE FROM linked_identities WHERE user_id = $1 AND upstream = $2`, userID, upstream)
}
