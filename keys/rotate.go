package keys

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/gatehouse-id/gatehouse/storage"
)

// Rotate promotes the next key to active, retires the active key (it stays
// published for RetainAfterRetire) and creates a new next key in the configured
// algorithm. If another process rotated first, Rotate just loads its result.
func (m *Manager) Rotate(ctx context.Context) error {
	all, err := m.store.ListSigningKeys(ctx)
	if err != nil {
		return fmt.Errorf("keys: list signing keys: %w", err)
	}
	return m.rotate(ctx, all)
}

// RotateIfDue rotates when the active key has been active for RotationPeriod.
// It decides on the keys as stored now, not on the in-memory snapshot: a stale
// snapshot could otherwise make it rotate a key another process just activated.
func (m *Manager) RotateIfDue(ctx context.Context) (bool, error) {
	all, err := m.store.ListSigningKeys(ctx)
	if err != nil {
		return false, fmt.Errorf("keys: list signing keys: %w", err)
	}
	active, _ := pick(all)
	if active == nil {
		return false, errors.New("keys: the store has no active signing key (run Init)")
	}
	activated := derefTime(active.ActivatedAt, active.CreatedAt)
	if activated.Add(m.cfg.RotationPeriod).After(m.now()) {
		return false, nil
	}
	if err := m.rotate(ctx, all); err != nil {
		return false, err
	}
	return true, nil
}

// rotate rotates from the given view of the store. RotateSigningKeys checks that
// view is still current, so two processes rotating at once rotate only once.
func (m *Manager) rotate(ctx context.Context, all []storage.SigningKey) error {
	active, next := pick(all)
	if active == nil {
		return errors.New("keys: the store has no active signing key (run Init)")
	}
	now := m.now()
	if next == nil {
		// Only reachable if a next key was deleted by hand. Promoting a key that
		// was never published means relying parties with a cached JWKS must
		// refetch it to verify new tokens; most do so on an unknown kid.
		k, err := m.createNext(ctx, now)
		if errors.Is(err, storage.ErrConflict) {
			// Another process created one (backends allow a single next key),
			// presumably while rotating; take whatever state it left.
			m.log.InfoContext(ctx, "signing keys were changed by another process; loading them")
			return m.Load(ctx)
		}
		if err != nil {
			return err
		}
		m.log.WarnContext(ctx, "no next signing key to promote; created one that signs without having been published first", "kid", k.ID)
		next = k
	}
	newNext, err := newStoredKey(m.sealer, m.cfg.Algorithm, now)
	if err != nil {
		return err
	}
	removeAfter := now.Add(m.cfg.RetainAfterRetire)
	err = m.store.RotateSigningKeys(ctx, active.ID, next.ID, newNext, now, removeAfter)
	switch {
	case errors.Is(err, storage.ErrConflict):
		m.log.InfoContext(ctx, "signing keys were rotated by another process; loading them")
	case err != nil:
		return fmt.Errorf("keys: rotate signing keys: %w", err)
	default:
		m.log.InfoContext(ctx, "rotated signing keys",
			"active", next.ID, "retired", active.ID, "next", newNext.ID, "retired_key_removed_after", removeAfter)
	}
	return m.Load(ctx)
}

// Run keeps the keys current until ctx is done: every interval it reloads them
// (to see rotations by other instances or the CLI) and, holding the cross-process
// lock so only one instance does it, rotates when due. Errors are logged and
// retried on the next tick; a failing database never stops token signing with
// the keys already loaded.
func (m *Manager) Run(ctx context.Context, every time.Duration) {
	if every <= 0 {
		every = time.Minute
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		// Run once at start too: an instance that was down past the rotation
		// time rotates now rather than one interval later.
		m.tick(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (m *Manager) tick(ctx context.Context) {
	if err := m.Load(ctx); err != nil {
		m.log.ErrorContext(ctx, "loading signing keys failed", "err", err)
	}
	var rotated bool
	ran, err := m.store.WithLock(ctx, lockName, func(ctx context.Context) error {
		var err error
		rotated, err = m.RotateIfDue(ctx)
		return err
	})
	switch {
	case err != nil && ctx.Err() == nil:
		m.log.ErrorContext(ctx, "signing key rotation failed", "err", err)
	case !ran:
		m.log.DebugContext(ctx, "another instance holds the key rotation lock")
	case rotated:
		m.log.DebugContext(ctx, "signing key rotation done by this instance")
	}
}
