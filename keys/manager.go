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
	// Algorithm is the default algorithm: the one that signs for clients
	// that chose none, "RS256" (default), "ES256" or "EdDSA". Every
	// algorithm has its keys whatever the default (see Algorithms), so
	// changing it switches at once, to a key published since it was created.
	Algorithm string
	// RotationPeriod is how long a key stays active before Run rotates it.
	RotationPeriod time.Duration
	// RetainAfterRetire is how long a retired key stays published. It must be at
	// least the longest lifetime of a token signed by the key.
	RetainAfterRetire time.Duration
	// Now is the clock; time.Now when nil.
	Now func() time.Time
}

// ActiveKey is the key that signs tokens of one algorithm now.
type ActiveKey struct {
	ID        string
	Algorithm jose.SignatureAlgorithm
	// Signer is an *rsa.PrivateKey (RS256), *ecdsa.PrivateKey (ES256) or
	// ed25519.PrivateKey (EdDSA).
	Signer crypto.Signer
}

// PublicKey is one key published in JWKS.
type PublicKey struct {
	ID        string
	Algorithm jose.SignatureAlgorithm
	// Key is an *rsa.PublicKey, *ecdsa.PublicKey or ed25519.PublicKey.
	Key crypto.PublicKey
	Use string // always "sig"
}

// JSONWebKey returns the key as a JWK, for building a JWKS document.
func (p PublicKey) JSONWebKey() jose.JSONWebKey {
	return jose.JSONWebKey{Key: p.Key, KeyID: p.ID, Algorithm: string(p.Algorithm), Use: p.Use}
}

// Manager loads, creates and rotates signing keys through a Store and serves the
// current signers and public keys from memory. It keeps an active and a next
// key of every algorithm in Algorithms. It is safe for concurrent use;
// Active, ActiveFor, PublicKeys and Version never block and do no I/O.
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
	fingerprint string // identifies the published set and the active keys
	// active holds one key per algorithm that has an active key, the
	// default algorithm's first.
	active []ActiveKey
	public []PublicKey
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
	if err := CheckAlgorithm(cfg.Algorithm); err != nil {
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

// Active returns the key that signs now in the default algorithm. Before a
// successful Init or Load it returns the zero ActiveKey (nil Signer).
func (m *Manager) Active() ActiveKey {
	return m.ActiveFor("")
}

// ActiveFor returns the key that signs now in alg, "" meaning the default
// algorithm. It returns the zero ActiveKey (nil Signer) before a successful
// Init or Load, and for an algorithm without an active key.
func (m *Manager) ActiveFor(alg jose.SignatureAlgorithm) ActiveKey {
	if alg == "" {
		alg = jose.SignatureAlgorithm(m.cfg.Algorithm)
	}
	for _, k := range m.snap.Load().active {
		if k.Algorithm == alg {
			return k
		}
	}
	return ActiveKey{}
}

// Algorithms returns the algorithms this manager signs with, the default
// first: what discovery advertises as id_token_signing_alg_values_supported.
func (m *Manager) Algorithms() []jose.SignatureAlgorithm {
	return m.algorithms()
}

// algorithms is Algorithms with the default first, then the others in
// their fixed order.
func (m *Manager) algorithms() []jose.SignatureAlgorithm {
	def := jose.SignatureAlgorithm(m.cfg.Algorithm)
	out := make([]jose.SignatureAlgorithm, 0, len(algorithms))
	out = append(out, def)
	for _, a := range algorithms {
		if a != def {
			out = append(out, a)
		}
	}
	return out
}

// PublicKeys returns every published key: the active keys first (the
// default algorithm's leading), then the next keys, then retired keys still
// within their retention, newest first. The slice is the caller's to keep or
// modify.
func (m *Manager) PublicKeys() []PublicKey {
	return slices.Clone(m.snap.Load().public)
}

// Version changes whenever an active key or the published set changes, so
// callers can cache derived data such as serialised JWKS. It is 0 before the
// first successful Load.
func (m *Manager) Version() uint64 {
	return m.snap.Load().version
}

func (m *Manager) now() time.Time {
	return m.cfg.Now().UTC()
}
