package sqlite

import (
	"context"
	"time"

	"github.com/gatehouse-id/gatehouse/storage"
)

const oneTimeTokenColumns = `hash, kind, user_id, email, created_at, expires_at, used_at`

func scanOneTimeToken(row rowScanner) (*storage.OneTimeToken, error) {
	var t storage.OneTimeToken
	err := row.Scan(&t.Hash, &t.Kind, &t.UserID, &t.Email,
		timeCol{&t.CreatedAt}, timeCol{&t.ExpiresAt}, timePtrCol{&t.UsedAt})
	if err != nil {
		return nil, err
	}
	return &t, nil
}

// CreateOneTimeToken stores t in place of the user's earlier token of the same
// kind, in one statement: the schema allows one token per user and kind.
// ErrNotFound if the user does not exist; ErrConflict if the hash is taken.
func (s *Store) CreateOneTimeToken(ctx context.Context, t *storage.OneTimeToken) error {
	_, err := s.q.ExecContext(ctx, `INSERT INTO one_time_tokens (`+oneTimeTokenColumns+`)
		VALUES (?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (user_id, kind) DO UPDATE SET hash = excluded.hash, email = excluded.email,
			created_at = excluded.created_at, expires_at = excluded.expires_at, used_at = excluded.used_at`,
		t.Hash, t.Kind, t.UserID, t.Email, millis(t.CreatedAt), millis(t.ExpiresAt), ptrMillis(t.UsedAt))
	return wrapErr("sqlite: create one-time token", err)
}

// ConsumeOneTimeToken marks the token used and returns it, in one statement,
// so of concurrent consumers exactly one finds it unused. ErrNotFound if it is
// unknown, of another kind, used, or expired (ExpiresAt <= now).
func (s *Store) ConsumeOneTimeToken(ctx context.Context, hash []byte, kind string, now time.Time) (*storage.OneTimeToken, error) {
	t, err := scanOneTimeToken(s.q.QueryRowContext(ctx, `UPDATE one_time_tokens SET used_at = ?1
		WHERE hash = ?2 AND kind = ?3 AND used_at IS NULL AND expires_at > ?1
		RETURNING `+oneTimeTokenColumns, millis(now), hash, kind))
	return t, wrapErr("sqlite: consume one-time token", err)
}
