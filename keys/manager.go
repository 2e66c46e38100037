package keys

import (
	"crypto"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/gatehouse-id/gatehouse/storage"
)

// Defaults for Config.
const (
	DefaultAlgorithm      = "RS256"
	DefaultRotationPeriod = 30 * 24 * time.Hour
	// DefaultRetainAfterRetire keeps a retired key in JWKS for a week: far longer
	// than any token Gatehouse signs lives, so relying parties that verify late
	// (or an id_token_hint presented at logout) still find the key.
	DefaultRetainAfterRetire = 7 * 24 * time.Hour
)

// minSecretLen is the shortest GATEHOUSE_SECRET accepted. HKDF does not add
// entropy; a short secret would make every derived key guessable.
const minSecretLen = 16

// Config configures a Manager. Zero fields take the defaults above.
type Config struct {
	// Algorithm for newly created keys: "RS256" (default) or "ES256".
	//
	// Changing it does not switch algorithms silently: if the stored active key
	// uses another algorithm the Manager keeps signing with it (and logs a
	// warning). The next rotation creates the new "next" key in the configured
	// algorithm; the rotation after that makes it active. That way the new key is
	// published for a whole period before it signs, like every other key.
	Algorithm string
	// RotationPeriod is how long a key stays active before Run rotates it.
	RotationPeriod time.Duration
	// RetainAfterRetire is how long a retired key stays published. It must be at
	// least the longest lifetime of a token signed by the key.
	RetainAfterRetire time.Duration
	// Now is the clock; time.Now when nil.
	Now func() time.Time
}

// ActiveKey is the key that signs tokens now.
type ActiveKey struct {
	ID        string
	Algorithm jose.SignatureAlgorithm
	// Signer is an *rsa.PrivateKey (RS256) or *ecdsa.PrivateKey (ES256).
	Signer crypto.Signer
}

// PublicKey is one key published in JWKS.
type PublicKey struct {
	ID        string
	Algorithm jose.SignatureAlgorithm
	// Key is an *rsa.PublicKey or *ecdsa.PublicKey.
	Key crypto.PublicKey
	Use string // always "sig"
}

// JSONWebKey returns the key as a JWK, for building a JWKS document.
func (p PublicKey) JSONWebKey() jose.JSONWebKey {
	return jose.JSONWebKey{Key: p.Key, KeyID: p.ID, Algorithm: string(p.Algorithm), Use: p.Use}
}

// Manager loads, creates and rotates signing keys through a Store and serves the
// current signer and public keys from memory. It is safe for concurrent use;
// Active, PublicKeys and Version never block and do no I/O.
type Manager struct {
	store  storage.Store
	sealer *sealer
	cfg    Config
	log    *slog.Logger

	// snap is replaced wholesale on every change and never mutated, so readers
	// need no lock.
	snap atomic.Pointer[snapshot]
	// loadMu serialises Load (store read and snapshot swap) so versions increase
	// by one per change and a stale read never replaces a newer snapshot.
	loadMu sync.Mutex
}

// snapshot is an immutable view of the keys at one moment.
type snapshot struct {
	version     uint64
	fingerprint string // identifies the published set and active key
	active      ActiveKey
	public      []PublicKey
}

// NewManager returns a Manager for store. secret is GATEHOUSE_SECRET; it must be
// the same on every instance sharing the store. Call Init before use.
func NewManager(store storage.Store, secret []byte, cfg Config, logger *slog.Logger) (*Manager, error) {
	if store == nil {
		return nil, errors.New("keys: nil store")
	}
	if len(secret) < minSecretLen {
		return nil, fmt.Errorf("keys: GATEHOUSE_SECRET must be at least %d bytes", minSecretLen)
	}
	if cfg.Algorithm == "" {
		cfg.Algorithm = DefaultAlgorithm
	}
	if err := checkAlgorithm(cfg.Algorithm); err != nil {
		return nil, err
	}
	if cfg.RotationPeriod < 0 || cfg.RetainAfterRetire < 0 {
		return nil, errors.New("keys: RotationPeriod and RetainAfterRetire must not be negative")
	}
	if cfg.RotationPeriod == 0 {
		cfg.RotationPeriod = DefaultRotationPeriod
	}
	if cfg.RetainAfterRetire == 0 {
		cfg.RetainAfterRetire = DefaultRetainAfterRetire
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	s, err := newSealer(secret)
	if err != nil {
		return nil, err
	}
	m := &Manager{store: store, sealer: s, cfg: cfg, log: logger.With("component", "keys")}
	m.snap.Store(&snapshot{})
	return m, nil
}

// Active returns the key that signs now. Before a successful Init or Load it
// returns the zero ActiveKey (nil Signer).
func (m *Manager) Active() ActiveKey {
	return m.snap.Load().active
}

// PublicKeys returns every published key: the active key first, then the next
// key, then retired keys still within their retention, newest first. The slice
// is the caller's to keep or modify.
func (m *Manager) PublicKeys() []PublicKey {
	return slices.Clone(m.snap.Load().public)
}

// Version changes whenever the active key or the published set changes, so
// callers can cache derived data such as serialised JWKS. It is 0 before the
// first successful Load.
func (m *Manager) Version() uint64 {
	return m.snap.Load().version
}

func (m *Manager) now() time.Time {
	return m.cfg.Now().UTC()
}
