package main

import (
	"context"
	"encoding/json"
	"math"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"github.com/go-jose/go-jose/v4"
	"golang.org/x/oauth2"
)

// logoutReceiver is an app's back-channel logout endpoint: it verifies each
// logout token the way an RP must (signature against the issuer's JWKS with
// go-oidc's key set, typ, iss, aud, iat/exp, events, sub/sid, no nonce) and
// hands the claims to the test, with the header's alg as "_alg". It can play an app that is down: while
// unavailable is positive, each POST is answered 503 (and counts it down)
// before anything is checked.
type logoutReceiver struct {
	srv    *httptest.Server
	tokens chan map[string]any
	errs   chan string
	// unavailable is how many more POSTs get 503; receiverDown for an app
	// down until the test says otherwise.
	unavailable atomic.Int64
	// now is the receiver's clock for iat/exp: time.Now, or the server's
	// test clock when the test moves it (set before the first POST).
	now func() time.Time

	mu  sync.Mutex
	raw []string // every logout_token POSTed, answered or not
}

// receiverDown makes a logoutReceiver answer 503 for as long as any test runs.
const receiverDown = math.MaxInt64

func newLogoutReceiver(t *testing.T, issuer, clientID string) *logoutReceiver {
	t.Helper()
	lr := &logoutReceiver{tokens: make(chan map[string]any, 8), errs: make(chan string, 8), now: time.Now}
	keySet := oidc.NewRemoteKeySet(context.Background(), issuer+"/keys")
	lr.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fail := func(msg string) {
			lr.errs <- msg
			http.Error(w, msg, http.StatusBadRequest)
		}
		if r.Method != http.MethodPost || !strings.HasPrefix(r.Header.Get("Content-Type"), "application/x-www-form-urlencoded") {
			fail("not a form POST")
			return
		}
		raw := r.PostFormValue("logout_token")
		lr.mu.Lock()
		lr.raw = append(lr.raw, raw)
		lr.mu.Unlock()
		if lr.refuse() {
			http.Error(w, "down for maintenance", http.StatusServiceUnavailable)
			return
		}
		jws, err := jose.ParseSignedCompact(raw, []jose.SignatureAlgorithm{jose.RS256, jose.ES256, jose.EdDSA})
		if err != nil || len(jws.Signatures) != 1 || jws.Signatures[0].Protected.ExtraHeaders["typ"] != "logout+jwt" {
			fail("not a logout+jwt")
			return
		}
		payload, err := keySet.VerifySignature(r.Context(), raw)
		if err != nil {
			fail("signature: " + err.Error())
			return
		}
		var c map[string]any
		if err := json.Unmarshal(payload, &c); err != nil {
			fail("claims")
			return
		}
		now := float64(lr.now().Unix())
		events, _ := c["events"].(map[string]any)
		_, hasEvent := events["http://schemas.openid.net/event/backchannel-logout"]
		iat, _ := c["iat"].(float64)
		exp, _ := c["exp"].(float64)
		switch {
		case c["iss"] != issuer:
			fail("iss")
		case c["aud"] != clientID && !audContains(c["aud"], clientID):
			fail("aud")
		case !hasEvent:
			fail("events")
		case c["nonce"] != nil:
			fail("nonce present")
		case c["sub"] == nil || c["sid"] == nil || c["jti"] == nil:
			fail("sub/sid/jti")
		case iat > now+60 || exp < now || exp-iat > 600:
			fail("iat/exp")
		default:
			c["_alg"] = jws.Signatures[0].Header.Algorithm
			lr.tokens <- c
			w.WriteHeader(http.StatusOK)
		}
	}))
	t.Cleanup(lr.srv.Close)
	return lr
}

func audContains(aud any, id string) bool {
	list, _ := aud.([]any)
	for _, a := range list {
		if a == id {
			return true
		}
	}
	return false
}

// refuse says whether this POST is answered 503, counting it down.
func (lr *logoutReceiver) refuse() bool {
	for {
		n := lr.unavailable.Load()
		if n <= 0 {
			return false
		}
		if n == receiverDown || lr.unavailable.CompareAndSwap(n, n-1) {
			return true
		}
	}
}

// posted returns every logout token POSTed so far, in order.
func (lr *logoutReceiver) posted() []string {
	lr.mu.Lock()
	defer lr.mu.Unlock()
	return append([]string(nil), lr.raw...)
}

// next waits (bounded) for the next verified logout token.
func (lr *logoutReceiver) next(t *testing.T) map[string]any {
	t.Helper()
	return lr.nextWithin(t, 20*time.Second)
}

// nextWithin is next with its own bound, for a delivery that first waits
// out a retry's backoff in real time.
func (lr *logoutReceiver) nextWithin(t *testing.T, d time.Duration) map[string]any {
	t.Helper()
	select {
	case c := <-lr.tokens:
		return c
	case msg := <-lr.errs:
		t.Fatalf("receiver refused a logout token: %s", msg)
	case <-time.After(d):
		t.Fatal("no logout token arrived")
	}
	return nil
}

// noMoreTokens fails t if a logout token was accepted and not yet taken.
func (lr *logoutReceiver) noMoreTokens(t *testing.T) {
	t.Helper()
	select {
	case c := <-lr.tokens:
		t.Errorf("another logout token was accepted: %v", c)
	default:
	}
}

// Signing out on Gatehouse's sign-out page sends every app that took part
// in the session (and registered a back-channel logout URI) a logout token
// for that session; an app that was not part of it gets nothing.
func TestBackchannelLogoutOnSignOut(t *testing.T) {
	for _, backend := range backends {
		t.Run(backend, func(t *testing.T) {
			ts := startServer(t, backend, nil)
			// The receiver needs the client ID; register, then point the
			// client at the receiver through the clients file.
			a := ts.createClient("--name", "A", "--redirect-uri", "http://127.0.0.1:9/a")
			other := ts.createClient("--name", "Other", "--redirect-uri", "http://127.0.0.1:9/o")
			ra := newLogoutReceiver(t, ts.issuer, a.ClientID)
			ro := newLogoutReceiver(t, ts.issuer, other.ClientID)
			setBackchannel(t, ts, a.ClientID, ra.srv.URL+"/backchannel-logout")
			setBackchannel(t, ts, other.ClientID, ro.srv.URL+"/backchannel-logout")

			var d struct {
				BC    bool `json:"backchannel_logout_supported"`
				BCSid bool `json:"backchannel_logout_session_supported"`
			}
			getJSONInto(t, ts.issuer+"/.well-known/openid-configuration", &d)
			if !d.BC || !d.BCSid {
				t.Fatalf("discovery: %+v", d)
			}

			u := ts.createUser("bc@example.com", "Bc-Passw0rd-1")
			sid := signInAndOut(t, ts, a, "bc@example.com", "Bc-Passw0rd-1")
			c := ra.next(t)
			if c["sub"] != u.ID || c["sid"] != sid {
				t.Fatalf("logout token sub %v sid %v, want %s %s", c["sub"], c["sid"], u.ID, sid)
			}
			select {
			case c := <-ro.tokens:
				t.Fatalf("an app not in the session got a logout token: %v", c)
			default:
			}
			// The delivery is on record (delivered, or about to be marked
			// so: the worker records the outcome after the receiver answered).
			out := ts.cli("", "logout-deliveries", "list", "--json")
			if !strings.Contains(out, a.ClientID) || strings.Contains(out, other.ClientID) || strings.Contains(out, "gave_up") {
				t.Fatalf("logout-deliveries list: %s", out)
			}
		})
	}
}

// signInAndOut signs email in to client c in a new browser (a new session),
// then out on Gatehouse's sign-out page, and returns the session's sid.
func signInAndOut(t *testing.T, ts *testServer, c createdClient, email, password string) string {
	t.Helper()
	r := newRP(t, ts, c)
	b := newBrowser(t, ts.issuer)
	tok := r.exchange(r.signIn(b, email, password))
	sid, _ := tok.claims["sid"].(string)
	if sid == "" {
		t.Fatalf("ID token without sid: %v", tok.claims)
	}
	if done := b.submit(b.get(ts.issuer+"/logout"), nil); done.status != http.StatusOK {
		t.Fatalf("sign-out: status %d", done.status)
	}
	return sid
}

// setBackchannel registers uri as client id's back-channel logout URI.
func setBackchannel(t *testing.T, ts *testServer, id, uri string) {
	t.Helper()
	ts.cli("", "clients", "update", id, "--backchannel-logout-uri", uri, "--backchannel-logout-session-required")
	_ = url.URL{}
}

// A password change ends the user's other sessions (and this one, which
// is replaced): the apps of the ended session get a logout token for it.
func TestBackchannelLogoutOnPasswordChange(t *testing.T) {
	ts := startServer(t, "sqlite", nil)
	a := ts.createClient("--name", "A", "--redirect-uri", "http://127.0.0.1:9/a")
	ra := newLogoutReceiver(t, ts.issuer, a.ClientID)
	setBackchannel(t, ts, a.ClientID, ra.srv.URL+"/bc")
	u := ts.createUser("pw@example.com", "Pw-Passw0rd-1")
	r := newRP(t, ts, a)
	b := newBrowser(t, ts.issuer)
	tok := r.exchange(r.signIn(b, "pw@example.com", "Pw-Passw0rd-1"))
	acct := b.get(ts.issuer + "/account")
	done := b.submit(formByAction(t, acct, "/account/password"), map[string]string{
		"current_password": "Pw-Passw0rd-1", "new_password": "Pw-Passw0rd-2-new"})
	if done.status != http.StatusOK || !strings.Contains(done.body, "password has been changed") {
		t.Fatalf("password change: status %d", done.status)
	}
	c := ra.next(t)
	if c["sub"] != u.ID || c["sid"] != tok.claims["sid"] {
		t.Fatalf("logout token sub %v sid %v, want %s %v", c["sub"], c["sid"], u.ID, tok.claims["sid"])
	}
}

// An admin's `users set-password` ends the user's sessions from the command
// line: the deliveries are queued in the store and the running server sends
// them.
func TestBackchannelLogoutFromCLI(t *testing.T) {
	ts := startServer(t, "sqlite", nil)
	a := ts.createClient("--name", "A", "--redirect-uri", "http://127.0.0.1:9/a")
	ra := newLogoutReceiver(t, ts.issuer, a.ClientID)
	setBackchannel(t, ts, a.ClientID, ra.srv.URL+"/bc")
	u := ts.createUser("cli@example.com", "Cli-Passw0rd-1")
	r := newRP(t, ts, a)
	tok := r.exchange(r.signIn(newBrowser(t, ts.issuer), "cli@example.com", "Cli-Passw0rd-1"))
	ts.cli("Cli-Passw0rd-2-new\n", "users", "set-password", "cli@example.com", "--password-stdin")
	c := ra.next(t)
	if c["sub"] != u.ID || c["sid"] != tok.claims["sid"] {
		t.Fatalf("logout token sub %v sid %v, want %s %v", c["sub"], c["sid"], u.ID, tok.claims["sid"])
	}
}

// Signing in again (prompt=login) keeps the session's sid, so a sign-out
// afterwards still reaches the app of the first sign-in; another user
// signing in in the same browser ends the first user's session, and its app
// is told.
func TestBackchannelLogoutAcrossSignIns(t *testing.T) {
	ts := startServer(t, "sqlite", nil)
	a := ts.createClient("--name", "A", "--redirect-uri", "http://127.0.0.1:9/a")
	bApp := ts.createClient("--name", "B", "--redirect-uri", "http://127.0.0.1:9/b")
	ra := newLogoutReceiver(t, ts.issuer, a.ClientID)
	setBackchannel(t, ts, a.ClientID, ra.srv.URL+"/bc")
	alice := ts.createUser("alice@example.com", "Alice-Passw0rd-1")
	ts.createUser("bob@example.com", "Bob-Passw0rd-1")
	br := newBrowser(t, ts.issuer)

	first := newRP(t, ts, a).exchange(newRP(t, ts, a).signIn(br, "alice@example.com", "Alice-Passw0rd-1"))
	again := newRP(t, ts, bApp).exchange(newRP(t, ts, bApp).signIn(br, "alice@example.com", "Alice-Passw0rd-1", oauth2.SetAuthURLParam("prompt", "login")))
	if again.claims["sid"] != first.claims["sid"] {
		t.Fatalf("prompt=login changed the sid from %v to %v", first.claims["sid"], again.claims["sid"])
	}
	// Bob signs in in the same browser: Alice's session ends.
	newRP(t, ts, bApp).exchange(newRP(t, ts, bApp).signIn(br, "bob@example.com", "Bob-Passw0rd-1", oauth2.SetAuthURLParam("prompt", "login")))
	c := ra.next(t)
	if c["sub"] != alice.ID || c["sid"] != first.claims["sid"] {
		t.Fatalf("logout token sub %v sid %v, want Alice's %s %v", c["sub"], c["sid"], alice.ID, first.claims["sid"])
	}
	if _, err := newRP(t, ts, a).refresh(first.token.RefreshToken); !refusedAsInvalidGrant(err) {
		t.Fatalf("Alice's refresh token after Bob signed in here: %v", err)
	}
}

// RP-initiated logout with an id_token_hint for a session that has already
// ended is a no-op: the app gets its user back with its state, no error
// page, and nobody is told twice.
func TestEndSessionHintForEndedSession(t *testing.T) {
	ts := startServer(t, "sqlite", nil)
	a := ts.createClient("--name", "A", "--redirect-uri", "http://127.0.0.1:9/a", "--post-logout-redirect-uri", "http://127.0.0.1:9/a/bye")
	ra := newLogoutReceiver(t, ts.issuer, a.ClientID)
	setBackchannel(t, ts, a.ClientID, ra.srv.URL+"/bc")
	ts.createUser("hint@example.com", "Hint-Passw0rd-1")
	r := newRP(t, ts, a)
	tok := r.exchange(r.signIn(newBrowser(t, ts.issuer), "hint@example.com", "Hint-Passw0rd-1"))
	ts.cli("", "users", "sign-out", "hint@example.com")
	ra.next(t)

	// Another browser (no cookie), as an app on another site would send it.
	q := url.Values{"id_token_hint": {tok.raw}, "post_logout_redirect_uri": {"http://127.0.0.1:9/a/bye"}, "state": {"s1"}}
	p := newBrowser(t, ts.issuer).get(ts.issuer + "/end_session?" + q.Encode())
	if p.location == nil || p.location.String() != "http://127.0.0.1:9/a/bye?state=s1" {
		t.Fatalf("end_session for an ended session: status %d location %v\n%s", p.status, p.location, p.body)
	}
	var ds []deliveryJSON
	if err := json.Unmarshal([]byte(ts.cli("", "logout-deliveries", "list", "--json")), &ds); err != nil || len(ds) != 1 {
		t.Fatalf("deliveries: %v %+v, want exactly the admin sign-out's", err, ds)
	}

	// Without a hint, logout_hint and client_id reach the confirmation page.
	b := newBrowser(t, ts.issuer)
	r.exchange(r.signIn(b, "hint@example.com", "Hint-Passw0rd-1"))
	q = url.Values{"client_id": {a.ClientID}, "logout_hint": {"someone-else@example.com"}}
	page := b.get(ts.issuer + "/end_session?" + q.Encode())
	for page.location != nil {
		page = b.get(page.location.String())
	}
	if !strings.Contains(page.body, "Sign out of all apps?") || !strings.Contains(page.body, "a different account") || !strings.Contains(page.body, "<strong>A</strong> asked to sign you out") {
		t.Fatalf("confirmation page:\n%s", page.body)
	}
}

// RP-initiated logout with a valid id_token_hint ends the session without
// the sign-out page: its apps get a logout token all the same, once. The
// same hint sent again ends nothing and queues nothing.
func TestBackchannelLogoutOnEndSession(t *testing.T) {
	ts := startServer(t, "sqlite", nil)
	a := ts.createClient("--name", "A", "--redirect-uri", "http://127.0.0.1:9/a")
	ra := newLogoutReceiver(t, ts.issuer, a.ClientID)
	setBackchannel(t, ts, a.ClientID, ra.srv.URL+"/bc")
	u := ts.createUser("es@example.com", "Es-Passw0rd-1")
	r := newRP(t, ts, a)
	tok := r.exchange(r.signIn(newBrowser(t, ts.issuer), "es@example.com", "Es-Passw0rd-1"))

	endSession := ts.issuer + "/end_session?" + url.Values{"id_token_hint": {tok.raw}}.Encode()
	if p := newBrowser(t, ts.issuer).get(endSession); p.status != http.StatusOK {
		t.Fatalf("end_session: status %d", p.status)
	}
	c := ra.next(t)
	if c["sub"] != u.ID || c["sid"] != tok.claims["sid"] {
		t.Fatalf("logout token sub %v sid %v, want %s %v", c["sub"], c["sid"], u.ID, tok.claims["sid"])
	}
	if p := newBrowser(t, ts.issuer).get(endSession); p.status != http.StatusOK {
		t.Fatalf("end_session again: status %d", p.status)
	}
	var list []struct {
		SessionID string `json:"session_id"`
	}
	if err := json.Unmarshal([]byte(ts.cli("", "logout-deliveries", "list", "--json", "--client", a.ClientID)), &list); err != nil {
		t.Fatal(err)
	}
	if len(list) != 1 || list[0].SessionID != tok.claims["sid"] {
		t.Fatalf("deliveries after two end_session requests: %+v", list)
	}
}
