package main

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"golang.org/x/oauth2"
)

// What ends when a session ends — the README's token-fate table, as a test.
// Each case signs one user in to two apps in one browser session: "keep"
// may keep offline access past sign-out (--offline-survives-logout),
// "strict" may not; both asked for offline_access and registered a
// back-channel logout URI. Then one event ends the session, and the test
// checks which refresh token still works, and that each app was told with a
// logout token for the session, the delivery on record with its reason.
func TestTokenFateAtSessionEnd(t *testing.T) {
	const email, password = "fate@example.com", "Fate-Passw0rd-1"
	cases := []struct {
		name string
		// end ends the session; the browser b is the one signed in.
		end        func(t *testing.T, f *fate)
		reason     string
		keepLives  bool // keep's offline refresh token survives
		userExists bool
	}{
		{"sign-out page", func(t *testing.T, f *fate) {
			f.b.submit(f.b.get(f.ts.issuer+"/logout"), nil)
		}, "logout", true, true},
		{"RP-initiated logout with id_token_hint", func(t *testing.T, f *fate) {
			q := url.Values{"id_token_hint": {f.strictTok.raw}, "post_logout_redirect_uri": {"http://127.0.0.1:9/strict/bye"}, "state": {"st-1"}}
			p := f.b.get(f.ts.issuer + "/end_session?" + q.Encode())
			if p.location == nil || p.location.String() != "http://127.0.0.1:9/strict/bye?state=st-1" {
				t.Fatalf("end_session with a valid hint: status %d location %v, want the app with its state and no page", p.status, p.location)
			}
		}, "logout", true, true},
		{"session expiry", func(t *testing.T, f *fate) {
			f.ts.clock.advance(25 * time.Hour) // idle timeout 24 h
			if err := f.ts.app.cleanupOnce(context.Background()); err != nil {
				t.Fatal(err)
			}
		}, "expired", true, true},
		{"admin sign-out of the session", func(t *testing.T, f *fate) {
			var list []sessionJSON
			if err := json.Unmarshal([]byte(f.ts.cli("", "users", "sessions", email, "--json")), &list); err != nil || len(list) != 1 {
				t.Fatalf("users sessions: %v %+v", err, list)
			}
			f.ts.cli("", "users", "sign-out", email, "--session", list[0].ID)
		}, "admin_sign_out", true, true},
		{"admin sign-out of the user", func(t *testing.T, f *fate) {
			f.ts.cli("", "users", "sign-out", email)
		}, "admin_sign_out", false, true},
		{"password change", func(t *testing.T, f *fate) {
			acct := f.b.get(f.ts.issuer + "/account")
			done := f.b.submit(formByAction(t, acct, "/account/password"), map[string]string{
				"current_password": password, "new_password": "Fate-Passw0rd-2-new"})
			if !strings.Contains(done.body, "password has been changed") {
				t.Fatalf("password change: status %d", done.status)
			}
		}, "password_changed", false, true},
		{"password set by an admin", func(t *testing.T, f *fate) {
			f.ts.cli("Fate-Passw0rd-3-new\n", "users", "set-password", email, "--password-stdin")
		}, "admin_password_set", false, true},
		{"user disabled", func(t *testing.T, f *fate) {
			f.ts.cli("", "users", "disable", email)
		}, "user_disabled", false, true},
		{"second factors reset", func(t *testing.T, f *fate) {
			f.ts.cli("", "users", "reset-mfa", email)
		}, "mfa_reset", false, true},
		{"account deletion", func(t *testing.T, f *fate) {
			acct := f.b.get(f.ts.issuer + "/account")
			done := f.b.submit(formByAction(t, acct, "/account/delete"), map[string]string{"password": password})
			if !strings.Contains(done.body, "Account deleted") {
				t.Fatalf("account deletion: status %d", done.status)
			}
		}, "account_deleted", false, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := newFate(t, email, password)
			c.end(t, f)

			for _, app := range []struct {
				name  string
				r     *rp
				lr    *logoutReceiver
				tok   tokens
				lives bool
			}{{"keep", f.keep, f.keepBC, f.keepTok, c.keepLives}, {"strict", f.strict, f.strictBC, f.strictTok, false}} {
				lt := app.lr.next(t)
				if lt["sid"] != app.tok.claims["sid"] || lt["sub"] != app.tok.claims["sub"] {
					t.Errorf("%s: logout token sid %v sub %v, want the session's %v %v", app.name, lt["sid"], lt["sub"], app.tok.claims["sid"], app.tok.claims["sub"])
				}
				_, err := app.r.refresh(app.tok.token.RefreshToken)
				switch {
				case app.lives && err != nil:
					t.Errorf("%s: offline refresh token refused after %s: %v", app.name, c.name, err)
				case !app.lives && !refusedAsInvalidGrant(err):
					t.Errorf("%s: refresh token after %s: %v, want invalid_grant", app.name, c.name, err)
				}
			}
			var ds []deliveryJSON
			if err := json.Unmarshal([]byte(f.ts.cli("", "logout-deliveries", "list", "--json")), &ds); err != nil {
				t.Fatal(err)
			}
			if len(ds) != 2 {
				t.Fatalf("%d deliveries on record, want 2 (one per app): %+v", len(ds), ds)
			}
			for _, d := range ds {
				if d.Reason != c.reason {
					t.Errorf("delivery to %s: reason %q, want %q", d.ClientID, d.Reason, c.reason)
				}
			}
			if !c.userExists {
				return
			}
			// The user can sign in again (nothing was left half done).
			out := f.ts.cli("", "users", "sessions", email, "--json")
			var list []sessionJSON
			if err := json.Unmarshal([]byte(out), &list); err != nil {
				t.Fatal(err)
			}
			for _, s := range list {
				if s.ID == f.strictTok.claims["sid"] {
					t.Errorf("the ended session is still listed: %+v", s)
				}
			}
		})
	}
}

// fate is TestTokenFateAtSessionEnd's setup: a server, two apps with
// back-channel receivers, and one browser signed in to both.
type fate struct {
	ts                 *testServer
	b                  *browser
	keep, strict       *rp
	keepBC, strictBC   *logoutReceiver
	keepTok, strictTok tokens
}

func newFate(t *testing.T, email, password string) *fate {
	t.Helper()
	ts := startServer(t, "sqlite", nil)
	keep := ts.createClient("--name", "Keep", "--redirect-uri", "http://127.0.0.1:9/keep", "--offline-survives-logout")
	strict := ts.createClient("--name", "Strict", "--redirect-uri", "http://127.0.0.1:9/strict", "--post-logout-redirect-uri", "http://127.0.0.1:9/strict/bye")
	f := &fate{ts: ts, b: newBrowser(t, ts.issuer), keep: newRP(t, ts, keep), strict: newRP(t, ts, strict)}
	f.keepBC = newLogoutReceiver(t, ts.issuer, keep.ClientID)
	f.strictBC = newLogoutReceiver(t, ts.issuer, strict.ClientID)
	f.keepBC.now, f.strictBC.now = ts.clock.now, ts.clock.now
	setBackchannel(t, ts, keep.ClientID, f.keepBC.srv.URL+"/bc")
	setBackchannel(t, ts, strict.ClientID, f.strictBC.srv.URL+"/bc")
	ts.createUser(email, password)
	f.keepTok = f.keep.exchange(f.keep.signIn(f.b, email, password))
	f.strictTok = f.strict.exchange(f.strict.signIn(f.b, email, password)) // SSO: no form
	if f.keepTok.token.RefreshToken == "" || f.strictTok.token.RefreshToken == "" {
		t.Fatal("no refresh tokens issued")
	}
	if f.keepTok.claims["sid"] != f.strictTok.claims["sid"] {
		t.Fatalf("two sessions: %v %v", f.keepTok.claims["sid"], f.strictTok.claims["sid"])
	}
	return f
}

func refusedAsInvalidGrant(err error) bool {
	var re *oauth2.RetrieveError
	return errors.As(err, &re) && re.ErrorCode == "invalid_grant" && re.Response.StatusCode == http.StatusBadRequest
}

// Using a refresh token is activity in the session that issued it: an app
// busy refreshing keeps the SSO session (and with it its own refresh
// tokens) alive past the idle timeout; once nobody uses it, it expires and
// its apps are told.
func TestRefreshKeepsSessionAlive(t *testing.T) {
	const email, password = "busy@example.com", "Busy-Passw0rd-1"
	f := newFate(t, email, password)
	ctx := context.Background()
	rt := f.strictTok.token.RefreshToken
	for range 3 { // 60 h in all, past the 24 h idle timeout twice over
		f.ts.clock.advance(20 * time.Hour)
		tok, err := f.strict.refresh(rt)
		if err != nil {
			t.Fatalf("refresh: %v", err)
		}
		rt = tok.RefreshToken
		if err := f.ts.app.cleanupOnce(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := f.ts.app.store.GetSession(ctx, f.strictTok.claims["sid"].(string)); err != nil {
		t.Fatalf("session of a busy app after 60 h: %v", err)
	}
	f.ts.clock.advance(25 * time.Hour)
	if err := f.ts.app.cleanupOnce(ctx); err != nil {
		t.Fatal(err)
	}
	if c := f.strictBC.next(t); c["sid"] != f.strictTok.claims["sid"] {
		t.Fatalf("logout token for sid %v, want %v", c["sid"], f.strictTok.claims["sid"])
	}
	if _, err := f.strict.refresh(rt); !refusedAsInvalidGrant(err) {
		t.Fatalf("refresh after the session expired: %v", err)
	}
}
