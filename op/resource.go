package op

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"slices"
	"strings"

	"github.com/zitadel/oidc/v3/pkg/oidc"
	zop "github.com/zitadel/oidc/v3/pkg/op"
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
	claims, err := zop.VerifyAccessToken[*oidc.AccessTokenClaims](ctx, token, p.zp.AccessTokenVerifier(ctx))
	if err != nil {
		return "", "", false
	}
	return claims.JWTID, claims.Subject, true
}

// userinfo serves the UserInfo endpoint with RFC 6750 errors.
func (p *Provider) userinfo(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	token, err := bearerToken(r)
	if err != nil {
		writeBearerError(w, http.StatusBadRequest, "invalid_request", err.Error())
		return
	}
	if token == "" {
		w.Header().Set("WWW-Authenticate", `Bearer realm="gatehouse"`)
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
	if errors.Is(err, errTokenInactive) {
		writeBearerError(w, http.StatusUnauthorized, "invalid_token", "the access token is expired or revoked")
		return
	}
	if r.Context().Err() == nil {
		p.log.ErrorContext(r.Context(), "userinfo", "err", err)
	}
	writeJSON(w, http.StatusInternalServerError, oauthError{"server_error", ""})
}

// bearerToken takes the token from the Authorization header or, for POST, the
// form body (RFC 6750 §2.1, §2.2); two places at once is an error.
func bearerToken(r *http.Request) (string, error) {
	var fromHeader string
	if auth := r.Header.Get("Authorization"); auth != "" {
		scheme, tok, ok := strings.Cut(auth, " ")
		if !ok || !strings.EqualFold(scheme, "Bearer") || tok == "" {
			return "", errors.New("the Authorization header must use the Bearer scheme")
		}
		fromHeader = strings.TrimSpace(tok)
	}
	var fromBody string
	if r.Method == http.MethodPost {
		if err := r.ParseForm(); err != nil {
			return "", errors.New("malformed request body")
		}
		fromBody = r.PostForm.Get("access_token")
	}
	if fromHeader != "" && fromBody != "" {
		return "", errors.New("send the access token in one place only")
	}
	if fromHeader != "" {
		return fromHeader, nil
	}
	return fromBody, nil
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
	if c.c.SecretHash == nil {
		w.Header().Set("WWW-Authenticate", `Basic realm="gatehouse", charset="UTF-8"`)
		writeJSON(w, http.StatusUnauthorized, oauthError{"invalid_client", "public clients cannot introspect tokens"})
		return
	}
	token := r.PostForm.Get("token")
	if token == "" {
		writeJSON(w, http.StatusBadRequest, oauthError{"invalid_request", "token is missing"})
		return
	}
	resp := new(oidc.IntrospectionResponse)
	hint := r.PostForm.Get("token_type_hint")
	if hint != "refresh_token" && p.introspectAccessToken(ctx, resp, token) {
		writeIntrospection(w, resp)
		return
	}
	if p.introspectRefreshToken(ctx, resp, token, c.c.ID) {
		writeIntrospection(w, resp)
		return
	}
	if hint == "refresh_token" {
		p.introspectAccessToken(ctx, resp, token)
	}
	writeIntrospection(w, resp)
}

func (p *Provider) introspectAccessToken(ctx context.Context, resp *oidc.IntrospectionResponse, token string) bool {
	tokenID, subject, ok := p.tokenIDFromAccessToken(ctx, token)
	if !ok {
		return false
	}
	at, g, err := p.validAccessToken(ctx, tokenID)
	if err != nil {
		if !errors.Is(err, errTokenInactive) && ctx.Err() == nil { // a client that went away is no error of ours
			p.log.ErrorContext(ctx, "introspect access token", "err", err)
		}
		return false
	}
	if err := p.introspectionFor(ctx, resp, at, g, subject); err != nil {
		*resp = oidc.IntrospectionResponse{}
		return false
	}
	return true
}

// introspectRefreshToken answers only the client the refresh token belongs
// to: for anyone else it would be a way to test stolen refresh tokens without
// tripping rotation and reuse detection.
func (p *Provider) introspectRefreshToken(ctx context.Context, resp *oidc.IntrospectionResponse, token, callerID string) bool {
	rt, err := p.store.GetRefreshToken(ctx, sha256Bytes(token))
	now := p.now()
	if err != nil || !now.Before(rt.ExpiresAt) || rt.RotatedAt != nil {
		return false
	}
	g, err := p.store.GetGrant(ctx, rt.GrantID)
	if err != nil || g.RevokedAt != nil || g.ClientID != callerID {
		return false
	}
	u, err := p.store.GetUser(ctx, g.UserID)
	if err != nil {
		return false
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
	return true
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
	p.log.ErrorContext(r.Context(), "client authentication", "err", err)
	writeJSON(w, http.StatusInternalServerError, oauthError{"server_error", ""})
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
