package admin

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/gatehouse-id/gatehouse/storage"
)

// Key is a signing key as administrators see it: never key material.
type Key struct {
	ID          string // kid
	Algorithm   string
	State       string // storage.KeyActive, KeyNext, KeyRetired
	CreatedAt   time.Time
	ActivatedAt *time.Time
	RetiredAt   *time.Time
	// RemoveAfter is when a retired key leaves the published key set.
	RemoveAfter *time.Time
}

// keyOrder sorts the active key first, then the next one, then retired
// keys, newest first.
var keyOrder = map[string]int{storage.KeyActive: 0, storage.KeyNext: 1, storage.KeyRetired: 2}

// ListKeys returns the signing keys: the active one, the next one
// (published, not yet signing) and the retired ones still published.
func (s *Service) ListKeys(ctx context.Context, a Actor) ([]Key, error) {
	if err := begin(a); err != nil {
		return nil, err
	}
	list, err := s.store.ListSigningKeys(ctx)
	if err != nil {
		return nil, fmt.Errorf("list signing keys: %w", err)
	}
	out := make([]Key, 0, len(list))
	for _, k := range list {
		out = append(out, Key{ID: k.ID, Algorithm: k.Algorithm, State: k.State, CreatedAt: k.CreatedAt,
			ActivatedAt: k.ActivatedAt, RetiredAt: k.RetiredAt, RemoveAfter: k.RemoveAfter})
	}
	slices.SortStableFunc(out, func(x, y Key) int {
		return cmp.Or(cmp.Compare(keyOrder[x.State], keyOrder[y.State]), y.CreatedAt.Compare(x.CreatedAt), cmp.Compare(x.ID, y.ID))
	})
	return out, nil
}

// RotateKeys promotes the next key to active now, retires the active one
// (published until tokens it signed have expired) and publishes a new next
// key. Running servers switch within their reload interval. It returns the
// IDs of the key that signs now and of the one that did before.
func (s *Service) RotateKeys(ctx context.Context, a Actor) (active, previous string, err error) {
	if err := begin(a); err != nil {
		return "", "", err
	}
	if s.keys == nil {
		return "", "", errors.New("admin: no key manager configured")
	}
	previous = s.keys.Active().ID
	if err := s.keys.Rotate(ctx); err != nil {
		return "", "", fmt.Errorf("rotate keys: %w", err)
	}
	active = s.keys.Active().ID
	s.audit(ctx, a, storage.AuditEvent{Action: storage.AuditKeysRotated, Subject: active, Detail: map[string]string{"retired": previous}})
	return active, previous, nil
}
