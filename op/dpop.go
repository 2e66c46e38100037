package op

import (
	"context"
	"crypto"
	"crypto/hmac"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/zitadel/oidc/v3/pkg/oidc"

	"github.com/gatehouse-id/gatehouse/storage"
)

// DPoP (RFC 9449) binds access tokens, and a public client's refresh
// tokens, to a key the client holds: each request carries a proof, a JWT
// signed with that key over the method and URL (and, at a resource, the
// token's hash). A token bound this way is useless to whoever steals it.
//
// Choices (docs/design.md):
//   - A proof is accepted when its iat is within dpopLeeway of our clock,
//     either way; its jti is remembered (hashed, with the key's thumbprint)
//     in the store's single-use markers until it could no longer be accepted,
//     so a replay is refused on every instance. The jti is marked only after
//     the client authenticated (token endpoint) or the token proved live
//     (userinfo): nobody can fill the store with proofs for nothing.
//   - Server nonces (Config.DPoPNonce, off by default) are stateless: the
//     HMAC of a five-minute window under a key derived from
//     GATEHOUSE_SECRET, so every instance makes and accepts the same ones
//     without a store. A nonce is good for the window it was made in and
//     the next one; every response of an endpoint that checks proofs
//     carries the current one in DPoP-Nonce.
//   - Access tokens carry the key's thumbprint (cnf.jkt in a JWT; inside
//     the encrypted opaque token), so binding costs no storage. A public
//     client's grant stores it: its refresh tokens need a proof with the
//     same key (§5). A confidential client's refresh tokens are bound by
//     its client authentication, so its grant stays unbound and each
//     refresh binds the new access token to the key of that request's
//     proof, if any.

const (
	// dpopLeeway is how far a proof's iat may be from our clock, either
	// way: enough for a client's clock a little off and a slow network,
	// short enough that a captured proof soon dies.
	dpopLeeway = 60 * time.Second
	// dpopNonceWindow is how long one server nonce is issued; it is
	// accepted for that window and the next.
	dpopNonceWindow = 5 * time.Minute
	// maxDPoPProof bounds the header worth parsing: a proof with an RSA
	// key of 4096 bits is about 1.5 KiB.
	maxDPoPProof = 8 << 10
	maxDPoPJTI   = 256
	// minDPoPRSABits is the least RSA key size a proof may use, as for
	// client keys (clientkeys) and NIST SP 800-131A.
	minDPoPRSABits = 2048
)

// dpopAlgs are the proof algorithms accepted and advertised
// (dpop_signing_alg_values_supported): asymmetric only, as RFC 9449 §4.2
// requires.
var dpopAlgs = []jose.SignatureAlgorithm{
	jose.ES256, jose.ES384, jose.ES512, jose.RS256, jose.RS384, jose.RS512,
	jose.PS256, jose.PS384, jose.PS512, jose.EdDSA,
}

func dpopAlgNames() []string {
	out := make([]string, len(dpopAlgs))
	for i, a := range dpopAlgs {
		out[i] = string(a)
	}
	return out
}

// dpopError is a proof the request's sender must fix: invalid_dpop_proof,
// or use_dpop_nonce when only the server nonce is missing or stale.
type dpopError struct {
	code string
	desc string
}

func (e *dpopError) Error() string { return e.code + ": " + e.desc }

const (
	errInvalidDPoPProof = "invalid_dpop_proof"
	errUseDPoPNonce     = "use_dpop_nonce"
)

func invalidProof(format string, args ...any) *dpopError {
	return &dpopError{code: errInvalidDPoPProof, desc: fmt.Sprintf(format, args...)}
}

// oidcError is e for zitadel's error writer at the token endpoint (400).
func (e *dpopError) oidcError() *oidc.Error {
	oe := oidc.ErrInvalidRequest().WithDescription("%s", e.desc)
	oe.ErrorType = errInvalidDPoPProof // the library's error type is unexported: set from the constants
	if e.code == errUseDPoPNonce {
		oe.ErrorType = errUseDPoPNonce
	}
	return oe
}

// dpopProof is a proof whose signature and claims have been checked; its
// jti is not yet spent (spend).
type dpopProof struct {
	jkt string // RFC 7638 SHA-256 thumbprint of the proof's key, base64url
	jti string
	iat time.Time
}

type dpopClaims struct {
	JTI   string   `json:"jti"`
	HTM   string   `json:"htm"`
	HTU   string   `json:"htu"`
	IAT   *float64 `json:"iat"`
	Nonce string   `json:"nonce"`
	ATH   string   `json:"ath"`
}

// parseDPoP checks the request's DPoP proof (RFC 9449 §4.3) for an HTTP
// request to endpoint (an absolute URL), and, when accessToken is not "",
// that it covers that token (ath). It returns nil, nil when the request
// carries no proof. Errors are *dpopError. The jti is not spent here.
func (p *Provider) parseDPoP(r *http.Request, endpoint, accessToken string) (*dpopProof, error) {
	values := r.Header.Values("DPoP")
	switch {
	case len(values) == 0:
		return nil, nil
	case len(values) > 1:
		return nil, invalidProof("send one DPoP header")
	case len(values[0]) > maxDPoPProof:
		return nil, invalidProof("the DPoP proof is too long")
	}
	jws, err := jose.ParseSignedCompact(values[0], dpopAlgs)
	if err != nil {
		return nil, invalidProof("the DPoP proof is not a JWT signed with one of %s", strings.Join(dpopAlgNames(), ", "))
	}
	h := jws.Signatures[0].Protected
	if typ, _ := h.ExtraHeaders[jose.HeaderType].(string); typ != "dpop+jwt" {
		return nil, invalidProof("the DPoP proof's typ must be dpop+jwt")
	}
	jwk := h.JSONWebKey
	if jwk == nil || !jwk.Valid() || !jwk.IsPublic() {
		return nil, invalidProof("the DPoP proof's header must carry its public key (jwk)")
	}
	if k, ok := jwk.Key.(*rsa.PublicKey); ok && k.N.BitLen() < minDPoPRSABits {
		// A short RSA key can be factored, and the binding with it.
		return nil, invalidProof("the DPoP proof's RSA key must have at least %d bits", minDPoPRSABits)
	}
	payload, err := jws.Verify(jwk)
	if err != nil {
		return nil, invalidProof("the DPoP proof's signature does not verify with its jwk")
	}
	var c dpopClaims
	if err := json.Unmarshal(payload, &c); err != nil {
		return nil, invalidProof("the DPoP proof's claims are malformed")
	}
	now := p.now()
	switch {
	case c.JTI == "" || len(c.JTI) > maxDPoPJTI:
		return nil, invalidProof("the DPoP proof needs a jti of at most %d characters", maxDPoPJTI)
	case c.HTM != r.Method:
		return nil, invalidProof("the DPoP proof's htm is not %s", r.Method)
	case !sameHTU(c.HTU, endpoint):
		return nil, invalidProof("the DPoP proof's htu is not %s", endpoint)
	case c.IAT == nil || math.IsNaN(*c.IAT) || math.IsInf(*c.IAT, 0):
		return nil, invalidProof("the DPoP proof needs iat")
	}
	iat := time.Unix(int64(*c.IAT), 0).UTC()
	if d := now.Sub(iat); d > dpopLeeway || d < -dpopLeeway {
		return nil, invalidProof("the DPoP proof's iat is more than %d seconds from the server's time", int(dpopLeeway/time.Second))
	}
	if accessToken != "" {
		want := base64.RawURLEncoding.EncodeToString(sha256Bytes(accessToken))
		if subtle.ConstantTimeCompare([]byte(c.ATH), []byte(want)) != 1 {
			return nil, invalidProof("the DPoP proof's ath is not the hash of the access token")
		}
	}
	if p.cfg.DPoPNonce && !p.validDPoPNonce(c.Nonce, now) {
		return nil, &dpopError{code: errUseDPoPNonce, desc: "the DPoP proof needs the server's nonce (DPoP-Nonce header)"}
	}
	tp, err := jwk.Thumbprint(crypto.SHA256)
	if err != nil {
		return nil, invalidProof("the DPoP proof's key has no thumbprint")
	}
	return &dpopProof{jkt: base64.RawURLEncoding.EncodeToString(tp), jti: c.JTI, iat: iat}, nil
}

// spend marks the proof's jti used until the proof could no longer be
// accepted anyway; a second use is invalid_dpop_proof. The key's
// thumbprint is part of the marker, so one client cannot block another's
// jti, and the marker is a hash, so the store holds nothing a client sent.
func (p *Provider) spendDPoP(ctx context.Context, proof *dpopProof) error {
	h := sha256.New()
	h.Write([]byte("dpop-jti\x00"))
	h.Write([]byte(proof.jkt))
	h.Write([]byte{0})
	h.Write([]byte(proof.jti))
	key := "dpop:" + hex.EncodeToString(h.Sum(nil))
	err := p.store.MarkUsed(ctx, key, proof.iat.Add(dpopLeeway+time.Second), p.now())
	if errors.Is(err, storage.ErrConflict) {
		return invalidProof("the DPoP proof was used before (its jti is spent)")
	}
	if err != nil {
		return fmt.Errorf("spend DPoP proof: %w", err)
	}
	return nil
}

// sameHTU compares a proof's htu with the endpoint's URL as RFC 9449 §4.3
// asks: without query and fragment, scheme and host case-insensitively, a
// default port the same as none (RFC 3986 §6.2.3).
func sameHTU(htu, endpoint string) bool {
	a, err := url.Parse(htu)
	if err != nil || a.Opaque != "" || a.User != nil {
		return false
	}
	b, err := url.Parse(endpoint)
	if err != nil {
		return false
	}
	return normalHTU(a) == normalHTU(b)
}

func normalHTU(u *url.URL) string {
	scheme, host := strings.ToLower(u.Scheme), strings.ToLower(u.Hostname())
	port := u.Port()
	if (scheme == "https" && port == "443") || (scheme == "http" && port == "80") {
		port = ""
	}
	if port != "" {
		host += ":" + port
	}
	path := u.EscapedPath()
	if path == "" {
		path = "/"
	}
	return scheme + "://" + host + path
}

// dpopNonce is the server nonce of now's window: the window number and an
// HMAC of it.
func (p *Provider) dpopNonce(now time.Time) string {
	return p.dpopNonceFor(now.Unix() / int64(dpopNonceWindow/time.Second))
}

func (p *Provider) dpopNonceFor(window int64) string {
	b := make([]byte, 8, 8+16)
	binary.BigEndian.PutUint64(b, uint64(window))
	m := hmac.New(sha256.New, p.cfg.DPoPNonceKey[:])
	m.Write([]byte("dpop-nonce\x00"))
	m.Write(b)
	return base64.RawURLEncoding.EncodeToString(m.Sum(b)[:8+16])
}

// validDPoPNonce accepts the nonce of now's window and of the one before.
func (p *Provider) validDPoPNonce(nonce string, now time.Time) bool {
	if nonce == "" || len(nonce) > 64 {
		return false
	}
	cur := now.Unix() / int64(dpopNonceWindow/time.Second)
	for _, w := range []int64{cur, cur - 1} {
		if hmac.Equal([]byte(nonce), []byte(p.dpopNonceFor(w))) {
			return true
		}
	}
	return false
}

// setDPoPNonce gives the client the current nonce when nonces are on.
func (p *Provider) setDPoPNonce(w http.ResponseWriter) {
	if p.cfg.DPoPNonce {
		w.Header().Set("DPoP-Nonce", p.dpopNonce(p.now()))
	}
}

type dpopKey struct{}

// withDPoP checks the DPoP proof of a token request, if any, before
// zitadel parses it, and hands it to the grant handlers (server.go) in the
// context: they bind the tokens after authenticating the client. A bad
// proof is answered here (400 invalid_dpop_proof or use_dpop_nonce, RFC 9449
// §5), without spending anything.
func (p *Provider) withDPoP(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p.setDPoPNonce(w)
		proof, err := p.parseDPoP(r, p.cfg.Issuer+pathToken, "")
		if err != nil {
			var de *dpopError
			errors.As(err, &de)
			writeJSON(w, http.StatusBadRequest, oauthError{de.code, de.desc})
			return
		}
		if proof != nil {
			r = r.WithContext(context.WithValue(r.Context(), dpopKey{}, proof))
		}
		next.ServeHTTP(w, r)
	})
}

// tokenDPoP decides the key a token request's tokens are bound to: the
// proof's, spent now that the client is authenticated; "" for none. A
// client registered with RequireDPoP must send a proof. want is the key the
// grant or code is already bound to ("" if none): the proof must be made
// with it.
func (p *Provider) tokenDPoP(ctx context.Context, c *client, want string) (string, error) {
	proof, _ := ctx.Value(dpopKey{}).(*dpopProof)
	switch {
	case proof == nil && c.c.RequireDPoP:
		return "", invalidProof("this client must send a DPoP proof with its token requests").oidcError()
	case proof == nil && want != "":
		return "", invalidProof("the grant is bound to a DPoP key: send a proof made with it").oidcError()
	case proof == nil:
		return "", nil
	case want != "" && subtle.ConstantTimeCompare([]byte(proof.jkt), []byte(want)) != 1:
		return "", invalidProof("the DPoP proof is made with another key than the one the grant is bound to").oidcError()
	}
	if err := p.spendDPoP(ctx, proof); err != nil {
		var de *dpopError
		if errors.As(err, &de) {
			return "", de.oidcError()
		}
		return "", err
	}
	return proof.jkt, nil
}

// validJKT reports whether s has the shape of /authorize's dpop_jkt (RFC 9449 §10): a
// base64url SHA-256 thumbprint.
func validJKT(s string) bool {
	if len(s) != 43 {
		return false
	}
	b, err := base64.RawURLEncoding.Strict().DecodeString(s)
	return err == nil && len(b) == sha256.Size
}

// tokenType is the token_type of a response whose access token is bound
// to jkt ("" for a bearer token).
func tokenType(jkt string) string {
	if jkt != "" {
		return "DPoP"
	}
	return oidc.BearerToken
}
