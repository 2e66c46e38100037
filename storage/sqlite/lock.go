package sqlite

import (
	"context"
	"sync"
)

// namedLocks is the in-process stand-in for a cross-process lock: SQLite
// deployments are single node, so one process is the only contender.
type namedLocks struct {
	mu   sync.Mutex
	held map[string]bool
}

func (l *namedLocks) tryAcquire(name string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.held[name] {
		return false
	}
	if l.held == nil {
		l.held = make(map[string]bool)
	}
	l.held[name] = true
	return true
}

func (l *namedLocks) release(name string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.held, name)
}

// WithLock runs fn if no other caller of this Store holds the lock name. It
// does not exclude other processes or other Stores on the same file: a SQLite
// database is served by a single Gatehouse process.
func (s *Store) WithLock(ctx context.Context, name string, fn func(ctx context.Context) error) (bool, error) {
	if !s.locks.tryAcquire(name) {
		return false, nil
	}
	defer s.locks.release(name)
	return true, fn(ctx)
}
