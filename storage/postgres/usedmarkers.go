package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/gatehouse-id/gatehouse/storage"
)

// MarkUsed records key as used until expiresAt; ErrConflict while an
// unexpired mark of key exists. The upsert is the atomic step: of concurrent
// calls with one key, one inserts; the others wait for its row, then
// evaluate the DO UPDATE's WHERE against the committed mark, find it live and
// change no row. An expired mark is replaced the same way, by one caller.
func (s *Store) MarkUsed(ctx context.Context, key string, expiresAt, now time.Time) error {
	const what = "postgres: mark used"
	if key == "" {
		// An empty key would make every caller share one mark.
		return errors.New(what + ": empty key")
	}
	tag, err := s.pool.Exec(ctx, `INSERT INTO used_markers (key, expires_at) VALUES ($1, $2)
		ON CONFLICT (key) DO UPDATE SET expires_at = excluded.expires_at
		WHERE used_markers.expires_at <= $3`,
		key, expiresAt, now)
	if err != nil {
		return wrapErr(what, err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("%s: already used: %w", what, storage.ErrConflict)
	}
	return nil
}
