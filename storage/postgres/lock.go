package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
)

// unlockTimeout bounds releasing an advisory lock once fn has returned; it runs
// even when the caller's context is already done.
const unlockTimeout = 5 * time.Second

// WithLock runs fn while holding the session-level advisory lock for name, if
// no other session (in any process) holds it. The lock belongs to one pooled
// connection, kept out of the pool until the lock is released.
func (s *Store) WithLock(ctx context.Context, name string, fn func(ctx context.Context) error) (bool, error) {
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		return false, storeErr(fmt.Sprintf("postgres: lock %q: acquire connection", name), err)
	}
	defer conn.Release()

	key := lockKey("gatehouse lock " + name)
	var locked bool
	if err := conn.QueryRow(ctx, `SELECT pg_try_advisory_lock($1)`, key).Scan(&locked); err != nil {
		return false, fmt.Errorf("postgres: lock %q: %w", name, err)
	}
	if !locked {
		return false, nil
	}
	defer unlock(context.WithoutCancel(ctx), conn, key)
	return true, fn(ctx)
}

// unlock releases the advisory lock. If that fails the connection is closed
// instead: ending the session releases its locks, and Release then drops the
// closed connection rather than pooling it with the lock still held.
func unlock(ctx context.Context, conn *pgxpool.Conn, key int64) {
	ctx, cancel := context.WithTimeout(ctx, unlockTimeout)
	defer cancel()
	var released bool
	err := conn.QueryRow(ctx, `SELECT pg_advisory_unlock($1)`, key).Scan(&released)
	if err != nil || !released {
		conn.Conn().Close(ctx)
	}
}
