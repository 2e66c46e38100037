package login

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/gatehouse-id/gatehouse/storage"
)

// disable marks u disabled in the store, as the admin service does.
func (e *env) disable(u *storage.User) {
	e.t.Helper()
	cur, err := e.store.GetUser(e.ctx, u.ID)
	if err != nil {
		e.t.Fatal(err)
	}
	now := e.clock.Now()
	cur.DisabledAt, cur.UpdatedAt = &now, now
	if err := e.store.UpdateUser(e.ctx, cur); err != nil {
		e.t.Fatal(err)
	}
}

// A disabled account is refused at the sign-in form only after the right
// password, with the neutral message; a wrong password gets the answer
// every address gets. Nothing is completed and no session started.
func TestDisabledPasswordSignIn(t *testing.T) {
	e := newEnv(t)
	e.disable(e.alice)

	c := e.newBrowser()
	id := e.authRequest("app")
	wrong := e.signIn(c, id, e.alice.Email, "Wrong-Passw0rd-1")
	if wrong.Status != http.StatusBadRequest || !strings.Contains(wrong.Body, msgInvalidCredentials) || strings.Contains(wrong.Body, "disabled") {
		t.Fatalf("wrong password for a disabled account: %d\n%s", wrong.Status, wrong.Body)
	}
	unknown := e.signIn(c, id, "nobody@example.com", "Wrong-Passw0rd-1")
	if unknown.Status != wrong.Status {
		t.Fatalf("unknown address %d, disabled account with a wrong password %d: they must not differ", unknown.Status, wrong.Status)
	}
	right := e.signIn(c, id, e.alice.Email, alicePassword)
	if right.Status != http.StatusForbidden || !strings.Contains(right.Body, msgDisabled) {
		t.Fatalf("right password for a disabled account: %d\n%s", right.Status, right.Body)
	}
	e.expectNotCompleted("disabled account", id)
	if res := e.get(c, "/account"); res.Status != http.StatusSeeOther || !strings.HasPrefix(res.Location(), "/login") {
		t.Fatalf("a session was started: /account gives %d %q", res.Status, res.Location())
	}
	events := e.auditEvents(storage.AuditFilter{Subjects: []string{e.alice.ID}})
	found := false
	for _, ev := range events {
		if ev.Action == storage.AuditSignInFailed && ev.Detail["reason"] == "disabled" && ev.Actor == e.alice.ID {
			found = true
		}
	}
	if !found {
		t.Errorf("no sign_in_failed event with reason disabled: %+v", events)
	}

	// Enabled again, the same password signs in.
	cur, err := e.store.GetUser(e.ctx, e.alice.ID)
	if err != nil {
		t.Fatal(err)
	}
	cur.DisabledAt = nil
	if err := e.store.UpdateUser(e.ctx, cur); err != nil {
		t.Fatal(err)
	}
	e.login(e.newBrowser())
}

// A session of a user who is then disabled counts as signed out: the
// account page sends to sign-in, an authorization request shows the form
// (prompt=none gets login_required), nothing completes with it.
func TestDisabledUserSessionIsSignedOut(t *testing.T) {
	e := newEnv(t)
	c := e.accountBrowser(e.alice.Email, alicePassword)
	if res := e.get(c, "/account"); res.Status != http.StatusOK {
		t.Fatalf("account page before disabling: %d", res.Status)
	}
	e.disable(e.alice)
	if res := e.get(c, "/account"); res.Status != http.StatusSeeOther || !strings.HasPrefix(res.Location(), "/login") {
		t.Fatalf("account page of a disabled user: %d %q", res.Status, res.Location())
	}
	id := e.authRequest("app")
	e.expectLoginForm(e.get(c, "/login?authRequestID="+url.QueryEscape(id)))
	e.expectNotCompleted("a disabled user's session", id)

	none := e.authRequest("app", func(ar *storage.AuthRequest) { ar.Prompt = []string{"none"} })
	res := e.get(c, "/login?authRequestID="+url.QueryEscape(none))
	if !strings.Contains(res.Location(), "error=login_required") {
		t.Fatalf("prompt=none with a disabled user's session: %d %q", res.Status, res.Location())
	}
}

// A passkey sign-in of a disabled account is refused after the passkey was
// verified, with the same message.
func TestDisabledPasskeySignIn(t *testing.T) {
	e := newEnv(t, withPasskeys)
	k := e.newPasskey()
	if res := e.register(e.accountBrowser(e.alice.Email, alicePassword), k, "Key"); res.Status != http.StatusSeeOther {
		t.Fatalf("register a passkey: %d\n%s", res.Status, res.Body)
	}
	e.disable(e.alice)
	c := e.newBrowser()
	id := e.authRequest("app")
	csrf := e.csrfOf(c)
	opts := e.begin(c, "/login/passkey/begin", url.Values{"csrf": {csrf}, "authRequestID": {id}})
	res := e.post(c, "/login/passkey", url.Values{"csrf": {csrf}, "authRequestID": {id}, "response": {k.get(t, opts, lie{})}})
	if res.Status != http.StatusForbidden || !strings.Contains(res.Body, msgDisabled) {
		t.Fatalf("passkey sign-in of a disabled account: %d\n%s", res.Status, res.Body)
	}
	e.expectNotCompleted("passkey of a disabled account", id)
}
