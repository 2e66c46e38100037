package op

import (
	"context"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/zitadel/oidc/v3/pkg/oidc"
	zop "github.com/zitadel/oidc/v3/pkg/op"

	"github.com/gatehouse-id/gatehouse/storage"
)

// tokenIDFromAccessToken opens an access token: opaque tokens are decrypted,
// JWTs verified against our keys. It returns our token ID and the subject.
func (p *Provider) tokenIDFromAccessToken(ctx context.Context, token string) (tokenID, subject string, ok bool) {
	if plain, err := p.zp.Crypto().Decrypt(token); err == nil {
		id, sub, found := strings.Cut(plain, ":")
		if !found || strings.Contains(sub, ":") {
			return "", "", false
		}
		return id, sub, true
	}
	if !isAccessTokenJWT(token) { // an ID token is no access token (RFC 9068 §4)
		return "", "", false
	}
	claims, err := zop.VerifyAccessToken[*oidc.AccessTokenClaims](ctx, token, p.zp.AccessTokenVerifier(ctx))
	if err != nil {
		return "", "", false
	}
	return claims.JWTID, claims.Subject, true
}

// isAccessTokenJWT reports whether token's JOSE header says typ at+jwt.
func isAccessTokenJWT(token string) bool {
	head, _, ok := strings.Cut(token, ".")
	if !ok || len(head) > 1024 {
		return false
	}
	raw, err := base64.RawURLEncoding.DecodeString(head)
	if err != nil {
		return false
	}
	var h struct {
		Typ string `json:"typ"`
	}
	return json.Unmarshal(raw, &h) == nil && strings.EqualFold(h.Typ, "at+jwt")
}

// userinfo serves the UserInfo endpoint with RFC 6750 errors.
func (p *Provider) userinfo(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	p.setDPoPNonce(w)
	token, dpopScheme, err := accessTokenFrom(r)
	if err != nil {
		writeBearerError(w, http.StatusBadRequest, "invalid_request", err.Error())
		return
	}
	if token == "" {
		w.Header().Set("WWW-Authenticate", `Bearer realm="gatehouse", `+dpopChallenge())
		writeJSON(w, http.StatusUnauthorized, oauthError{"invalid_request", "access token missing"})
		return
	}
	tokenID, _, ok := p.tokenIDFromAccessToken(ctx, token)
	if !ok {
		writeBearerError(w, http.StatusUnauthorized, "invalid_token", "the access token is invalid")
		return
	}
	at, g, err := p.validAccessToken(ctx, tokenID)
	if err != nil {
		p.tokenError(w, r, err)
		return
	}
	if !p.checkSender(w, r, token, at, dpopScheme, p.cfg.Issuer+pathUserinfo) {
		return
	}
	if !slices.Contains(at.Scopes, oidc.ScopeOpenID) {
		writeBearerError(w, http.StatusForbidden, "insufficient_scope", "the access token was not issued for the openid scope")
		return
	}
	ui := new(oidc.UserInfo)
	if err := p.userInfoFor(ctx, ui, at, g); err != nil {
		p.tokenError(w, r, err)
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusOK, ui)
}

func (p *Provider) tokenError(w http.ResponseWriter, r *http.Request, err error) {
	if errors.Is(err, ErrTokenInactive) {
		writeBearerError(w, http.StatusUnauthorized, "invalid_token", "the access token is expired or revoked")
		return
	}
	p.writeFailure(w, r, "userinfo", err)
}

// accessTokenFrom takes the token from the Authorization header, in the
// Bearer or the DPoP scheme (RFC 9449 §7.1; dpop says which), or, for POST,
// the form body (RFC 6750 §2.1, §2.2); two places at once is an error.
func accessTokenFrom(r *http.Request) (token string, dpop bool, err error) {
	var fromHeader string
	if auth := r.Header.Get("Authorization"); auth != "" {
		scheme, tok, ok := strings.Cut(auth, " ")
		dpop = strings.EqualFold(scheme, "DPoP")
		if !ok || !(dpop || strings.EqualFold(scheme, "Bearer")) || strings.TrimSpace(tok) == "" {
			return "", false, errors.New("the Authorization header must use the Bearer or the DPoP scheme")
		}
		fromHeader = strings.TrimSpace(tok)
	}
	var fromBody string
	if r.Method == http.MethodPost {
		if err := r.ParseForm(); err != nil {
			return "", false, errors.New("malformed request body")
		}
		fromBody = r.PostForm.Get("access_token")
	}
	if fromHeader != "" && fromBody != "" {
		return "", false, errors.New("send the access token in one place only")
	}
	if fromHeader != "" {
		return fromHeader, dpop, nil
	}
	return fromBody, false, nil
}

// checkSender checks that the request may use the live access token at:
// a bearer token as such, a DPoP-bound one only in the DPoP scheme with a
// fresh proof of its key covering the token, for this endpoint (RFC 9449
// §7). It answers the request itself (401 with a DPoP challenge) when not.
func (p *Provider) checkSender(w http.ResponseWriter, r *http.Request, token string, at *accessToken, dpopScheme bool, endpoint string) bool {
	switch {
	case at.JKT == "" && !dpopScheme:
		return true
	case at.JKT == "":
		writeDPoPError(w, "invalid_token", "the access token is not DPoP-bound: send it in the Bearer scheme")
		return false
	case !dpopScheme:
		// A stolen bound token must not pass as a bearer token (§7.2).
		writeDPoPError(w, "invalid_token", "the access token is DPoP-bound: send it as Authorization: DPoP with a DPoP proof")
		return false
	}
	proof, err := p.parseDPoP(r, endpoint, token)
	if err == nil && proof == nil {
		err = invalidProof("a DPoP proof is required with a DPoP-bound access token")
	}
	if err == nil && subtle.ConstantTimeCompare([]byte(proof.jkt), []byte(at.JKT)) != 1 {
		err = invalidProof("the DPoP proof is made with another key than the one the access token is bound to")
	}
	if err == nil {
		err = p.spendDPoP(r.Context(), proof)
	}
	var de *dpopError
	switch {
	case err == nil:
		return true
	case errors.As(err, &de):
		writeDPoPError(w, de.code, de.desc)
	default:
		p.writeFailure(w, r, "userinfo: spend DPoP proof", err)
	}
	return false
}

// dpopChallenge is the DPoP scheme's challenge, naming the proof
// algorithms accepted (RFC 9449 §7.1).
func dpopChallenge() string {
	return `DPoP algs="` + strings.Join(dpopAlgNames(), " ") + `"`
}

// writeDPoPError answers a request to a resource with a DPoP challenge:
// 401 for a token or proof that does not do, use_dpop_nonce included
// (RFC 9449 §7.1, §9).
func writeDPoPError(w http.ResponseWriter, code, desc string) {
	w.Header().Set("WWW-Authenticate", dpopChallenge()+`, error="`+code+`", error_description="`+desc+`"`)
	writeJSON(w, http.StatusUnauthorized, oauthError{code, desc})
}

func writeBearerError(w http.ResponseWriter, status int, code, desc string) {
	w.Header().Set("WWW-Authenticate", `Bearer realm="gatehouse", error="`+code+`", error_description="`+desc+`"`)
	writeJSON(w, status, oauthError{code, desc})
}

// introspect serves RFC 7662 token introspection for confidential clients.
// Access tokens and refresh tokens are both understood.
func (p *Provider) introspect(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	if err := r.ParseForm(); err != nil {
		writeJSON(w, http.StatusBadRequest, oauthError{"invalid_request", "malformed request body"})
		return
	}
	c, err := p.authenticateRequestClient(ctx, r.Header, r.PostForm)
	if err != nil {
		p.writeClientAuthError(w, r, err)
		return
	}
	if c.c.AuthMethod == storage.AuthMethodNone {
		w.Header().Set("WWW-Authenticate", `Basic realm="gatehouse", charset="UTF-8"`)
		writeJSON(w, http.StatusUnauthorized, oauthError{"invalid_client", "public clients cannot introspect tokens"})
		return
	}
	token := r.PostForm.Get("token")
	if token == "" {
		writeJSON(w, http.StatusBadRequest, oauthError{"invalid_request", "token is missing"})
		return
	}
	// An administrator's confidential client may be a resource server and
	// learn about any access token. A client that registered itself (RFC
	// 7591) was vetted by nobody: answering it about other clients' tokens
	// would let anyone with an initial access token (or anyone at all, in
	// loopback mode) turn a stolen token, DPoP-bound or not, into the
	// user's identity and a liveness check. It learns about its own only.
	ownOnly := false
	switch _, err := p.store.GetClientRegistration(ctx, c.c.ID); {
	case err == nil:
		ownOnly = true
	case !errors.Is(err, storage.ErrNotFound):
		p.writeFailure(w, r, "introspect: client registration", err)
		return
	}
	// A store that cannot answer is a 503, never "active": false, which
	// would make a resource server reject a valid token.
	resp := new(oidc.IntrospectionResponse)
	hint := r.PostForm.Get("token_type_hint")
	kinds := []func(context.Context, *oidc.IntrospectionResponse, string, string) (bool, error){
		p.introspectAccessToken, p.introspectRefreshToken,
	}
	if hint == "refresh_token" {
		slices.Reverse(kinds)
	}
	for _, introspect := range kinds {
		active, err := introspect(ctx, resp, token, c.c.ID)
		if err != nil {
			p.writeFailure(w, r, "introspect", err)
			return
		}
		if active && (!ownOnly || resp.ClientID == c.c.ID) {
			break
		}
		*resp = oidc.IntrospectionResponse{}
	}
	writeIntrospection(w, resp)
}

func (p *Provider) introspectAccessToken(ctx context.Context, resp *oidc.IntrospectionResponse, token, _ string) (bool, error) {
	tokenID, subject, ok := p.tokenIDFromAccessToken(ctx, token)
	if !ok {
		return false, nil
	}
	at, g, err := p.validAccessToken(ctx, tokenID)
	if errors.Is(err, ErrTokenInactive) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	if err := p.introspectionFor(ctx, resp, at, g, subject); err != nil {
		if errors.Is(err, ErrTokenInactive) {
			return false, nil
		}
		return false, err
	}
	return true, nil
}

// introspectRefreshToken answers only the client the refresh token belongs
// to: for anyone else it would be a way to test stolen refresh tokens without
// tripping rotation and reuse detection.
func (p *Provider) introspectRefreshToken(ctx context.Context, resp *oidc.IntrospectionResponse, token, callerID string) (bool, error) {
	rt, err := p.store.GetRefreshToken(ctx, sha256Bytes(token))
	if errors.Is(err, storage.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	if !p.now().Before(rt.ExpiresAt) || rt.RotatedAt != nil {
		return false, nil
	}
	g, err := p.store.GetGrant(ctx, rt.GrantID)
	if errors.Is(err, storage.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	if g.RevokedAt != nil || g.ClientID != callerID {
		return false, nil
	}
	u, err := p.activeUser(ctx, g.UserID)
	if errors.Is(err, storage.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	ui := new(oidc.UserInfo)
	setUserClaims(ui, u, rt.Scopes)
	resp.SetUserInfo(ui)
	resp.Active = true
	resp.Scope = rt.Scopes
	resp.ClientID = g.ClientID
	resp.TokenType = "refresh_token"
	resp.Expiration = oidc.FromTime(rt.ExpiresAt)
	resp.IssuedAt = oidc.FromTime(rt.CreatedAt)
	resp.Issuer = p.cfg.Issuer
	resp.Subject = u.ID
	resp.Audience = oidc.Audience{g.ClientID}
	resp.AuthTime = oidc.FromTime(g.AuthTime)
	return true, nil
}

func writeIntrospection(w http.ResponseWriter, resp *oidc.IntrospectionResponse) {
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusOK, resp)
}

// writeClientAuthError writes a client authentication failure as JSON with the
// status carried by the error (401 invalid_client with a challenge, or 400).
func (p *Provider) writeClientAuthError(w http.ResponseWriter, r *http.Request, err error) {
	var se zop.StatusError
	var oe *oidc.Error
	if errors.As(err, &se) && errors.As(err, &oe) {
		status := http.StatusBadRequest
		if oe.ErrorType == oidc.InvalidClient {
			status = http.StatusUnauthorized
			w.Header().Set("WWW-Authenticate", `Basic realm="gatehouse", charset="UTF-8"`)
		}
		writeJSON(w, status, oauthError{string(oe.ErrorType), oe.Description})
		return
	}
	p.writeFailure(w, r, "client authentication", err)
}

type oauthError struct {
	Error       string `json:"error"`
	Description string `json:"error_description,omitempty"`
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	body, err := json.Marshal(v)
	if err != nil {
		status, body = http.StatusInternalServerError, []byte(`{"error":"server_error"}`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

// AccessTokenInfo is who a live access token is for.
type AccessTokenInfo struct {
	ClientID string
	// UserID is the user the token acts for; "" for a client_credentials
	// token, which acts for the client itself.
	UserID    string
	Scopes    []string
	ExpiresAt time.Time
}

// ErrTokenDPoPBound is VerifyAccessToken's answer to a live access token
// bound to a DPoP key (RFC 9449): it is no bearer token, and a caller that
// checks no proof must refuse it, or a stolen bound token would work there
// (§7.2). It wraps ErrTokenInactive, so callers that only know that one
// refuse it too.
var ErrTokenDPoPBound = fmt.Errorf("%w: the access token is bound to a DPoP key and is not accepted as a bearer token", ErrTokenInactive)

// VerifyAccessToken checks a bearer access token as userinfo and
// introspection do — opaque tokens decrypted, JWTs verified, not expired,
// not on the deny-list, its grant not revoked, its user not disabled or
// deleted, not DPoP-bound (ErrTokenDPoPBound) — and says who it is for. A
// token that fails any check is ErrTokenInactive; other errors are the
// store's.
func (p *Provider) VerifyAccessToken(ctx context.Context, token string) (*AccessTokenInfo, error) {
	tokenID, _, ok := p.tokenIDFromAccessToken(ctx, token)
	if !ok {
		return nil, ErrTokenInactive
	}
	at, g, err := p.validAccessToken(ctx, tokenID)
	if err != nil {
		return nil, err
	}
	if at.JKT != "" {
		return nil, ErrTokenDPoPBound
	}
	info := &AccessTokenInfo{ClientID: at.ClientID, Scopes: slices.Clone(at.Scopes), ExpiresAt: at.expiresAt()}
	if g == nil {
		return info, nil
	}
	if _, err := p.activeUser(ctx, g.UserID); err != nil {
		if errors.Is(err, storage.ErrNotFound) {
			return nil, ErrTokenInactive
		}
		return nil, fmt.Errorf("load user: %w", err)
	}
	info.UserID = g.UserID
	return info, nil
}
