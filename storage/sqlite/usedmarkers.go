package sqlite

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/gatehouse-id/gatehouse/storage"
)

// MarkUsed records key as used until expiresAt; ErrConflict while an
// unexpired mark of key exists. The upsert is the atomic step: SQLite runs one
// writer at a time, so of concurrent calls with one key exactly one inserts
// (or replaces an expired mark) and the others find a live mark, which the
// DO UPDATE's WHERE leaves alone, so they change no row.
func (s *Store) MarkUsed(ctx context.Context, key string, expiresAt, now time.Time) error {
	const what = "sqlite: mark used"
	if key == "" {
		// An empty key would make every caller share one mark.
		return errors.New(what + ": empty key")
	}
	res, err := s.q.ExecContext(ctx, `INSERT INTO used_markers (key, expires_at) VALUES (?, ?)
		ON CONFLICT (key) DO UPDATE SET expires_at = excluded.expires_at
		WHERE used_markers.expires_at <= ?`,
		key, millis(expiresAt), millis(now))
	if err != nil {
		return wrapErr(what, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return wrapErr(what, err)
	}
	if n == 0 {
		return fmt.Errorf("%s: already used: %w", what, storage.ErrConflict)
	}
	return nil
}
