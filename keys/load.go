package keys

import (
	"cmp"
	"context"
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

// Init makes sure the store holds an active and a next key of every
// algorithm, creating them when missing, then loads them. Several processes
// may call Init on one store at once: only the one holding the lock creates
// keys; the others wait for them.
func (m *Manager) Init(ctx context.Context) error {
	if err := m.ensureKeys(ctx); err != nil {
		return err
	}
	return m.Load(ctx)
}

// complete reports whether all holds an active and a next key of every
// algorithm.
func (m *Manager) complete(all []storage.SigningKey) bool {
	for _, alg := range algorithms {
		if active, next := pick(all, alg); active == nil || next == nil {
			return false
		}
	}
	return true
}

// ensureKeys creates the active and next keys the store lacks.
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
		if m.complete(all) {
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
	now := m.now()
	for _, alg := range m.algorithms() {
		if err := m.createMissingOf(ctx, all, alg, now); err != nil {
			return err
		}
	}
	return nil
}

// createMissingOf creates alg's active and next key where all lacks them.
func (m *Manager) createMissingOf(ctx context.Context, all []storage.SigningKey, alg jose.SignatureAlgorithm, now time.Time) error {
	active, next := pick(all, alg)
	if active == nil {
		// Nothing was signed in alg before there was an active key, so this
		// one may sign at once without first being published as next.
		k, err := newStoredKey(m.sealer, string(alg), now)
		if err != nil {
			return err
		}
		k.State = storage.KeyActive
		k.ActivatedAt = &now
		err = m.store.CreateSigningKey(ctx, k)
		switch {
		case errors.Is(err, storage.ErrConflict):
			// Backends allow one active key per algorithm; a process that
			// does not share our lock created it first. Theirs is as good.
			m.log.InfoContext(ctx, "another process created the active signing key", "alg", alg)
		case err != nil:
			return fmt.Errorf("keys: create active %s signing key: %w", alg, err)
		default:
			m.log.InfoContext(ctx, "created active signing key", "kid", k.ID, "alg", k.Algorithm)
		}
	}
	if next == nil {
		k, err := m.createNext(ctx, alg, now)
		switch {
		case errors.Is(err, storage.ErrConflict):
			m.log.InfoContext(ctx, "another process created the next signing key", "alg", alg)
		case err != nil:
			return err
		default:
			m.log.InfoContext(ctx, "created next signing key", "kid", k.ID, "alg", k.Algorithm)
		}
	}
	return nil
}

func (m *Manager) createNext(ctx context.Context, alg jose.SignatureAlgorithm, now time.Time) (*storage.SigningKey, error) {
	k, err := newStoredKey(m.sealer, string(alg), now)
	if err != nil {
		return nil, err
	}
	if err := m.store.CreateSigningKey(ctx, k); err != nil {
		return nil, fmt.Errorf("keys: create next %s signing key: %w", alg, err)
	}
	return k, nil
}

// Load reads the keys from the store and replaces the in-memory snapshot if an
// active key or the published set changed. On error the previous snapshot
// stays in use, so a database hiccup does not stop token signing.
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
	// Keys of an algorithm this version does not sign with (written by a
	// newer one, during a rolling upgrade or after a rollback) are left out
	// rather than failing the load: this process can neither parse nor use them.
	known := make([]storage.SigningKey, 0, len(all))
	var unknown []string
	for _, k := range all {
		if CheckAlgorithm(k.Algorithm) != nil {
			unknown = append(unknown, k.ID+" ("+k.Algorithm+")")
			continue
		}
		known = append(known, k)
	}
	all = known
	var actives, nexts []*storage.SigningKey
	var missing []string
	for i, alg := range m.algorithms() {
		active, next := pick(all, alg)
		if active == nil {
			if i == 0 {
				return fmt.Errorf("keys: the store has no active %s signing key (run Init)", alg)
			}
			missing = append(missing, string(alg))
			continue
		}
		actives = append(actives, active)
		if next != nil {
			nexts = append(nexts, next)
		}
	}
	published := publishedKeys(all, actives, nexts, now)

	fp := fingerprint(published)
	old := m.snap.Load()
	if fp == old.fingerprint {
		return nil
	}
	if len(unknown) > 0 {
		m.log.WarnContext(ctx, "ignoring signing keys of algorithms this version does not support", "keys", unknown)
	}
	if len(missing) > 0 {
		// Only reachable if keys were deleted by hand: clients of these
		// algorithms get no tokens until Init (a restart) creates keys.
		m.log.ErrorContext(ctx, "no active signing key for some algorithms; restart to create them", "algs", missing)
	}

	// Reuse what the old snapshot already decoded: decrypting and parsing is
	// cheap, but there is no reason to redo it on every change.
	decoded := make(map[string]PublicKey, len(old.public))
	for _, p := range old.public {
		decoded[p.ID] = p
	}
	signers := make(map[string]ActiveKey, len(old.active))
	for _, a := range old.active {
		signers[a.ID] = a
	}
	public := make([]PublicKey, 0, len(published))
	activeKeys := make([]ActiveKey, 0, len(actives))
	for i, k := range published {
		p, ok := decoded[k.ID]
		if !ok {
			key, err := parsePublic(k)
			if err != nil {
				return err
			}
			p = PublicKey{ID: k.ID, Algorithm: jose.SignatureAlgorithm(k.Algorithm), Key: key, Use: "sig"}
		}
		public = append(public, p)
		if i >= len(actives) { // publishedKeys puts the active keys first
			continue
		}
		ak, ok := signers[k.ID]
		if !ok {
			signer, err := openPrivate(m.sealer, k, p.Key)
			if err != nil {
				return err
			}
			ak = ActiveKey{ID: k.ID, Algorithm: p.Algorithm, Signer: signer}
		}
		activeKeys = append(activeKeys, ak)
	}

	m.snap.Store(&snapshot{
		version:     old.version + 1,
		fingerprint: fp,
		active:      activeKeys,
		public:      public,
	})
	m.log.DebugContext(ctx, "signing keys loaded", "active", len(activeKeys), "published", len(public), "version", old.version+1)
	return nil
}

// pick returns the active and the next key of alg. Should a race in a
// backend without working locks ever leave two of a kind, the most recently
// activated (or created) wins, the same choice on every instance.
func pick(all []storage.SigningKey, alg jose.SignatureAlgorithm) (active, next *storage.SigningKey) {
	for i := range all {
		k := &all[i]
		if k.Algorithm != string(alg) {
			continue
		}
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

// publishedKeys orders the keys for JWKS: the active keys, then the next
// keys (both in the order given: the default algorithm first), then the
// other keys — retired ones still within retention, newest first. A retired
// key past RemoveAfter is left out even before DeleteExpired removes its row:
// no live token needs it. An extra active key (see pick) is still published,
// so tokens it signed verify.
func publishedKeys(all []storage.SigningKey, actives, nexts []*storage.SigningKey, now time.Time) []*storage.SigningKey {
	out := make([]*storage.SigningKey, 0, len(all))
	out = append(out, actives...)
	out = append(out, nexts...)
	var rest []*storage.SigningKey
	for i := range all {
		k := &all[i]
		if slices.Contains(actives, k) || slices.Contains(nexts, k) {
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

// fingerprint identifies the active keys and the published set. Keys are
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
