package op

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"math/big"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/zitadel/oidc/v3/pkg/oidc"
	zop "github.com/zitadel/oidc/v3/pkg/op"

	"github.com/gatehouse-id/gatehouse/internal/ratelimit"
	"github.com/gatehouse-id/gatehouse/storage"
)

// The device authorization grant (RFC 8628), served by Gatehouse's own
// handlers rather than zitadel's: zitadel's keeps the poll interval fixed
// (no slow_down per device code), labels storage failures as client
// errors, and stores what its storage interface is handed (a raw device
// code). Here the device code is kept as its SHA-256, the user code is
// what a person types on the login UI's /device page (package login), and
// the tokens are those of a redeemed authorization code (issue.go), from a
// grant whose ID is the request's.
//
// The approved grant belongs to no SSO session: the device is not the
// browser that approved it, so its ID token carries no sid, signing out
// of that browser leaves the device signed in, and back-channel logout of
// the browser's session does not reach it. A password change or reset, a
// disabled account and revocation end it like any other grant.

const (
	pathDeviceAuthorization = "/oauth/device_authorization"
	// pathDevicePage is the login UI's page where a person enters the code.
	pathDevicePage = "/device"
	// deviceSlowDownStep is what RFC 8628 §3.5 adds to the interval for
	// each poll that came too early.
	deviceSlowDownStep = 5
	// devicePollLeeway forgives a poll this much sooner than the interval:
	// a client that waits the interval between sending its polls (x/oauth2
	// ticks) sees them arrive a little closer when one took longer on the
	// way than the next.
	devicePollLeeway = 500 * time.Millisecond
)

// Default rate limits of the device authorization endpoint: a device asks
// once per sign-in, so these only stop a client or address from filling
// the store with pending requests.
var (
	deviceRulePerClient = ratelimit.Rule{Name: "device-authorization-client", Limit: 60, Period: time.Minute}
	deviceRulePerIP     = ratelimit.Rule{Name: "device-authorization-ip", Limit: 30, Period: time.Minute}
)

// deviceAuthorizationResponse is RFC 8628 §3.2's response.
type deviceAuthorizationResponse struct {
	DeviceCode              string `json:"device_code"`
	UserCode                string `json:"user_code"`
	VerificationURI         string `json:"verification_uri"`
	VerificationURIComplete string `json:"verification_uri_complete"`
	ExpiresIn               int    `json:"expires_in"`
	Interval                int    `json:"interval"`
}

// deviceAuthorization serves POST /oauth/device_authorization: the client
// authenticates as at the token endpoint (a public client by client_id)
// and must have the device_code grant.
func (p *Provider) deviceAuthorization(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	c, err := p.authenticateRequestClient(ctx, r.Header, r.PostForm)
	if err != nil {
		p.writeClientAuthError(w, r, err)
		return
	}
	if !c.hasGrant(oidc.GrantTypeDeviceCode) {
		writeJSON(w, http.StatusBadRequest, oauthError{"unauthorized_client", "this client may not use the device authorization grant"})
		return
	}
	if ok, wait, err := p.allowDeviceRequest(ctx, p.clientBudgetKey(c, r), ratelimit.AddrKey(p.clientIP(r))); err != nil {
		p.writeFailure(w, r, "device authorization: rate limit", err)
		return
	} else if !ok {
		w.Header().Set("Retry-After", strconv.Itoa(max(int(wait.Round(time.Second)/time.Second), 1)))
		writeJSON(w, http.StatusTooManyRequests, oauthError{"slow_down", "too many device authorization requests; retry later"})
		return
	}
	scopes, oerr := deviceScopes(c, r.PostForm.Get("scope"))
	if oerr != nil {
		writeJSON(w, http.StatusBadRequest, oauthError{string(oerr.ErrorType), oerr.Description})
		return
	}
	resp, err := p.createDeviceAuthorization(ctx, c.c.ID, scopes)
	if err != nil {
		p.writeFailure(w, r, "device authorization", err)
		return
	}
	writeJSON(w, http.StatusOK, resp)
}

// allowDeviceRequest applies the endpoint's rate limits; a limiter that
// cannot decide refuses (fail closed, as package ratelimit says).
func (p *Provider) allowDeviceRequest(ctx context.Context, clientKey, ip string) (bool, time.Duration, error) {
	if p.cfg.Limiter == nil {
		return true, 0, nil
	}
	for _, k := range []struct {
		rule ratelimit.Rule
		key  string
	}{{deviceRulePerClient, clientKey}, {deviceRulePerIP, ip}} {
		ok, wait, err := p.cfg.Limiter.Allow(ctx, k.rule, k.key)
		if err != nil {
			return false, 0, fmt.Errorf("%w: rate limiter: %w", storage.ErrUnavailable, err)
		}
		if !ok {
			return false, wait, nil
		}
	}
	return true, 0, nil
}

// deviceScopes checks the requested scopes as /authorize does: openid is
// required (absent scope means "openid"), scopes beyond the OpenID Connect
// ones are dropped unless the client may ask for them, and offline_access
// is dropped for a client that may not refresh.
func deviceScopes(c *client, raw string) ([]string, *oidc.Error) {
	requested := strings.Fields(raw)
	if len(requested) == 0 {
		requested = []string{oidc.ScopeOpenID}
	}
	if !slices.Contains(requested, oidc.ScopeOpenID) {
		return nil, oidc.ErrInvalidScope().WithDescription("the openid scope is required")
	}
	scopes, err := zop.ValidateAuthReqScopes(c, requested)
	if err != nil {
		return nil, oidc.ErrInvalidScope().WithDescription("invalid scope")
	}
	if !c.hasGrant(oidc.GrantTypeRefreshToken) {
		scopes = slices.DeleteFunc(scopes, func(s string) bool { return s == oidc.ScopeOfflineAccess })
	}
	return slices.Compact(slices.Sorted(slices.Values(scopes))), nil
}

// createDeviceAuthorization stores a new request and returns its codes. A
// user code already taken by a live request is drawn again.
func (p *Provider) createDeviceAuthorization(ctx context.Context, clientID string, scopes []string) (*deviceAuthorizationResponse, error) {
	now := p.now()
	deviceCode := randomToken(32)
	d := &storage.DeviceAuthorization{
		ID: randomToken(16), DeviceCodeHash: sha256Bytes(deviceCode), ClientID: clientID, Scopes: scopes,
		CreatedAt: now, ExpiresAt: now.Add(p.cfg.DeviceCodeTTL),
		Interval: int(p.cfg.DevicePollInterval / time.Second), State: storage.DevicePending,
	}
	var err error
	for range 5 {
		d.UserCode = newUserCode()
		if err = p.store.CreateDeviceAuthorization(ctx, d); !errors.Is(err, storage.ErrConflict) {
			break
		}
	}
	if err != nil {
		return nil, fmt.Errorf("store device authorization: %w", err)
	}
	shown := storage.FormatUserCode(d.UserCode)
	return &deviceAuthorizationResponse{
		DeviceCode:              deviceCode,
		UserCode:                shown,
		VerificationURI:         p.cfg.Issuer + pathDevicePage,
		VerificationURIComplete: p.cfg.Issuer + pathDevicePage + "?user_code=" + shown,
		ExpiresIn:               int(p.cfg.DeviceCodeTTL / time.Second),
		Interval:                d.Interval,
	}, nil
}

// newUserCode draws a user code uniformly from storage.UserCodeAlphabet.
func newUserCode() string {
	b := make([]byte, storage.UserCodeLength)
	n := big.NewInt(int64(len(storage.UserCodeAlphabet)))
	for i := range b {
		k, err := rand.Int(rand.Reader, n)
		if err != nil {
			panic(fmt.Sprintf("crypto/rand failed: %v", err)) // never happens on supported platforms
		}
		b[i] = storage.UserCodeAlphabet[k.Int64()]
	}
	return string(b)
}

// DeviceToken serves grant_type=urn:ietf:params:oauth:grant-type:device_code;
// zitadel has authenticated the client and checked it has the grant
// (unauthorized_client otherwise).
func (s *server) DeviceToken(ctx context.Context, r *zop.ClientRequest[oidc.DeviceAccessTokenRequest]) (*zop.Response, error) {
	resp, err := s.p.deviceToken(ctx, r.Client.(*client), r.Data.DeviceCode, r.Form["resource"])
	if err != nil {
		return nil, s.p.publicError(ctx, "token: device_code", err)
	}
	return zop.NewResponse(resp), nil
}

// deviceToken answers one poll (RFC 8628 §3.4–3.5): expired_token after
// the request's expiry; slow_down, with the interval 5 s longer from then
// on, for a poll sooner than the interval after the last one (or at the
// same moment as another); then authorization_pending, access_denied, or
// the tokens, once.
func (p *Provider) deviceToken(ctx context.Context, c *client, deviceCode string, resources []string) (*oidc.AccessTokenResponse, error) {
	d, err := p.store.GetDeviceAuthorization(ctx, sha256Bytes(deviceCode))
	if errors.Is(err, storage.ErrNotFound) {
		return nil, oidc.ErrInvalidGrant().WithDescription("invalid device code")
	}
	if err != nil {
		return nil, fmt.Errorf("load device authorization: %w", err)
	}
	if d.ClientID != c.c.ID {
		return nil, oidc.ErrInvalidGrant().WithDescription("the device code was issued to another client")
	}
	now := p.now()
	if !now.Before(d.ExpiresAt) {
		return nil, errExpiredToken()
	}
	interval := d.Interval
	early := d.LastPolledAt != nil && now.Sub(*d.LastPolledAt)+devicePollLeeway < time.Duration(d.Interval)*time.Second
	if early {
		interval += deviceSlowDownStep
	}
	switch err := p.store.RecordDevicePoll(ctx, d.ID, d.Polls, interval, now); {
	case errors.Is(err, storage.ErrConflict):
		early = true // another poll was recorded since this one read the request
	case errors.Is(err, storage.ErrNotFound):
		return nil, errExpiredToken() // swept away as expired meanwhile
	case err != nil:
		return nil, fmt.Errorf("record device poll: %w", err)
	}
	if early {
		return nil, oidc.ErrSlowDown().WithDescription("polling too fast: wait %d seconds between requests", interval)
	}
	switch d.State {
	case storage.DevicePending:
		return nil, oidc.ErrAuthorizationPending().WithDescription("the user has not yet approved the request")
	case storage.DeviceDenied:
		return nil, oidc.ErrAccessDenied().WithDescription("the user denied the request")
	case storage.DeviceApproved:
		return p.redeemDevice(ctx, c, d, resources)
	}
	return nil, fmt.Errorf("device authorization %s in unknown state %q", d.ID, d.State)
}

// deviceRedeemRetry is how long after a device code's redemption a retry
// may still find "no grant" and mean "nothing was issued". Past it, a
// missing grant means one that was issued and later swept (its tokens
// expired, or it was revoked and then expired), and re-issuing would revive
// it. A grant lives at least as long as an access token, which is never
// less than a minute (cmd/gatehouse checks GATEHOUSE_ACCESS_TOKEN_TTL), so
// within this window a grant that was issued is still there to be found.
// An authorization code gets the same bound from its own 60 s lifetime.
const deviceRedeemRetry = time.Minute

// redeemDevice issues the tokens of an approved request, once. As with an
// authorization code (AuthRequestByCode), a redemption that failed before
// its grant was stored may be retried (for deviceRedeemRetry), and a device
// code presented again after its tokens were issued revokes them.
func (p *Provider) redeemDevice(ctx context.Context, c *client, d *storage.DeviceAuthorization, resources []string) (*oidc.AccessTokenResponse, error) {
	aud, err := p.audience(c, nil, resources)
	if err != nil {
		return nil, err
	}
	// A DPoP proof binds the tokens as for every other grant; it is checked
	// (and spent) before the device code is, so a missing proof for a
	// --require-dpop client leaves the code redeemable.
	jkt, err := p.tokenDPoP(ctx, c, "")
	if err != nil {
		return nil, err
	}
	now := p.now()
	err = p.store.RedeemDeviceAuthorization(ctx, d.ID, now)
	if errors.Is(err, storage.ErrConflict) && d.RedeemedAt != nil && now.Sub(*d.RedeemedAt) < deviceRedeemRetry {
		switch _, gerr := p.store.GetGrant(ctx, d.ID); {
		case errors.Is(gerr, storage.ErrNotFound):
			err = nil // retry of a redemption that issued nothing
		case gerr != nil:
			return nil, fmt.Errorf("check grant of a used device code: %w", gerr)
		}
	}
	switch {
	case errors.Is(err, storage.ErrConflict):
		if rerr := p.store.RevokeGrant(ctx, d.ID, now); rerr != nil && !errors.Is(rerr, storage.ErrNotFound) {
			p.log.ErrorContext(ctx, "revoke grant of replayed device code", "grant", d.ID, "err", rerr)
		}
		p.log.WarnContext(ctx, "device code replayed; its grant is revoked", "client_id", d.ClientID, "grant", d.ID)
		p.audit(ctx, storage.AuditEvent{Action: storage.AuditGrantRevoked, Actor: storage.ActorSystem, Subject: d.UserID, ClientID: d.ClientID, Detail: map[string]string{"grant_id": d.ID, "reason": "device_code_reused"}})
		return nil, oidc.ErrInvalidGrant().WithDescription("the device code was already used")
	case errors.Is(err, storage.ErrNotFound):
		return nil, errExpiredToken() // swept away as expired meanwhile
	case err != nil:
		return nil, fmt.Errorf("redeem device code: %w", err)
	}
	req := authRequest{device: true, r: &storage.AuthRequest{
		ID: d.ID, ClientID: d.ClientID, Scopes: slices.Clone(d.Scopes),
		CreatedAt: d.CreatedAt, ExpiresAt: d.ExpiresAt,
		Done: true, UserID: d.UserID, AuthTime: d.AuthTime, AMR: d.AMR, IDP: d.IDP,
		// No SessionID: see the comment at the top of this file.
	}}
	req.dpop = jkt
	if c.AuthMethod() == oidc.AuthMethodNone {
		req.grantDPoP = jkt // a public client's refresh tokens are bound too (RFC 9449 §5)
	}
	return p.issueTokens(ctx, req, c, aud, "", "")
}

// errExpiredToken is RFC 8628 §3.5's answer to a device code past its expiry.
func errExpiredToken() *oidc.Error {
	return &oidc.Error{ErrorType: oidc.ExpiredToken, Description: "the device code has expired"}
}
