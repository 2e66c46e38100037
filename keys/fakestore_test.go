package keys

// TEMPORARY: in-memory key store used until storage/sqlite compiles.

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse-id/gatehouse/storage"
)

type fakeStore struct {
	storage.Store
	mu    sync.Mutex
	keys  []storage.SigningKey
	locks sync.Map
}

func newTestStore(t *testing.T) storage.Store { return &fakeStore{} }

func (f *fakeStore) ListSigningKeys(ctx context.Context) ([]storage.SigningKey, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([]storage.SigningKey, len(f.keys))
	copy(out, f.keys)
	return out, nil
}

func (f *fakeStore) CreateSigningKey(ctx context.Context, k *storage.SigningKey) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, e := range f.keys {
		if e.ID == k.ID {
			return storage.ErrConflict
		}
	}
	f.keys = append(f.keys, *k)
	return nil
}

func (f *fakeStore) RotateSigningKeys(ctx context.Context, activeID, nextID string, newNext *storage.SigningKey, now, removeAfter time.Time) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	ai, ni := -1, -1
	for i, e := range f.keys {
		if e.ID == activeID && e.State == storage.KeyActive {
			ai = i
		}
		if e.ID == nextID && e.State == storage.KeyNext {
			ni = i
		}
	}
	if ai < 0 || ni < 0 {
		return fmt.Errorf("rotate: %w", storage.ErrConflict)
	}
	f.keys[ai].State = storage.KeyRetired
	f.keys[ai].RetiredAt = &now
	f.keys[ai].RemoveAfter = &removeAfter
	f.keys[ni].State = storage.KeyActive
	f.keys[ni].ActivatedAt = &now
	f.keys = append(f.keys, *newNext)
	return nil
}

func (f *fakeStore) DeleteExpired(ctx context.Context, now time.Time) (int64, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var n int64
	kept := f.keys[:0]
	for _, k := range f.keys {
		if k.State == storage.KeyRetired && k.RemoveAfter != nil && !k.RemoveAfter.After(now) {
			n++
			continue
		}
		kept = append(kept, k)
	}
	f.keys = kept
	return n, nil
}

func (f *fakeStore) WithLock(ctx context.Context, name string, fn func(ctx context.Context) error) (bool, error) {
	if _, loaded := f.locks.LoadOrStore(name, true); loaded {
		return false, nil
	}
	defer f.locks.Delete(name)
	return true, fn(ctx)
}
