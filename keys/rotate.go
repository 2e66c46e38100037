package keys

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/gatehouse-id/gatehouse/storage"
)

// Rotate rotates the keys of every algorithm: each next key becomes active,
// each active key is retired (it stays published for RetainAfterRetire) and a
// new next key is created. If another process rotated an algorithm first,
// Rotate takes its result for that one. Each algorithm rotates in its own
// transaction: should one fail, the others are rotated all the same and the
// error names it.
func (m *Manager) Rotate(ctx context.Context) error {
	all, err := m.store.ListSigningKeys(ctx)
	if err != nil {
		return fmt.Errorf("keys: list signing keys: %w", err)
	}
	var errs []error
	for _, alg := range m.algorithms() {
		errs = append(errs, m.rotate(ctx, all, alg))
	}
	return errors.Join(append(errs, m.Load(ctx))...)
}

// RotateIfDue rotates each algorithm whose active key has been active for
// RotationPeriod, and reports whether it rotated any. It decides on the keys
// as stored now, not on the in-memory snapshot: a stale snapshot could
// otherwise make it rotate a key another process just activated.
func (m *Manager) RotateIfDue(ctx context.Context) (bool, error) {
	all, err := m.store.ListSigningKeys(ctx)
	if err != nil {
		return false, fmt.Errorf("keys: list signing keys: %w", err)
	}
	var rotated bool
	var errs []error
	for _, alg := range m.algorithms() {
		active, _ := pick(all, alg)
		if active == nil {
			errs = append(errs, fmt.Errorf("keys: the store has no active %s signing key (run Init)", alg))
			continue
		}
		activated := derefTime(active.ActivatedAt, active.CreatedAt)
		if activated.Add(m.cfg.RotationPeriod).After(m.now()) {
			continue
		}
		if err := m.rotate(ctx, all, alg); err != nil {
			errs = append(errs, err)
			continue
		}
		rotated = true
	}
	if rotated {
		errs = append(errs, m.Load(ctx))
	}
	return rotated, errors.Join(errs...)
}

// rotate rotates alg's keys from the given view of the store, without
// loading the result. RotateSigningKeys checks that view is still current,
// so two processes rotating at once rotate only once.
func (m *Manager) rotate(ctx context.Context, all []storage.SigningKey, alg jose.SignatureAlgorithm) error {
	active, next := pick(all, alg)
	if active == nil {
		return fmt.Errorf("keys: the store has no active %s signing key (run Init)", alg)
	}
	now := m.now()
	if next == nil {
		// Only reachable if a next key was deleted by hand. Promoting a key that
		// was never published means relying parties with a cached JWKS must
		// refetch it to verify new tokens; most do so on an unknown kid.
		k, err := m.createNext(ctx, alg, now)
		if errors.Is(err, storage.ErrConflict) {
			// Another process created one (backends allow a single next key
			// per algorithm), presumably while rotating; take its state.
			m.log.InfoContext(ctx, "signing keys were changed by another process", "alg", alg)
			return nil
		}
		if err != nil {
			return err
		}
		m.log.WarnContext(ctx, "no next signing key to promote; created one that signs without having been published first", "kid", k.ID, "alg", alg)
		next = k
	}
	newNext, err := newStoredKey(m.sealer, string(alg), now)
	if err != nil {
		return err
	}
	removeAfter := now.Add(m.cfg.RetainAfterRetire)
	err = m.store.RotateSigningKeys(ctx, active.ID, next.ID, newNext, now, removeAfter)
	switch {
	case errors.Is(err, storage.ErrConflict):
		m.log.InfoContext(ctx, "signing keys were rotated by another process", "alg", alg)
	case err != nil:
		return fmt.Errorf("keys: rotate %s signing keys: %w", alg, err)
	default:
		m.log.InfoContext(ctx, "rotated signing keys", "alg", alg,
			"active", next.ID, "retired", active.ID, "next", newNext.ID, "retired_key_removed_after", removeAfter)
	}
	return nil
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
