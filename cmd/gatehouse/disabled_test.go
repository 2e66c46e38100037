package main

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/gatehouse-id/gatehouse/login/upstream/githubtest"
	"github.com/gatehouse-id/gatehouse/storage"
)

// Disabled users, end to end (issue 12): `users disable` ends the user's
// sessions and refresh tokens and the app hears of it by back-channel
// logout; the browser's session counts as signed out; the form refuses the
// right password with the neutral message and answers a wrong one as for
// anyone; `users enable` restores sign-in, not what was ended.
func TestDisabledUser(t *testing.T) {
	for _, backend := range backends {
		t.Run(backend, func(t *testing.T) {
			const email, pw = "dora@example.com", "Dora-Passw0rd-1"
			ts := startServer(t, backend, nil)
			c := ts.createClient("--name", "Notes", "--redirect-uri", "http://127.0.0.1:9/cb")
			lr := newLogoutReceiver(t, ts.issuer, c.ClientID)
			setBackchannel(t, ts, c.ClientID, lr.srv.URL+"/bc")
			u := ts.createUser(email, pw)
			r := newRP(t, ts, c)
			b := newBrowser(t, ts.issuer)
			tok := r.exchange(r.signIn(b, email, pw))
			if status, _, _ := bearerGet(t, ts.issuer+"/userinfo", tok.token.AccessToken); status != http.StatusOK {
				t.Fatalf("userinfo before disabling: %d", status)
			}

			if out := ts.cli("", "users", "disable", email); !strings.Contains(out, "disabled "+email) || !strings.Contains(out, "1 sessions ended") {
				t.Fatalf("users disable: %q", out)
			}
			lt := lr.next(t)
			if lt["sub"] != u.ID || lt["sid"] != tok.claims["sid"] {
				t.Fatalf("logout token sub %v sid %v, want %s %v", lt["sub"], lt["sid"], u.ID, tok.claims["sid"])
			}
			if _, err := r.refresh(tok.token.RefreshToken); !refusedAsInvalidGrant(err) {
				t.Fatalf("refresh after disabling: %v, want invalid_grant", err)
			}
			if status, _, _ := bearerGet(t, ts.issuer+"/userinfo", tok.token.AccessToken); status != http.StatusUnauthorized {
				t.Fatalf("userinfo after disabling: %d, want 401", status)
			}
			if m := r.introspect(tok.token.AccessToken); m["active"] != false {
				t.Fatalf("introspection after disabling: %v", m)
			}

			// The browser that was signed in is signed out: the app's next
			// request shows the form.
			_, p := r.signInPage(b)
			// A wrong password gets what any address gets.
			wrong := b.submit(p, map[string]string{"email": email, "password": "Wrong-Passw0rd-1"})
			if wrong.status != http.StatusBadRequest || !strings.Contains(wrong.body, "Invalid email or password.") || strings.Contains(wrong.body, "disabled") {
				t.Fatalf("wrong password for a disabled account: %d\n%s", wrong.status, wrong.body)
			}
			right := b.submit(wrong, map[string]string{"email": email, "password": pw})
			if right.status != http.StatusForbidden || !strings.Contains(right.body, "This account has been disabled. Please contact your administrator.") {
				t.Fatalf("right password for a disabled account: %d\n%s", right.status, right.body)
			}
			if right.location != nil {
				t.Fatalf("the refused sign-in redirected to %v", right.location)
			}

			var got userJSON
			if err := json.Unmarshal([]byte(ts.cli("", "users", "get", email, "--json")), &got); err != nil || !got.Disabled || got.DisabledAt == nil {
				t.Fatalf("users get: %+v %v", got, err)
			}
			var evs []auditJSON
			for _, ev := range ts.auditList("--user", email) {
				switch ev.Action {
				case storage.AuditUserDisabled:
					if ev.Actor != storage.ActorCLI || ev.Detail["sessions"] != "1" {
						t.Errorf("user_disabled event: %+v", ev)
					}
					evs = append(evs, ev)
				case storage.AuditSignInFailed:
					if ev.Detail["reason"] == "disabled" {
						evs = append(evs, ev)
					}
				}
			}
			if len(evs) != 2 {
				t.Errorf("audit: %+v, want user_disabled and one sign_in_failed with reason disabled", evs)
			}

			// Enabled again: the password signs in; the old refresh token
			// stays dead.
			if out := ts.cli("", "users", "enable", email); !strings.Contains(out, "enabled "+email) {
				t.Fatalf("users enable: %q", out)
			}
			again := r.exchange(r.signIn(newBrowser(t, ts.issuer), email, pw))
			if again.idToken.Subject != u.ID {
				t.Fatalf("sign-in after enabling: sub %s", again.idToken.Subject)
			}
			if _, err := r.refresh(tok.token.RefreshToken); !refusedAsInvalidGrant(err) {
				t.Fatalf("the refresh token from before disabling after enabling: %v", err)
			}
			if _, err := r.refresh(again.token.RefreshToken); err != nil {
				t.Fatalf("the new refresh token: %v", err)
			}
		})
	}
}

// A disabled user's tokens are refused even where disabling did not reach
// them — a code or refresh in flight at the moment of disabling: the flag
// alone (set here in the store, the sessions left as they are) makes the
// token endpoint answer invalid_grant before anything is spent, and
// userinfo and introspection call the access token inactive.
func TestDisabledFlagRefusesTokens(t *testing.T) {
	ts := startServer(t, "sqlite", nil)
	c := ts.createClient("--name", "Notes", "--redirect-uri", "http://127.0.0.1:9/cb")
	u := ts.createUser("eve@example.com", "Eve-Passw0rd-1")
	r := newRP(t, ts, c)
	tok := r.exchange(r.signIn(newBrowser(t, ts.issuer), "eve@example.com", "Eve-Passw0rd-1"))
	ar, code := r.signIn(newBrowser(t, ts.issuer), "eve@example.com", "Eve-Passw0rd-1")

	ctx := context.Background()
	st := ts.app.store
	cur, err := st.GetUser(ctx, u.ID)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC()
	cur.DisabledAt, cur.UpdatedAt = &now, now
	if err := st.UpdateUser(ctx, cur); err != nil {
		t.Fatal(err)
	}

	if _, err := r.oauth.Exchange(ctx, code, oauth2.VerifierOption(ar.pkceV)); !refusedAsInvalidGrant(err) {
		t.Fatalf("code exchange for a disabled user: %v, want invalid_grant", err)
	}
	if _, err := r.refresh(tok.token.RefreshToken); !refusedAsInvalidGrant(err) {
		t.Fatalf("refresh for a disabled user: %v, want invalid_grant", err)
	}
	if status, _, _ := bearerGet(t, ts.issuer+"/userinfo", tok.token.AccessToken); status != http.StatusUnauthorized {
		t.Fatalf("userinfo for a disabled user: %d, want 401", status)
	}
	if m := r.introspect(tok.token.RefreshToken); m["active"] != false {
		t.Fatalf("introspection of the refresh token: %v", m)
	}
	// Refused before anything was spent: enabled again, past the reuse
	// grace window, the same refresh token still works (a rotated one
	// would now count as reused and revoke the grant).
	ts.clock.advance(time.Minute)
	cur.DisabledAt = nil
	if err := st.UpdateUser(ctx, cur); err != nil {
		t.Fatal(err)
	}
	if _, err := r.refresh(tok.token.RefreshToken); err != nil {
		t.Fatalf("refresh after the flag was cleared: %v", err)
	}
}

// Upstream sign-in of a disabled account is refused after the upstream
// vouched for the identity, with the same message.
func TestDisabledUpstreamSignIn(t *testing.T) {
	gh := githubtest.New(t, ghClientID, ghClientSecret)
	gh.AddUser(octocat(77, "ivan", "ivan@example.com", true))
	gh.SetApprover("ivan")
	ts := startServer(t, "sqlite", githubVars(gh, nil))
	r := newRP(t, ts, ts.createClient("--name", "App", "--redirect-uri", "http://127.0.0.1:9/cb"))
	b := newBrowser(t, ts.issuer)
	ar, p := r.signInPage(b)
	r.codeFrom(ar, b.viaGitHub(p)) // account created and linked

	ts.cli("", "users", "disable", "ivan@example.com")
	b2 := newBrowser(t, ts.issuer)
	_, p = r.signInPage(b2)
	got := b2.viaGitHub(p)
	if got.status != http.StatusForbidden || !strings.Contains(got.body, "This account has been disabled.") {
		t.Fatalf("upstream sign-in of a disabled account: %d %v\n%s", got.status, got.location, got.body)
	}
}
