package op

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// accessToken is what an access token carries inside, for opaque and JWT
// tokens alike: zitadel hands this string to us as the "token ID" when the
// token comes back at userinfo, introspection and revocation. Opaque tokens
// wrap it in AES-GCM (zitadel's Crypto), JWTs carry it as jti under the
// signature, so it cannot be forged either way — and so issuing an access
// token writes nothing to the database.
type accessToken struct {
	ID       string   `json:"j"`           // random, the deny-list key
	GrantID  string   `json:"g,omitempty"` // the grant it came from; "" for client_credentials
	ClientID string   `json:"c"`
	IssuedAt int64    `json:"i"`
	Expiry   int64    `json:"e"`
	Scopes   []string `json:"s,omitempty"`
	Audience []string `json:"a,omitempty"` // the resources it is for (RFC 8707)
	// JKT is the thumbprint of the DPoP key the token is bound to (RFC
	// 9449); "" for a bearer token.
	JKT string `json:"k,omitempty"`
}

func (t *accessToken) encode() string {
	b, _ := json.Marshal(t) // cannot fail: plain strings and numbers
	return base64.RawURLEncoding.EncodeToString(b)
}

func decodeAccessToken(s string) (*accessToken, error) {
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return nil, fmt.Errorf("decode access token id: %w", err)
	}
	var t accessToken
	if err := json.Unmarshal(b, &t); err != nil {
		return nil, fmt.Errorf("decode access token id: %w", err)
	}
	if t.ID == "" || t.ClientID == "" || t.Expiry == 0 {
		return nil, errors.New("decode access token id: incomplete")
	}
	return &t, nil
}

func (t *accessToken) expiresAt() time.Time { return time.Unix(t.Expiry, 0).UTC() }

// randomToken returns n random bytes, base64url without padding.
func randomToken(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(fmt.Sprintf("crypto/rand failed: %v", err)) // never happens on supported platforms
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

func sha256Bytes(s string) []byte {
	h := sha256.Sum256([]byte(s))
	return h[:]
}

// successorRefreshToken derives the refresh token that replaces parent. It is
// deterministic, so a parent presented again within the grace window gets the
// very same successor without the store ever holding a token in clear.
func successorRefreshToken(key [32]byte, parent string) string {
	m := hmac.New(sha256.New, key[:])
	m.Write([]byte("refresh-successor\x00"))
	m.Write([]byte(parent))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}
