package op

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	"github.com/zitadel/oidc/v3/pkg/oidc"
	zop "github.com/zitadel/oidc/v3/pkg/op"

	"github.com/gatehouse-id/gatehouse/internal/httpobs"
	"github.com/gatehouse-id/gatehouse/op/clientkeys"
	"github.com/gatehouse-id/gatehouse/storage"
)

// private_key_jwt (RFC 7523 §2.2, OIDC Core §9): the client proves itself
// with a short-lived JWT signed by a key whose public half it registered.
// Gatehouse checks it here rather than through zitadel's JWT-profile
// verifier, which neither makes jti single-use nor bounds the lifetime.
const (
	clientAssertionType = oidc.ClientAssertionTypeJWTAssertion
	// assertionMaxLifetime bounds exp from now: an assertion is made for
	// one request, and a long-lived one is a bearer credential by another
	// name (and would keep its jti in the store as long).
	assertionMaxLifetime = 5 * time.Minute
	// assertionLeeway absorbs clock skew for exp, nbf and iat.
	assertionLeeway = 30 * time.Second
	// maxJTIBytes bounds the jti (it is hashed, but must be an ID, not a
	// payload).
	maxJTIBytes = 256
	// maxAssertionBytes bounds the assertion before it is parsed.
	maxAssertionBytes = 16 << 10
)

// errAssertion is why an assertion was refused: logged, never sent. The
// client is told invalid_client and nothing more, so the endpoint is no
// oracle for which check failed.
type errAssertion struct{ reason string }

func (e errAssertion) Error() string { return e.reason }

func refuse(format string, args ...any) error {
	return errAssertion{fmt.Sprintf(format, args...)}
}

// authenticateAssertion authenticates the client of a request carrying
// client_assertion. Every refusal is 401 invalid_client; a store failure
// (reading the client, recording the jti) stays a store failure.
func (p *Provider) authenticateAssertion(ctx context.Context, form url.Values) (*client, error) {
	c, err := p.verifyAssertion(ctx, form)
	var refused errAssertion
	if errors.As(err, &refused) {
		p.log.InfoContext(ctx, "client assertion refused", "reason", refused.reason)
		return nil, errInvalidClient("client authentication failed")
	}
	if err != nil {
		return nil, err
	}
	httpobs.SetClientID(ctx, c.c.ID) // for the access log
	return c, nil
}

func (p *Provider) verifyAssertion(ctx context.Context, form url.Values) (*client, error) {
	if form.Get("client_assertion_type") != clientAssertionType {
		return nil, zop.NewStatusError(oidc.ErrInvalidRequest().WithDescription("client_assertion_type must be %s", clientAssertionType), 400)
	}
	raw := form.Get("client_assertion")
	if len(raw) > maxAssertionBytes {
		return nil, refuse("assertion of %d bytes", len(raw))
	}
	tok, err := jwt.ParseSigned(raw, clientkeys.Algorithms)
	if err != nil {
		return nil, refuse("malformed assertion or unsupported alg: %v", err)
	}
	var claimed jwt.Claims
	var rawAud struct { // go-jose reads "a" and ["a"] alike; the strict rule tells them apart
		Aud json.RawMessage `json:"aud"`
	}
	if err := tok.UnsafeClaimsWithoutVerification(&claimed, &rawAud); err != nil {
		return nil, refuse("assertion claims: %v", err)
	}
	id := claimed.Subject
	if id == "" || claimed.Issuer != id {
		return nil, refuse("iss %q and sub %q must both be the client_id", claimed.Issuer, claimed.Subject)
	}
	if formID := form.Get("client_id"); formID != "" && formID != id {
		return nil, refuse("client_id %q but the assertion is for %q", formID, id)
	}
	c, err := p.client(ctx, id)
	if errors.Is(err, storage.ErrNotFound) {
		return nil, refuse("no client %q", id)
	}
	if err != nil {
		return nil, err
	}
	if c.c.AuthMethod != storage.AuthMethodPrivateKeyJWT {
		return nil, refuse("client %q is registered for %s, not private_key_jwt", id, c.c.AuthMethod)
	}
	hdr := tok.Headers[0]
	keys, err := p.clientKeys(ctx, c.c, hdr.KeyID)
	if err != nil {
		return nil, refuse("client %q: keys: %v", id, err)
	}
	var claims jwt.Claims
	if !verifyWithAny(tok, keys, hdr, &claims) {
		return nil, refuse("client %q: no registered key (kid %q, alg %s) verifies the signature", id, hdr.KeyID, hdr.Algorithm)
	}
	if err := p.checkAssertionClaims(id, &claims, bytes.HasPrefix(rawAud.Aud, []byte(`"`))); err != nil {
		return nil, err
	}
	// Last, so that only an assertion that is otherwise good spends its
	// jti: a forged one cannot burn a real client's IDs.
	if err := p.spendJTI(ctx, id, claims); err != nil {
		return nil, err
	}
	return c, nil
}

// clientKeys are the client's registered keys: the JWKS kept with the
// client, or the one its jwks_uri serves (cached; kid may prompt a refetch).
func (p *Provider) clientKeys(ctx context.Context, c *storage.Client, kid string) (*jose.JSONWebKeySet, error) {
	if c.JWKSURI != "" {
		return p.jwksFetcher.Keys(ctx, c.JWKSURI, kid)
	}
	if c.JWKS == "" {
		return nil, errors.New("none registered")
	}
	return clientkeys.ParseJWKS([]byte(c.JWKS), false)
}

// verifyWithAny verifies tok with the key its kid names, or, without a
// kid (or when no key carries one), with each key that fits its alg.
func verifyWithAny(tok *jwt.JSONWebToken, keys *jose.JSONWebKeySet, hdr jose.Header, dest *jwt.Claims) bool {
	candidates := keys.Keys
	if hdr.KeyID != "" {
		if named := keys.Key(hdr.KeyID); len(named) > 0 {
			candidates = named
		} else {
			candidates = slices.DeleteFunc(slices.Clone(keys.Keys), func(k jose.JSONWebKey) bool { return k.KeyID != "" })
		}
	}
	for _, k := range candidates {
		if !clientkeys.Fits(k, jose.SignatureAlgorithm(hdr.Algorithm)) {
			continue
		}
		if err := tok.Claims(k.Key, dest); err == nil {
			return true
		}
	}
	return false
}

// checkAssertionClaims: iss = sub = the client; aud names this server (its
// issuer, token endpoint or PAR endpoint, alone or in an array; with
// StrictAssertionAudience only the issuer, as a single string); exp
// present, not past, not more than assertionMaxLifetime ahead; nbf and iat
// not in the future; a jti.
//
// Why the strict rule exists: "audience injection" (2025, the reason for
// the OIDC Core errata and FAPI 2.0's final text). A client that also
// talks to a malicious authorization server takes that server's metadata,
// which can name our token endpoint as its own; the client then signs an
// assertion with our URL as aud and hands it to the attacker, who replays
// it here. The issuer is the one value a client checks against where it
// fetched the metadata, so only it cannot be injected. The default stays
// compatible with clients (Spring Security, Keycloak as a client) that
// send the token endpoint URL, as RFC 7523 and OIDC Core §9 long said.
func (p *Provider) checkAssertionClaims(id string, claims *jwt.Claims, audIsString bool) error {
	now := p.now()
	if claims.Expiry == nil {
		return refuse("client %q: assertion has no exp", id)
	}
	expected := jwt.Expected{
		Issuer: id, Subject: id, Time: now,
		// RFC 9126 §2: at the PAR endpoint its URL identifies us too; so
		// does the device authorization endpoint's, by the same reasoning.
		AnyAudience: jwt.Audience{p.cfg.Issuer, p.cfg.Issuer + pathToken, p.cfg.Issuer + pathPAR, p.cfg.Issuer + pathDeviceAuthorization},
	}
	if p.cfg.StrictAssertionAudience {
		if !audIsString || len(claims.Audience) != 1 || claims.Audience[0] != p.cfg.Issuer {
			return refuse("client %q: aud must be the issuer %q as a single string (aud %q)", id, p.cfg.Issuer, []string(claims.Audience))
		}
	}
	if err := claims.ValidateWithLeeway(expected, assertionLeeway); err != nil {
		return refuse("client %q: %v (aud %q)", id, err, []string(claims.Audience))
	}
	if exp := claims.Expiry.Time(); exp.After(now.Add(assertionMaxLifetime + assertionLeeway)) {
		return refuse("client %q: exp is %v ahead; at most %v", id, exp.Sub(now).Round(time.Second), assertionMaxLifetime)
	}
	if claims.ID == "" || len(claims.ID) > maxJTIBytes {
		return refuse("client %q: assertion needs a jti of 1-%d bytes", id, maxJTIBytes)
	}
	return nil
}

// spendJTI records the assertion's jti as used until the assertion could
// no longer be accepted anyway; a second use is refused. The key is a hash
// of client and jti: jti values of different clients never collide, and
// the store holds no client-chosen text.
func (p *Provider) spendJTI(ctx context.Context, id string, claims jwt.Claims) error {
	sum := sha256.Sum256([]byte(id + "\x00" + claims.ID))
	until := claims.Expiry.Time().Add(assertionLeeway)
	err := p.store.MarkUsed(ctx, "client-assertion:"+hex.EncodeToString(sum[:]), until, p.now())
	if errors.Is(err, storage.ErrConflict) {
		return refuse("client %q: jti already used", id)
	}
	if err != nil {
		return fmt.Errorf("record client assertion jti: %w", err)
	}
	return nil
}
