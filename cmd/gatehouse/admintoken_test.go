package main

import (
	"net/http"
	"slices"
	"strings"
	"testing"

	"golang.org/x/oauth2"

	"github.com/gatehouse-id/gatehouse/internal/authn"
)

// grantedScopes is the scope of a token response (RFC 6749 §5.1).
func grantedScopes(t *testing.T, tok *oauth2.Token) []string {
	t.Helper()
	s, _ := tok.Extra("scope").(string)
	return strings.Fields(s)
}

// wantAdminScope checks whether a token response granted gatehouse:admin.
func wantAdminScope(t *testing.T, what string, tok *oauth2.Token, want bool) {
	t.Helper()
	if got := slices.Contains(grantedScopes(t, tok), "gatehouse:admin"); got != want {
		t.Errorf("%s: scope %q, gatehouse:admin granted %v, want %v", what, grantedScopes(t, tok), got, want)
	}
}

// adminScopes is what an app asks for to administer Gatehouse as its user.
var adminScopes = []string{"openid", "gatehouse:admin", "offline_access"}

// TestAdminScopeUserToken: a user's token from the code flow carries
// gatehouse:admin only for a client allowed it and a user with the admin
// role who signed in with two factors; the admin API takes it, and stops
// taking it the moment the user is demoted. A refresh checks the role
// again.
func TestAdminScopeUserToken(t *testing.T) {
	for _, backend := range backends {
		t.Run(backend, func(t *testing.T) {
			ts := startServer(t, backend, nil)
			console := ts.createClient("--name", "Console", "--redirect-uri", redirectA, "--allowed-scopes", "gatehouse:admin")
			wiki := ts.createClient("--name", "Wiki", "--redirect-uri", redirectB)
			ada, adaSecret := userWithTOTP(t, ts, "ada@example.com", "--role", "ADMIN")
			ulf, ulfSecret := userWithTOTP(t, ts, "ulf@example.com")
			r := newRP(t, ts, console, adminScopes...)

			// The admin signs in with both factors: the scope is granted
			// and the admin API answers.
			b := newBrowser(t, ts.issuer)
			ar, p := r.passwordStep(b, ada.Email, mfaPassword)
			expectFactorPage(t, p)
			adaTok := r.exchange(ar, r.codeFrom(ar, b.submitCode(p, ts.freshTOTPCode(adaSecret))))
			expectACR(t, adaTok, authn.ACRMFA, "pwd", "otp", "mfa")
			wantAdminScope(t, "admin via the console", adaTok.token, true)
			if got := apiCall(t, ts, adaTok.token.AccessToken, "GET", "/users", ""); got.status != http.StatusOK {
				t.Fatalf("admin API with the admin's token: %d %v", got.status, got.body)
			}
			if m := r.introspect(adaTok.token.AccessToken); !strings.Contains(m["scope"].(string), "gatehouse:admin") || m["sub"] != ada.ID {
				t.Errorf("introspection of the admin's token: %v", m)
			}

			// A USER asking the same client for it gets a token without it.
			b2 := newBrowser(t, ts.issuer)
			ar, p = r.passwordStep(b2, ulf.Email, mfaPassword)
			expectFactorPage(t, p)
			ulfTok := r.exchange(ar, r.codeFrom(ar, b2.submitCode(p, ts.freshTOTPCode(ulfSecret))))
			wantAdminScope(t, "USER via the console", ulfTok.token, false)
			if !slices.Contains(grantedScopes(t, ulfTok.token), "openid") {
				t.Errorf("USER via the console: scope %q lacks openid", grantedScopes(t, ulfTok.token))
			}
			wantProblem(t, "admin API with a USER's token", apiCall(t, ts, ulfTok.token.AccessToken, "GET", "/users", ""), 403, "insufficient_scope")

			// A client without gatehouse:admin in its allowed scopes (none
			// at all: unrestricted for other scopes) never gets it, even
			// for the admin with a two-factor session.
			w := newRP(t, ts, wiki, adminScopes...)
			ar = w.authURL()
			wikiTok := w.exchange(ar, w.codeFrom(ar, b.get(ar.url)))
			wantAdminScope(t, "admin via a client not allowed the scope", wikiTok.token, false)
			wantProblem(t, "admin API with that token", apiCall(t, ts, wikiTok.token.AccessToken, "GET", "/users", ""), 403, "insufficient_scope")

			// A refresh while still an admin keeps the scope.
			refreshed, err := r.refresh(adaTok.token.RefreshToken)
			if err != nil {
				t.Fatalf("refresh: %v", err)
			}
			wantAdminScope(t, "refresh while an admin", refreshed, true)

			// Demoted: the token already issued stops at once (the role is
			// checked per request), and a refresh drops the scope.
			ts.cli("", "users", "set-role", ada.Email, "USER")
			wantProblem(t, "admin API after the demotion", apiCall(t, ts, refreshed.AccessToken, "GET", "/users", ""), 403, "forbidden")
			demoted, err := r.refresh(refreshed.RefreshToken)
			if err != nil {
				t.Fatalf("refresh after the demotion: %v", err)
			}
			wantAdminScope(t, "refresh after the demotion", demoted, false)
			wantProblem(t, "admin API with the token refreshed after the demotion", apiCall(t, ts, demoted.AccessToken, "GET", "/users", ""), 403, "insufficient_scope")

			// Promoted again: that grant stays narrowed (documented); a new
			// sign-in gets the scope back.
			ts.cli("", "users", "set-role", ada.Email, "ADMIN")
			again, err := r.refresh(demoted.RefreshToken)
			if err != nil {
				t.Fatalf("refresh after the promotion: %v", err)
			}
			wantAdminScope(t, "refresh of the narrowed grant after the promotion", again, false)
			ar = r.authURL()
			fresh := r.exchange(ar, r.codeFrom(ar, b.get(ar.url)))
			wantAdminScope(t, "new sign-in after the promotion", fresh.token, true)
		})
	}
}

// TestAdminScopeNeedsTwoFactors: an admin asking for gatehouse:admin must
// reach two factors, as with acr_values=mfa: one without a factor is sent
// to enrol one; the same admin signing in without asking for the scope,
// and a USER asking for it, get by with the password.
func TestAdminScopeNeedsTwoFactors(t *testing.T) {
	ts := startServer(t, "sqlite", nil)
	console := ts.createClient("--name", "Console", "--redirect-uri", redirectA, "--allowed-scopes", "gatehouse:admin")
	withScope := newRP(t, ts, console, adminScopes...)
	without := newRP(t, ts, console, "openid")
	eve := ts.createUser("eve@example.com", mfaPassword, "--role", "ADMIN")
	uma := ts.createUser("uma@example.com", mfaPassword)

	b := newBrowser(t, ts.issuer)
	tok := without.exchange(without.signIn(b, eve.Email, mfaPassword))
	expectACR(t, tok, authn.ACRSingleFactor, "pwd")

	ar := withScope.authURL()
	p := b.get(ar.url)
	expectNoPassword(t, p)
	if p.location != nil || p.url.Path != "/account/security/setup" {
		t.Fatalf("admin without a factor asking for gatehouse:admin: want the setup page, got %s status %d location %v", p.url, p.status, p.location)
	}
	_, _, p = enrolTOTP(t, ts, b, elementAttr(t, p, "setup-totp", "href"))
	recoveryCodes(t, p)
	tok = withScope.exchange(ar, withScope.codeFrom(ar, b.get(ts.issuer+elementAttr(t, p, "codes-saved", "href"))))
	expectACR(t, tok, authn.ACRMFA, "pwd", "otp", "mfa")
	wantAdminScope(t, "admin after enrolling", tok.token, true)
	if got := apiCall(t, ts, tok.token.AccessToken, "GET", "/users", ""); got.status != http.StatusOK {
		t.Errorf("admin API with the enrolled admin's token: %d %v", got.status, got.body)
	}

	// Now that eve has a factor, a fresh sign-in asking for the scope
	// stops at the second step after the password.
	ar, p = withScope.passwordStep(newBrowser(t, ts.issuer), eve.Email, mfaPassword)
	expectFactorPage(t, p)

	tok = withScope.exchange(withScope.signIn(newBrowser(t, ts.issuer), uma.Email, mfaPassword))
	expectACR(t, tok, authn.ACRSingleFactor, "pwd")
	wantAdminScope(t, "USER asking for gatehouse:admin", tok.token, false)

	// The consent page lists the scope only to whom it can be granted.
	third := newRP(t, ts, ts.createClient("--name", "Third Party", "--redirect-uri", redirectB,
		"--allowed-scopes", "gatehouse:admin", "--require-consent"), adminScopes...)
	for _, c := range []struct {
		b     *browser
		email string
		shown bool
	}{{b, eve.Email, true}, {newBrowser(t, ts.issuer), uma.Email, false}} {
		p := c.b.get(third.authURL().url)
		if p.location == nil && strings.Contains(p.body, `name="password"`) {
			p = c.b.submit(p, map[string]string{"email": c.email, "password": mfaPassword})
		}
		if p.location != nil || !strings.Contains(p.body, "Third Party") || !strings.Contains(p.body, `value="allow"`) {
			t.Fatalf("%s: want the consent page, got %s status %d location %v", c.email, p.url, p.status, p.location)
		}
		if got := strings.Contains(p.body, "gatehouse:admin"); got != c.shown {
			t.Errorf("%s: consent page lists gatehouse:admin %v, want %v", c.email, got, c.shown)
		}
	}
}

// TestAdminRoleSetting: with GATEHOUSE_ADMIN_ROLE=IDP_ADMIN, administering
// Gatehouse is apart from being an admin in the apps: a user with role
// ADMIN gets no gatehouse:admin and no console, one with IDP_ADMIN gets
// both, and the admin API checks that role on every request.
func TestAdminRoleSetting(t *testing.T) {
	ts := startServer(t, "sqlite", map[string]string{"GATEHOUSE_ADMIN_ROLE": "IDP_ADMIN"})
	r := newRP(t, ts, ts.createClient("--name", "Console", "--redirect-uri", redirectA, "--allowed-scopes", "gatehouse:admin"), adminScopes...)
	// signIn signs in with both factors and returns the tokens and the
	// browser, whose session reached two factors.
	signIn := func(email, secret string) (tokens, *browser) {
		t.Helper()
		b := newBrowser(t, ts.issuer)
		ar, p := r.passwordStep(b, email, mfaPassword)
		expectFactorPage(t, p)
		return r.exchange(ar, r.codeFrom(ar, b.submitCode(p, ts.freshTOTPCode(secret)))), b
	}
	ada, adaSecret := userWithTOTP(t, ts, "ada@example.com", "--role", "ADMIN")
	ida, idaSecret := userWithTOTP(t, ts, "ida@example.com", "--role", "IDP_ADMIN")

	tok, b := signIn(ada.Email, adaSecret)
	wantAdminScope(t, "role ADMIN", tok.token, false)
	wantProblem(t, "admin API with the ADMIN's token", apiCall(t, ts, tok.token.AccessToken, "GET", "/users", ""), 403, "insufficient_scope")
	if p := b.get(ts.issuer + "/admin/users"); p.status != http.StatusForbidden {
		t.Errorf("console for role ADMIN: status %d, want 403", p.status)
	}

	tok, b = signIn(ida.Email, idaSecret)
	wantAdminScope(t, "role IDP_ADMIN", tok.token, true)
	if got := apiCall(t, ts, tok.token.AccessToken, "GET", "/users", ""); got.status != http.StatusOK {
		t.Fatalf("admin API with the IDP_ADMIN's token: %d %v", got.status, got.body)
	}
	if p := b.get(ts.issuer + "/admin/users"); p.status != http.StatusOK || p.url.Path != "/admin/users" {
		t.Errorf("console for role IDP_ADMIN: %s status %d, want the users page", p.url, p.status)
	}
	ts.cli("", "users", "set-role", ida.Email, "ADMIN")
	got := apiCall(t, ts, tok.token.AccessToken, "GET", "/users", "")
	wantProblem(t, "admin API after IDP_ADMIN became ADMIN", got, 403, "forbidden")
	if d, _ := got.body["detail"].(string); !strings.Contains(d, "IDP_ADMIN") {
		t.Errorf("the refusal does not name the admin role: %q", d)
	}
}
