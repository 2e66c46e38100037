package admin

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/gatehouse-id/gatehouse/keys"
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

// keyOrder sorts the active keys first, then the next ones, then retired
// keys.
var keyOrder = map[string]int{storage.KeyActive: 0, storage.KeyNext: 1, storage.KeyRetired: 2}

// ListKeys returns the signing keys: the active ones (one per algorithm,
// the default algorithm's first), the next ones (published, not yet
// signing) and the retired ones still published, newest first.
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
	// Within a state, the default algorithm first (then the others in
	// their fixed order), then newest first.
	rank := map[string]int{}
	if s.keys != nil {
		for i, a := range s.keys.Algorithms() {
			rank[string(a)] = i
		}
	}
	slices.SortStableFunc(out, func(x, y Key) int {
		return cmp.Or(cmp.Compare(keyOrder[x.State], keyOrder[y.State]), cmp.Compare(rank[x.Algorithm], rank[y.Algorithm]),
			y.CreatedAt.Compare(x.CreatedAt), cmp.Compare(x.ID, y.ID))
	})
	return out, nil
}

// KeyRotation is what a rotation did to one algorithm's keys.
type KeyRotation struct {
	Algorithm string
	// Active signs now; Previous signed before and is retired (still
	// published until tokens it signed have expired).
	Active, Previous string
}

// RotateKeys rotates the keys of every algorithm: each next key becomes
// active now, each active one is retired (published until tokens it signed
// have expired) and a new next key is published. Running servers switch
// within their reload interval. The default algorithm comes first.
func (s *Service) RotateKeys(ctx context.Context, a Actor) ([]KeyRotation, error) {
	if err := begin(a); err != nil {
		return nil, err
	}
	if s.keys == nil {
		return nil, errors.New("admin: no key manager configured")
	}
	algs := s.keys.Algorithms()
	out := make([]KeyRotation, len(algs))
	for i, alg := range algs {
		out[i] = KeyRotation{Algorithm: string(alg), Previous: s.keys.ActiveFor(alg).ID}
	}
	rotateErr := s.keys.Rotate(ctx)
	detail := map[string]string{}
	for i, alg := range algs {
		out[i].Active = s.keys.ActiveFor(alg).ID
		if out[i].Active != out[i].Previous {
			detail[string(alg)] = out[i].Active
		}
	}
	if len(detail) > 0 { // a failure may leave some rotated
		detail["retired"] = out[0].Previous
		s.audit(ctx, a, storage.AuditEvent{Action: storage.AuditKeysRotated, Subject: out[0].Active, Detail: detail})
	}
	if rotateErr != nil {
		return nil, fmt.Errorf("rotate keys: %w", rotateErr)
	}
	return out, nil
}

// SigningAlgorithms are the algorithms a client may choose for its tokens
// (id_token_signed_response_alg).
func SigningAlgorithms() []string { return keys.Algorithms() }

// DefaultSigningAlgorithm is the algorithm that signs for clients that chose
// none, "" when the service has no key manager.
func (s *Service) DefaultSigningAlgorithm() string {
	if s.keys == nil {
		return ""
	}
	if algs := s.keys.Algorithms(); len(algs) > 0 {
		return string(algs[0])
	}
	return ""
}
