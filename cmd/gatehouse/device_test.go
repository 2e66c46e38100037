package main

import (
	"context"
	"errors"
	"github.com/go-jose/go-jose/v4"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"
)

// The device flow (RFC 8628) with x/oauth2 as the device and go-oidc
// verifying its ID token, while a person signs in and approves at /device
// in a browser (an HTTP client with cookies, through the real pages).

var userCodeShape = regexp.MustCompile(`^[BCDFGHJKLMNPQRSTVWXZ]{4}-[BCDFGHJKLMNPQRSTVWXZ]{4}$`)

// deviceConfig is how a device app configures x/oauth2 from discovery: the
// snippet in the README's "Clients without a browser".
func deviceConfig(ctx context.Context, issuer, clientID string) (*oauth2.Config, *oidc.IDTokenVerifier, error) {
	provider, err := oidc.NewProvider(ctx, issuer)
	if err != nil {
		return nil, nil, err
	}
	conf := &oauth2.Config{
		ClientID: clientID,
		Endpoint: provider.Endpoint(), // DeviceAuthURL from device_authorization_endpoint
		Scopes:   []string{oidc.ScopeOpenID, "email", oidc.ScopeOfflineAccess},
	}
	return conf, provider.Verifier(&oidc.Config{ClientID: clientID}), nil
}

// signInDevice runs the device's side until it has tokens: the snippet in
// the README.
func signInDevice(ctx context.Context, conf *oauth2.Config, verifier *oidc.IDTokenVerifier, show func(*oauth2.DeviceAuthResponse)) (*oauth2.Token, *oidc.IDToken, error) {
	da, err := conf.DeviceAuth(ctx)
	if err != nil {
		return nil, nil, err
	}
	show(da) // "Go to da.VerificationURI and enter da.UserCode"
	tok, err := conf.DeviceAccessToken(ctx, da)
	if err != nil {
		return nil, nil, err
	}
	raw, _ := tok.Extra("id_token").(string)
	idToken, err := verifier.Verify(ctx, raw)
	if err != nil {
		return nil, nil, err
	}
	return tok, idToken, nil
}

func TestDeviceFlow(t *testing.T) {
	for _, backend := range backends {
		t.Run(backend, func(t *testing.T) { testDeviceFlow(t, backend) })
	}
}

func testDeviceFlow(t *testing.T, backend string) {
	ts := startServer(t, backend, map[string]string{
		"GATEHOUSE_DEVICE_POLL_INTERVAL":     "1s", // x/oauth2 waits the interval for real
		"GATEHOUSE_RATE_DEVICE_CODE_SESSION": "3/10m",
		// Shorter than the device code's 10 minutes, so a grant without a
		// refresh token can expire and be swept while its code is still
		// known (the revival test below).
		"GATEHOUSE_ACCESS_TOKEN_TTL": "1m",
	})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	tv := ts.createClient("--public", "--name", "Living Room TV", "--grant-types", "device_code,refresh_token")
	u := ts.createUser("dana@example.com", "Correct-Horse-1")
	conf, verifier, err := deviceConfig(ctx, ts.issuer, tv.ClientID)
	if err != nil {
		t.Fatal(err)
	}
	b := newBrowser(t, ts.issuer)

	// Discovery announces the flow.
	var disc map[string]any
	if err := mustProvider(t, ts).Claims(&disc); err != nil {
		t.Fatal(err)
	}
	if disc["device_authorization_endpoint"] != ts.issuer+"/oauth/device_authorization" ||
		!strings.Contains(strings.Join(anyStrings(disc["grant_types_supported"]), " "), "urn:ietf:params:oauth:grant-type:device_code") {
		t.Fatalf("discovery: device_authorization_endpoint %v, grant_types_supported %v", disc["device_authorization_endpoint"], disc["grant_types_supported"])
	}

	t.Run("approve while the device polls", func(t *testing.T) {
		shown := make(chan *oauth2.DeviceAuthResponse, 1)
		type result struct {
			tok *oauth2.Token
			idt *oidc.IDToken
			err error
		}
		done := make(chan result, 1)
		go func() {
			tok, idt, err := signInDevice(ctx, conf, verifier, func(da *oauth2.DeviceAuthResponse) { shown <- da })
			done <- result{tok, idt, err}
		}()
		var da *oauth2.DeviceAuthResponse
		select {
		case da = <-shown:
		case r := <-done:
			t.Fatalf("device authorization: %v", r.err)
		}
		if !userCodeShape.MatchString(da.UserCode) || da.VerificationURI != ts.issuer+"/device" ||
			da.VerificationURIComplete != ts.issuer+"/device?user_code="+da.UserCode || da.Interval != 1 {
			t.Fatalf("device authorization response: %+v", da)
		}
		if left := time.Until(da.Expiry); left < 9*time.Minute || left > 10*time.Minute {
			t.Errorf("expires in %s, want 10 minutes", left)
		}
		// The person opens the complete URI: sign-in first, then back to the code.
		p := b.get(da.VerificationURIComplete)
		if p.url.Path != "/login" {
			t.Fatalf("not signed in: want the sign-in page, got %s (%d)", p.url, p.status)
		}
		p = b.submit(p, map[string]string{"email": u.Email, "password": "Correct-Horse-1"})
		if p.url.Path != "/device" || !strings.Contains(p.body, `value="`+da.UserCode+`"`) {
			t.Fatalf("after sign-in: want /device with the code filled in, got %s (%d):\n%s", p.url, p.status, p.body)
		}
		p = b.submit(p, nil)
		if p.status != http.StatusOK || !strings.Contains(p.body, "Living Room TV") || !strings.Contains(p.body, "offline_access") {
			t.Fatalf("confirmation page: %d\n%s", p.status, p.body)
		}
		p = b.submit(p, map[string]string{"action": "approve"})
		if p.status != http.StatusOK || !strings.Contains(p.body, "You can go back to your device") {
			t.Fatalf("after approving: %d\n%s", p.status, p.body)
		}
		r := <-done
		if r.err != nil {
			t.Fatalf("device: %v", r.err)
		}
		var claims map[string]any
		if err := r.idt.Claims(&claims); err != nil {
			t.Fatal(err)
		}
		if r.idt.Subject != u.ID || claims["role"] != u.Role || claims["email"] != u.Email || claims["email_verified"] == nil ||
			claims["acr"] == nil || len(anyStrings(claims["amr"])) == 0 {
			t.Errorf("ID token claims: %v", claims)
		}
		if _, ok := claims["sid"]; ok {
			t.Errorf("the device's ID token names the browser's session: %v", claims["sid"])
		}
		if r.tok.RefreshToken == "" {
			t.Fatal("no refresh token for offline_access")
		}
		refreshed, err := conf.TokenSource(ctx, &oauth2.Token{RefreshToken: r.tok.RefreshToken}).Token()
		if err != nil || refreshed.AccessToken == "" {
			t.Fatalf("refresh: %v", err)
		}
		if code := userinfoStatus(t, ts, refreshed.AccessToken); code != http.StatusOK {
			t.Fatalf("userinfo with the refreshed token: %d", code)
		}
		assertAudit(t, ts, "device_approved", tv.ClientID)

		// The device code is redeemed once; presenting it again (after
		// the interval) revokes what it gave.
		ts.clock.advance(2 * time.Second)
		status, _, body := postForm(t, ts.issuer+"/oauth/token", url.Values{
			"grant_type": {"urn:ietf:params:oauth:grant-type:device_code"}, "device_code": {da.DeviceCode}, "client_id": {tv.ClientID},
		}, "", "")
		if status != http.StatusBadRequest || body["error"] != "invalid_grant" {
			t.Fatalf("device code presented again: %d %v", status, body)
		}
		if code := userinfoStatus(t, ts, refreshed.AccessToken); code != http.StatusUnauthorized {
			t.Errorf("userinfo after the replay: %d, want 401 (grant revoked)", code)
		}
	})

	t.Run("deny, typed in lower case without the dash; slow_down", func(t *testing.T) {
		da, err := conf.DeviceAuth(ctx)
		if err != nil {
			t.Fatal(err)
		}
		poll := devicePoller(t, ts, tv.ClientID, da.DeviceCode)
		poll("authorization_pending")
		poll("slow_down") // at once: too fast
		// The interval grew by 5 s: 2 s later is still too fast...
		ts.clock.advance(2 * time.Second)
		poll("slow_down")
		// ...but not 7 s later (6 s, then 11 s after the second slow_down).
		ts.clock.advance(11 * time.Second)
		poll("authorization_pending")

		p := b.get(ts.issuer + "/device")
		typed := strings.ToLower(strings.ReplaceAll(da.UserCode, "-", ""))
		p = b.submit(p, map[string]string{"user_code": typed})
		if !strings.Contains(p.body, "Living Room TV") {
			t.Fatalf("lower-case code without the dash refused: %d\n%s", p.status, p.body)
		}
		p = b.submit(p, map[string]string{"action": "deny"})
		if p.status != http.StatusOK || !strings.Contains(p.body, "not connected") {
			t.Fatalf("after denying: %d\n%s", p.status, p.body)
		}
		ts.clock.advance(20 * time.Second)
		poll("access_denied")
		assertAudit(t, ts, "device_denied", tv.ClientID)
	})

	t.Run("expiry", func(t *testing.T) {
		da, err := conf.DeviceAuth(ctx)
		if err != nil {
			t.Fatal(err)
		}
		ts.clock.advance(10*time.Minute + time.Second)
		devicePoller(t, ts, tv.ClientID, da.DeviceCode)("expired_token")
		p := b.submit(b.get(ts.issuer+"/device"), map[string]string{"user_code": da.UserCode})
		if p.status != http.StatusBadRequest || !strings.Contains(p.body, "That code is not valid or has expired") {
			t.Fatalf("an expired code: %d\n%s", p.status, p.body)
		}
	})

	t.Run("CSRF on the approval form", func(t *testing.T) {
		da, err := conf.DeviceAuth(ctx)
		if err != nil {
			t.Fatal(err)
		}
		p := b.submit(b.get(ts.issuer+"/device"), map[string]string{"user_code": da.UserCode})
		p = b.submit(p, map[string]string{"action": "approve", "csrf": "forged"})
		if p.status != http.StatusForbidden {
			t.Fatalf("approval with a forged CSRF token: %d", p.status)
		}
		devicePoller(t, ts, tv.ClientID, da.DeviceCode)("authorization_pending")
	})

	t.Run("wrong codes, then the rate limit", func(t *testing.T) {
		da, err := conf.DeviceAuth(ctx)
		if err != nil {
			t.Fatal(err)
		}
		other := newBrowser(t, ts.issuer) // a session of its own: 3 codes per 10 minutes
		p := other.get(ts.issuer + "/device")
		p = other.submit(p, map[string]string{"email": u.Email, "password": "Correct-Horse-1"})
		for _, wrong := range []string{"BCDF-GHJK", "not a code"} {
			if strings.EqualFold(strings.ReplaceAll(wrong, "-", ""), strings.ReplaceAll(da.UserCode, "-", "")) {
				continue
			}
			p = other.submit(p, map[string]string{"user_code": wrong})
			if p.status != http.StatusBadRequest || !strings.Contains(p.body, "That code is not valid or has expired") {
				t.Fatalf("wrong code %q: %d\n%s", wrong, p.status, p.body)
			}
		}
		p = other.submit(p, map[string]string{"user_code": "ZZZZ-ZZZZ"})
		if p.status != http.StatusBadRequest {
			t.Fatalf("third wrong code: %d", p.status)
		}
		// Over the budget even the right code is refused: guessing is
		// limited, not only wrong guesses.
		p = other.submit(p, map[string]string{"user_code": da.UserCode})
		if p.status != http.StatusTooManyRequests || p.header.Get("Retry-After") == "" {
			t.Fatalf("fourth code in this session: %d, want 429\n%s", p.status, p.body)
		}
	})

	t.Run("a client without the grant", func(t *testing.T) {
		spa := ts.createClient("--public", "--type", "spa", "--redirect-uri", "https://app.example/cb")
		spaConf := &oauth2.Config{ClientID: spa.ClientID, Endpoint: conf.Endpoint}
		_, err := spaConf.DeviceAuth(ctx)
		var re *oauth2.RetrieveError
		if !errors.As(err, &re) || re.ErrorCode != "unauthorized_client" {
			t.Fatalf("device authorization by a client without the grant: %v", err)
		}
		// A confidential one authenticates as at the token endpoint.
		web := ts.createClient("--redirect-uri", "https://app.example/cb")
		status, _, body := postForm(t, ts.issuer+"/oauth/device_authorization", url.Values{"scope": {"openid"}}, web.ClientID, web.ClientSecret)
		if status != http.StatusBadRequest || body["error"] != "unauthorized_client" {
			t.Fatalf("device authorization by a confidential client without the grant: %d %v", status, body)
		}
		status, _, body = postForm(t, ts.issuer+"/oauth/device_authorization", url.Values{"scope": {"openid"}}, web.ClientID, "wrong")
		if status != http.StatusUnauthorized || body["error"] != "invalid_client" {
			t.Fatalf("device authorization with a wrong secret: %d %v", status, body)
		}
		status, _, body = postForm(t, ts.issuer+"/oauth/token", url.Values{
			"grant_type": {"urn:ietf:params:oauth:grant-type:device_code"}, "device_code": {"x"},
		}, web.ClientID, web.ClientSecret)
		if status != http.StatusBadRequest || body["error"] != "unauthorized_client" {
			t.Fatalf("device_code grant by a client without it: %d %v", status, body)
		}
	})

	// Review of issue 13: the device grant binds its tokens with DPoP like
	// every other grant, and a --require-dpop client cannot get bearer
	// tokens through it.
	t.Run("DPoP with the device grant", func(t *testing.T) {
		bound := ts.createClient("--public", "--grant-types", "device_code,refresh_token", "--require-dpop")
		bconf := &oauth2.Config{ClientID: bound.ClientID, Endpoint: conf.Endpoint, Scopes: []string{"openid", "offline_access"}}
		da, err := bconf.DeviceAuth(ctx)
		if err != nil {
			t.Fatal(err)
		}
		approver := newBrowser(t, ts.issuer)
		p := approver.get(da.VerificationURIComplete)
		p = approver.submit(p, map[string]string{"email": u.Email, "password": "Correct-Horse-1"})
		p = approver.submit(p, nil) // the code, filled in from verification_uri_complete
		if p = approver.submit(p, map[string]string{"action": "approve"}); p.status != http.StatusOK || !strings.Contains(p.body, "back to your device") {
			t.Fatalf("approve: %d\n%s", p.status, p.body)
		}
		form := url.Values{"grant_type": {"urn:ietf:params:oauth:grant-type:device_code"}, "device_code": {da.DeviceCode}, "client_id": {bound.ClientID}}
		ts.clock.advance(10 * time.Second)
		status, _, body := dpopPost(t, ts, form, "", "", "")
		if status != http.StatusBadRequest || body["error"] != "invalid_dpop_proof" {
			t.Fatalf("device grant without a proof for a --require-dpop client: %d %v", status, body)
		}
		ts.clock.advance(10 * time.Second)
		key := newDPoPKey(t, jose.ES256)
		status, _, body = dpopPost(t, ts, form, "", "", key.proof(ts, "POST", ts.issuer+"/oauth/token", proofOpts{}))
		if status != http.StatusOK || body["token_type"] != "DPoP" {
			t.Fatalf("device grant with a proof: %d %v, want 200 DPoP", status, body)
		}
		// The public client's refresh token is bound to the key.
		refresh := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {body["refresh_token"].(string)}, "client_id": {bound.ClientID}}
		status, _, body = dpopPost(t, ts, refresh, "", "", newDPoPKey(t, jose.ES256).proof(ts, "POST", ts.issuer+"/oauth/token", proofOpts{}))
		if status != http.StatusBadRequest || body["error"] != "invalid_dpop_proof" {
			t.Fatalf("refresh with another key: %d %v", status, body)
		}
	})

	// Review of issue 13: a device code whose grant was revoked, expired
	// and swept must not issue a new grant when presented again.
	t.Run("a revoked device grant stays revoked after the sweep", func(t *testing.T) {
		oconf := &oauth2.Config{ClientID: tv.ClientID, Endpoint: conf.Endpoint, Scopes: []string{"openid"}}
		da, err := oconf.DeviceAuth(ctx)
		if err != nil {
			t.Fatal(err)
		}
		approver := newBrowser(t, ts.issuer)
		p := approver.get(da.VerificationURIComplete)
		p = approver.submit(p, map[string]string{"email": u.Email, "password": "Correct-Horse-1"})
		p = approver.submit(p, nil)
		if p = approver.submit(p, map[string]string{"action": "approve"}); p.status != http.StatusOK || !strings.Contains(p.body, "back to your device") {
			t.Fatalf("approve: %d\n%s", p.status, p.body)
		}
		form := url.Values{"grant_type": {"urn:ietf:params:oauth:grant-type:device_code"}, "device_code": {da.DeviceCode}, "client_id": {tv.ClientID}}
		ts.clock.advance(2 * time.Second)
		if status, _, body := postForm(t, ts.issuer+"/oauth/token", form, "", ""); status != http.StatusOK {
			t.Fatalf("redeem: %d %v", status, body)
		}
		ts.clock.advance(2 * time.Second)
		if status, _, body := postForm(t, ts.issuer+"/oauth/token", form, "", ""); status != http.StatusBadRequest || body["error"] != "invalid_grant" {
			t.Fatalf("replay: %d %v", status, body)
		}
		// The revoked grant's tokens expire and the sweep removes it, while
		// the device code (10 minutes) is still on record.
		ts.clock.advance(2 * time.Minute)
		if _, err := ts.app.store.DeleteExpired(ctx, ts.clock.now()); err != nil {
			t.Fatal(err)
		}
		if status, _, body := postForm(t, ts.issuer+"/oauth/token", form, "", ""); status != http.StatusBadRequest || body["error"] != "invalid_grant" {
			t.Fatalf("device code presented after its revoked grant was swept: %d %v, want invalid_grant", status, body)
		}
	})

	t.Run("a client that requires two factors", func(t *testing.T) {
		strict := ts.createClient("--public", "--grant-types", "device_code", "--require-mfa")
		sconf := &oauth2.Config{ClientID: strict.ClientID, Endpoint: conf.Endpoint, Scopes: []string{"openid"}}
		da, err := sconf.DeviceAuth(ctx)
		if err != nil {
			t.Fatal(err)
		}
		fresh := newBrowser(t, ts.issuer)
		p := fresh.get(da.VerificationURIComplete)
		p = fresh.submit(p, map[string]string{"email": u.Email, "password": "Correct-Horse-1"})
		p = fresh.submit(p, nil)
		if p.url.Path != "/account/security/setup" {
			t.Fatalf("a user without a second factor approving for a require-mfa client: %s (%d)", p.url, p.status)
		}
		devicePoller(t, ts, strict.ClientID, da.DeviceCode)("authorization_pending")
	})
}

// devicePoller polls the token endpoint as a device would, expecting an
// error code each time.
func devicePoller(t *testing.T, ts *testServer, clientID, deviceCode string) func(want string) {
	return func(want string) {
		t.Helper()
		status, h, body := postForm(t, ts.issuer+"/oauth/token", url.Values{
			"grant_type": {"urn:ietf:params:oauth:grant-type:device_code"}, "device_code": {deviceCode}, "client_id": {clientID},
		}, "", "")
		if status != http.StatusBadRequest || body["error"] != want {
			t.Fatalf("poll: %d %v, want 400 %s", status, body, want)
		}
		if h.Get("Cache-Control") != "no-store" {
			t.Errorf("poll answer is cacheable: %q", h.Get("Cache-Control"))
		}
	}
}

func mustProvider(t *testing.T, ts *testServer) *oidc.Provider {
	p, err := oidc.NewProvider(context.Background(), ts.issuer)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func anyStrings(v any) []string {
	list, _ := v.([]any)
	out := make([]string, 0, len(list))
	for _, x := range list {
		s, _ := x.(string)
		out = append(out, s)
	}
	return out
}

func userinfoStatus(t *testing.T, ts *testServer, accessToken string) int {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, ts.issuer+"/userinfo", nil)
	req.Header.Set("Authorization", "Bearer "+accessToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// assertAudit checks the trail has an event of action for the client.
func assertAudit(t *testing.T, ts *testServer, action, clientID string) {
	t.Helper()
	out := ts.cli("", "audit", "list", "--action", action, "--json")
	if !strings.Contains(out, clientID) {
		t.Errorf("no %s event for %s in the audit trail:\n%s", action, clientID, out)
	}
}
