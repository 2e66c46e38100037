package keys

import (
	"context"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/gatehouse-id/gatehouse/storage"
)

// testClock is a settable clock for Config.Now.
type testClock struct {
	mu sync.Mutex
	t  time.Time
}

func newTestClock() *testClock {
	return &testClock{t: time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)}
}

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *testClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// tWriter sends log output to t.Log so it shows only for failing tests.
type tWriter struct{ t *testing.T }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Helper()
	w.t.Log(string(p))
	return len(p), nil
}

func newTestManager(t *testing.T, store storage.Store, cfg Config) *Manager {
	t.Helper()
	m, err := NewManager(store, testSecret, cfg, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func mustInit(t *testing.T, m *Manager) {
	t.Helper()
	if err := m.Init(context.Background()); err != nil {
		t.Fatalf("Init: %v", err)
	}
}

func listKeys(t *testing.T, s storage.Store) []storage.SigningKey {
	t.Helper()
	all, err := s.ListSigningKeys(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return all
}

// nAlgs is how many algorithms have keys: a complete store holds nAlgs
// active and nAlgs next keys.
var nAlgs = len(algorithms)

// keysByStateOf maps state to the kids in it, for the keys of one algorithm.
func keysByStateOf(t *testing.T, s storage.Store, alg jose.SignatureAlgorithm) map[string][]string {
	t.Helper()
	out := map[string][]string{}
	for _, k := range listKeys(t, s) {
		if k.Algorithm == string(alg) {
			out[k.State] = append(out[k.State], k.ID)
		}
	}
	return out
}

// assertComplete fails t unless the store holds one active and one next key
// of every algorithm and nothing else.
func assertComplete(t *testing.T, s storage.Store) {
	t.Helper()
	for _, alg := range algorithms {
		states := keysByStateOf(t, s, alg)
		if len(states[storage.KeyActive]) != 1 || len(states[storage.KeyNext]) != 1 || len(states) != 2 {
			t.Errorf("%s keys by state = %v, want one active and one next", alg, states)
		}
	}
	if n := len(listKeys(t, s)); n != 2*nAlgs {
		t.Errorf("store holds %d keys, want %d", n, 2*nAlgs)
	}
}

func publishedIDs(m *Manager) []string {
	var ids []string
	for _, p := range m.PublicKeys() {
		ids = append(ids, p.ID)
	}
	return ids
}

func contains(ids []string, id string) bool {
	for _, x := range ids {
		if x == id {
			return true
		}
	}
	return false
}

// signAndVerify signs a JWS with signer's active key of the default
// algorithm and verifies it the way a relying party does: find the published
// key by the kid in the header.
func signAndVerify(t *testing.T, signer, verifier *Manager) {
	t.Helper()
	signAndVerifyAlg(t, signer, verifier, "")
}

// signAndVerifyAlg is signAndVerify with signer's active key of alg.
func signAndVerifyAlg(t *testing.T, signer, verifier *Manager, alg jose.SignatureAlgorithm) {
	t.Helper()
	a := signer.ActiveFor(alg)
	if a.Signer == nil {
		t.Fatalf("no active %s signer", alg)
	}
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: a.Algorithm, Key: jose.JSONWebKey{Key: a.Signer, KeyID: a.ID}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	obj, err := s.Sign([]byte(`{"sub":"u1"}`))
	if err != nil {
		t.Fatal(err)
	}
	compact, err := obj.CompactSerialize()
	if err != nil {
		t.Fatal(err)
	}
	parsed, err := jose.ParseSignedCompact(compact, algorithms)
	if err != nil {
		t.Fatal(err)
	}
	kid := parsed.Signatures[0].Header.KeyID
	for _, p := range verifier.PublicKeys() {
		if p.ID != kid {
			continue
		}
		if p.Use != "sig" || p.Algorithm != a.Algorithm {
			t.Fatalf("published key %s: use %q alg %q", p.ID, p.Use, p.Algorithm)
		}
		if _, err := parsed.Verify(p.Key); err != nil {
			t.Fatalf("signature does not verify with published key %s: %v", kid, err)
		}
		return
	}
	t.Fatalf("kid %s is not published", kid)
}

// hookStore wraps a store to observe or disturb key operations.
type hookStore struct {
	storage.Store
	beforeRotate func() // called before RotateSigningKeys reaches the store
	afterRotate  func(error)
	beforeCreate func() // called before CreateSigningKey reaches the store
	listErr      error
}

func (h *hookStore) RotateSigningKeys(ctx context.Context, activeID, nextID string, newNext *storage.SigningKey, now, removeAfter time.Time) error {
	if h.beforeRotate != nil {
		h.beforeRotate()
	}
	err := h.Store.RotateSigningKeys(ctx, activeID, nextID, newNext, now, removeAfter)
	if h.afterRotate != nil {
		h.afterRotate(err)
	}
	return err
}

func (h *hookStore) ListSigningKeys(ctx context.Context) ([]storage.SigningKey, error) {
	if h.listErr != nil {
		return nil, h.listErr
	}
	return h.Store.ListSigningKeys(ctx)
}

func (h *hookStore) CreateSigningKey(ctx context.Context, k *storage.SigningKey) error {
	if h.beforeCreate != nil {
		h.beforeCreate()
	}
	return h.Store.CreateSigningKey(ctx, k)
}
