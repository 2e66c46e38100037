package keys

import (
	"cmp"
	"context"
	"crypto"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/gatehouse-id/gatehouse/storage"
)

// lockName is the cross-process lock held while keys are created or rotated, so
// that of several instances starting or rotating together only one writes.
const lockName = "keys-rotate"

// Init makes sure the store holds an active and a next key, creating them when
// missing, then loads them. Several processes may call Init on one store at
// once: only the one holding the lock creates keys; the others wait for them.
func (m *Manager) Init(ctx context.Context) error {
	if err := m.ensureKeys(ctx); err != nil {
		return err
	}
	return m.Load(ctx)
}

// ensureKeys creates the active and next keys if the store lacks them.
func (m *Manager) ensureKeys(ctx context.Context) error {
	// Another process holding the lock is usually creating the very keys we
	// miss (or is busy with a quick rotation check). Retry until the keys exist
	// or we get the lock ourselves, backing off, bounded by ctx.
	wait := 20 * time.Millisecond
	for {
		all, err := m.store.ListSigningKeys(ctx)
		if err != nil {
			return fmt.Errorf("keys: list signing keys: %w", err)
		}
		if active, next := pick(all); active != nil && next != nil {
			return nil
		}
		ran, err := m.store.WithLock(ctx, lockName, m.createMissing)
		if err != nil {
			return err
		}
		if ran {
			return nil
		}
		m.log.InfoContext(ctx, "waiting for another process to create signing keys")
		select {
		case <-ctx.Done():
			return fmt.Errorf("keys: waiting for signing keys: %w", ctx.Err())
		case <-time.After(wait):
		}
		wait = min(2*wait, time.Second)
	}
}

// createMissing runs under the lock. It lists again because another process may
// have created the keys between our first look and taking the lock.
func (m *Manager) createMissing(ctx context.Context) error {
	all, err := m.store.ListSigningKeys(ctx)
	if err != nil {
		return fmt.Errorf("keys: list signing keys: %w", err)
	}
	active, next := pick(all)
	now := m.now()
	if active == nil {
		// Nothing was signed before there was an active key, so this one may
		// sign at once without first being published as next.
		k, err := newStoredKey(m.sealer, m.cfg.Algorithm, now)
		if err != nil {
			return err
		}
		k.State = storage.KeyActive
		k.ActivatedAt = &now
		err = m.store.CreateSigningKey(ctx, k)
		switch {
		case errors.Is(err, storage.ErrConflict):
			// Backends allow one active key; a process that does not share our
			// lock created it first. Theirs is as good as ours.
			m.log.InfoContext(ctx, "another process created the active signing key")
		case err != nil:
			return fmt.Errorf("keys: create active signing key: %w", err)
		default:
			m.log.InfoContext(ctx, "created active signing key", "kid", k.ID, "alg", k.Algorithm)
		}
	}
	if next == nil {
		k, err := m.createNext(ctx, now)
		switch {
		case errors.Is(err, storage.ErrConflict):
			m.log.InfoContext(ctx, "another process created the next signing key")
		case err != nil:
			return err
		default:
			m.log.InfoContext(ctx, "created next signing key", "kid", k.ID, "alg", k.Algorithm)
		}
	}
	return nil
}

func (m *Manager) createNext(ctx context.Context, now time.Time) (*storage.SigningKey, error) {
	k, err := newStoredKey(m.sealer, m.cfg.Algorithm, now)
	if err != nil {
		return nil, err
	}
	if err := m.store.CreateSigningKey(ctx, k); err != nil {
		return nil, fmt.Errorf("keys: create next signing key: %w", err)
	}
	return k, nil
}

// Load reads the keys from the store and replaces the in-memory snapshot if the
// active key or the published set changed. On error the previous snapshot stays
// in use, so a database hiccup does not stop token signing.
func (m *Manager) Load(ctx context.Context) error {
	// The lock covers the read too: otherwise a Load that read before a
	// rotation could apply its stale view after a Load that read after it.
	m.loadMu.Lock()
	defer m.loadMu.Unlock()
	all, err := m.store.ListSigningKeys(ctx)
	if err != nil {
		return fmt.Errorf("keys: list signing keys: %w", err)
	}
	return m.apply(ctx, all)
}

// apply builds a snapshot from the stored keys; the caller holds loadMu.
func (m *Manager) apply(ctx context.Context, all []storage.SigningKey) error {
	now := m.now()
	active, next := pick(all)
	if active == nil {
		return errors.New("keys: the store has no active signing key (run Init)")
	}
	published := publishedKeys(all, active, next, now)

	fp := fingerprint(published)
	old := m.snap.Load()
	if fp == old.fingerprint {
		return nil
	}

	// Reuse what the old snapshot already decoded: decrypting and parsing is
	// cheap, but there is no reason to redo it on every change.
	known := make(map[string]PublicKey, len(old.public))
	for _, p := range old.public {
		known[p.ID] = p
	}
	public := make([]PublicKey, 0, len(published))
	var activePub crypto.PublicKey
	for _, k := range published {
		p, ok := known[k.ID]
		if !ok {
			key, err := parsePublic(k)
			if err != nil {
				return err
			}
			p = PublicKey{ID: k.ID, Algorithm: jose.SignatureAlgorithm(k.Algorithm), Key: key, Use: "sig"}
		}
		if k == active {
			activePub = p.Key
		}
		public = append(public, p)
	}

	ak := old.active
	if ak.ID != active.ID {
		signer, err := openPrivate(m.sealer, active, activePub)
		if err != nil {
			return err
		}
		ak = ActiveKey{ID: active.ID, Algorithm: jose.SignatureAlgorithm(active.Algorithm), Signer: signer}
		if active.Algorithm != m.cfg.Algorithm {
			m.log.WarnContext(ctx, "the active signing key's algorithm differs from the configured one; "+
				"it keeps signing, and rotations bring in the configured algorithm (published as next first)",
				"kid", active.ID, "active_alg", active.Algorithm, "configured_alg", m.cfg.Algorithm)
		}
	}

	m.snap.Store(&snapshot{
		version:     old.version + 1,
		fingerprint: fp,
		active:      ak,
		public:      public,
	})
	m.log.DebugContext(ctx, "signing keys loaded", "active", active.ID, "published", len(public), "version", old.version+1)
	return nil
}

// pick returns the active and the next key. Should a race in a backend without
// working locks ever leave two of a kind, the most recently activated (or
// created) wins, the same choice on every instance.
func pick(all []storage.SigningKey) (active, next *storage.SigningKey) {
	for i := range all {
		k := &all[i]
		switch k.State {
		case storage.KeyActive:
			if active == nil || newer(derefTime(k.ActivatedAt, k.CreatedAt), k.ID, derefTime(active.ActivatedAt, active.CreatedAt), active.ID) {
				active = k
			}
		case storage.KeyNext:
			if next == nil || newer(k.CreatedAt, k.ID, next.CreatedAt, next.ID) {
				next = k
			}
		}
	}
	return active, next
}

func newer(t1 time.Time, id1 string, t2 time.Time, id2 string) bool {
	if !t1.Equal(t2) {
		return t1.After(t2)
	}
	return id1 > id2
}

// publishedKeys orders the keys for JWKS: active, then next keys, then retired
// keys still within retention (newest first). A retired key past RemoveAfter is
// left out even before DeleteExpired removes its row: no live token needs it.
// An extra active key (see pick) is still published, so tokens it signed verify.
func publishedKeys(all []storage.SigningKey, active, next *storage.SigningKey, now time.Time) []*storage.SigningKey {
	out := []*storage.SigningKey{active}
	if next != nil {
		out = append(out, next)
	}
	var rest []*storage.SigningKey
	for i := range all {
		k := &all[i]
		if k == active || k == next {
			continue
		}
		if k.State == storage.KeyRetired && k.RemoveAfter != nil && !k.RemoveAfter.After(now) {
			continue
		}
		rest = append(rest, k)
	}
	slices.SortFunc(rest, func(a, b *storage.SigningKey) int {
		if c := cmp.Compare(stateRank(a.State), stateRank(b.State)); c != 0 {
			return c
		}
		if newer(a.CreatedAt, a.ID, b.CreatedAt, b.ID) {
			return -1
		}
		return 1
	})
	return append(out, rest...)
}

func stateRank(s string) int {
	switch s {
	case storage.KeyActive:
		return 0
	case storage.KeyNext:
		return 1
	default:
		return 2
	}
}

// fingerprint identifies the active key and the published set. Keys are
// immutable apart from their state, so kid and state suffice.
func fingerprint(published []*storage.SigningKey) string {
	var b strings.Builder
	for _, k := range published {
		b.WriteString(k.ID)
		b.WriteByte(':')
		b.WriteString(k.State)
		b.WriteByte(';')
	}
	return b.String()
}

func derefTime(t *time.Time, fallback time.Time) time.Time {
	if t == nil {
		return fallback
	}
	return *t
}
