package backchannel

import (
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/gatehouse-id/gatehouse/keys"
)

// EventBackchannelLogout is the member of a Logout Token's events claim that
// makes it one (Back-Channel Logout 1.0 §2.4).
const EventBackchannelLogout = "http://schemas.openid.net/event/backchannel-logout"

// TokenType is the typ header of a Logout Token. The spec recommends explicit
// typing (§2.4, RFC 8725 §3.11) so a Logout Token can never be mistaken for
// an ID token, nor an ID token be replayed as a Logout Token.
const TokenType = "logout+jwt"

// DefaultLifetime is how long a Logout Token is valid when NewMinter is given
// no lifetime. Short, because a Logout Token is sent at once and means one
// thing; a receiver that is down gets a freshly minted token when the Worker
// retries (see Worker), not a stale one.
const DefaultLifetime = 2 * time.Minute

// ErrNoSigningKey is minting before a signing key is loaded.
var ErrNoSigningKey = errors.New("backchannel: no signing key loaded")

// ErrSessionRequired is minting for a client that registered
// backchannel_logout_session_required without a session ID to put in sid.
var ErrSessionRequired = errors.New("backchannel: the client requires sid but no session ID was given")

// KeySource is what signs Logout Tokens: the key that signs the client's ID
// tokens now, "" meaning the default algorithm's. *keys.Manager implements it.
type KeySource interface {
	ActiveFor(alg jose.SignatureAlgorithm) keys.ActiveKey
}

// Claims is the payload of a Logout Token (Back-Channel Logout 1.0 §2.4).
// It has no nonce: the spec forbids one, so a Logout Token cannot pass an
// ID token check that looks for the nonce it sent.
type Claims struct {
	Issuer string `json:"iss"`
	// Audience is the one client the token is for; a single string, as the
	// spec allows and as ID tokens for one client are.
	Audience string `json:"aud"`
	IssuedAt int64  `json:"iat"`
	Expiry   int64  `json:"exp"`
	// JWTID is random per token so receivers can refuse a replay.
	JWTID   string              `json:"jti"`
	Events  map[string]struct{} `json:"events"`
	Subject string              `json:"sub"`
	// SessionID is the sid of the ID tokens issued in the session.
	SessionID string `json:"sid,omitempty"`
}

// Minter mints Logout Tokens signed like ID tokens. It is safe for
// concurrent use.
type Minter struct {
	issuer   string
	keys     KeySource
	now      func() time.Time
	lifetime time.Duration
}

// NewMinter returns a Minter for issuer signing with the active keys of keys.
// now nil means time.Now; lifetime 0 (or less) means DefaultLifetime.
func NewMinter(issuer string, keys KeySource, now func() time.Time, lifetime time.Duration) *Minter {
	if now == nil {
		now = time.Now
	}
	if lifetime <= 0 {
		lifetime = DefaultLifetime
	}
	return &Minter{issuer: issuer, keys: keys, now: now, lifetime: lifetime}
}

// Mint returns a signed Logout Token for the client clientID about the user
// subject and the session sessionID, and its jti. alg is the client's
// id_token_signed_response_alg ("" for the default): a relying party checks
// its logout tokens like its ID tokens, often with the same verifier.
//
// sub is always sent. sid is sent whenever sessionID is known, whether or
// not the client asked for it: the spec lets a token carry both (§2.4), the
// sid is the one the client's ID tokens already carry, and it lets a relying
// party end exactly the session that ended rather than every session of the
// user. includeSID is the client's backchannel_logout_session_required:
// with it, a missing sessionID is an error (ErrSessionRequired) instead of a
// token the client would reject.
func (m *Minter) Mint(clientID string, alg jose.SignatureAlgorithm, subject, sessionID string, includeSID bool) (token, jti string, err error) {
	if clientID == "" || subject == "" {
		return "", "", errors.New("backchannel: a logout token needs a client ID and a subject")
	}
	if includeSID && sessionID == "" {
		return "", "", ErrSessionRequired
	}
	k := m.keys.ActiveFor(alg)
	if k.Signer == nil {
		return "", "", ErrNoSigningKey
	}
	now := m.now()
	claims := Claims{
		Issuer:    m.issuer,
		Audience:  clientID,
		IssuedAt:  now.Unix(),
		Expiry:    now.Add(m.lifetime).Unix(),
		JWTID:     rand.Text(),
		Events:    map[string]struct{}{EventBackchannelLogout: {}},
		Subject:   subject,
		SessionID: sessionID,
	}
	payload, err := json.Marshal(claims)
	if err != nil {
		return "", "", fmt.Errorf("backchannel: encode logout token: %w", err)
	}
	signer, err := jose.NewSigner(
		jose.SigningKey{Algorithm: k.Algorithm, Key: jose.JSONWebKey{Key: k.Signer, KeyID: k.ID, Algorithm: string(k.Algorithm)}},
		(&jose.SignerOptions{}).WithType(TokenType),
	)
	if err != nil {
		return "", "", fmt.Errorf("backchannel: signer: %w", err)
	}
	jws, err := signer.Sign(payload)
	if err != nil {
		return "", "", fmt.Errorf("backchannel: sign logout token: %w", err)
	}
	token, err = jws.CompactSerialize()
	if err != nil {
		return "", "", fmt.Errorf("backchannel: serialise logout token: %w", err)
	}
	return token, claims.JWTID, nil
}
