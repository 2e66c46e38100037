package login

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/gatehouse-id/gatehouse/internal/emailhash"
	"github.com/gatehouse-id/gatehouse/storage"
	"github.com/gatehouse-id/gatehouse/storage/sqlite"
)

var testAuditKey = [32]byte{1, 2, 3}

func withAuditKey(c *Config) { c.EmailLogKey = testAuditKey }

func (e *env) auditEvents(f storage.AuditFilter) []storage.AuditEvent {
	e.t.Helper()
	got, err := e.store.ListAudit(e.ctx, f)
	if err != nil {
		e.t.Fatal(err)
	}
	return got
}

// TestAuditFailedSignInSubject: a failed sign-in on an account names the
// user; one on an unknown address names a keyed hash of it, and nothing the
// stranger typed (address or password) lands in the trail. Both answers are
// the same.
func TestAuditFailedSignInSubject(t *testing.T) {
	e := newEnv(t, withAuditKey)
	known := e.signIn(e.client, e.authRequest("app"), "alice@example.com", "Wrong-Passw0rd-1")
	unknown := e.signIn(e.client, e.authRequest("app"), " Nobody@Example.com", "Typed-Secret-77")
	if known.Status != unknown.Status {
		t.Fatalf("known address answered %d, unknown %d", known.Status, unknown.Status)
	}
	got := e.auditEvents(storage.AuditFilter{})
	if len(got) != 2 {
		t.Fatalf("want 2 events, got %+v", got)
	}
	wantSubjects := []string{AuditEmailSubject(emailhash.New(testAuditKey), "nobody@example.com"), e.alice.ID} // newest first
	for i, ev := range got {
		if ev.Action != storage.AuditSignInFailed || ev.Actor != storage.ActorAnonymous || ev.ClientID != "app" ||
			ev.Subject != wantSubjects[i] || ev.Detail["reason"] != "invalid_credentials" {
			t.Errorf("event %d: %+v, want subject %s", i, ev, wantSubjects[i])
		}
		if ev.IP != "127.0.0.1" || !strings.HasPrefix(ev.UserAgent, "Go-http-client/") {
			t.Errorf("event %d: IP %q, user agent %q", i, ev.IP, ev.UserAgent)
		}
		if s := strings.ToLower(ev.Subject + ev.Actor + ev.IP + ev.UserAgent + ev.ClientID + strings.Join(values(ev.Detail), " ")); strings.Contains(s, "nobody") || strings.Contains(s, "typed-secret") {
			t.Errorf("event %d holds what was typed: %+v", i, ev)
		}
	}
	if AuditEmailSubject(emailhash.New([32]byte{9}), "nobody@example.com") == wantSubjects[0] {
		t.Error("the subject of an unknown address does not depend on the key")
	}
}

func values(m map[string]string) []string {
	var out []string
	for _, v := range m {
		out = append(out, v)
	}
	return out
}

// TestAuditClientIPFromTrustedProxy: behind a trusted proxy the event names
// the client the proxy forwarded for, not the proxy.
func TestAuditClientIPFromTrustedProxy(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")} })
	id := e.authRequest("app")
	_, csrf := e.openLogin(e.client, id)
	res := e.post(e.client, "/login", url.Values{"authRequestID": {id}, "email": {"alice@example.com"},
		"password": {alicePassword}, "csrf": {csrf}}, "X-Forwarded-For", "2001:db8::1234, 127.0.0.1", "User-Agent", "Browser/1.0")
	e.expectCompleted(res, id, e.alice)
	got := e.auditEvents(storage.AuditFilter{Subjects: []string{e.alice.ID}})
	if len(got) != 1 || got[0].Action != storage.AuditSignIn || got[0].IP != "2001:db8::1234" ||
		got[0].UserAgent != "Browser/1.0" || got[0].Actor != e.alice.ID || got[0].Detail["session_id"] == "" {
		t.Fatalf("events: %+v", got)
	}
}

// failingAudit is a store whose audit trail is broken.
type failingAudit struct{ storage.Store }

func (failingAudit) AppendAudit(context.Context, *storage.AuditEvent) error {
	return storage.ErrUnavailable
}

// syncBuffer is a log destination safe for the server's goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestAuditFailureDoesNotBlockSignIn: the user's action stands when the
// event cannot be written; the failure is logged.
func TestAuditFailureDoesNotBlockSignIn(t *testing.T) {
	var logs syncBuffer
	st, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "gatehouse.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	e := newEnvWithStore(t, failingAudit{st}, func(c *Config) { c.Logger = slog.New(slog.NewTextHandler(&logs, nil)) })
	id := e.authRequest("app")
	e.expectCompleted(e.signIn(e.client, id, "alice@example.com", alicePassword), id, e.alice)
	if l := logs.String(); !strings.Contains(l, "audit event not recorded") || !strings.Contains(l, "action=sign_in") {
		t.Errorf("the lost event was not logged:\n%s", l)
	}
}

// TestAuditAnonymousBudget: strangers' events stop being stored past their
// budget per minute (many addresses could otherwise grow the table without
// end); known users' events are always stored.
func TestAuditAnonymousBudget(t *testing.T) {
	e := newEnv(t)
	r := httptest.NewRequest(http.MethodPost, "/login", nil)
	for i := range anonymousAuditRule.Limit + 30 {
		e.h.audit(r, storage.AuditEvent{Action: storage.AuditSignInFailed, Actor: storage.ActorAnonymous, Subject: fmt.Sprintf("email:%016x", i)})
	}
	e.h.audit(r, storage.AuditEvent{Action: storage.AuditSignIn, Actor: e.alice.ID, Subject: e.alice.ID})
	events, err := e.store.ListAudit(e.ctx, storage.AuditFilter{Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	anonymous := 0
	for _, ev := range events {
		if ev.Actor == storage.ActorAnonymous {
			anonymous++
		}
	}
	if anonymous != anonymousAuditRule.Limit || len(events) != anonymous+1 {
		t.Fatalf("stored %d anonymous events of %d (budget %d) and %d others, want the budget and 1",
			anonymous, anonymousAuditRule.Limit+30, anonymousAuditRule.Limit, len(events)-anonymous)
	}
	e.clock.Advance(anonymousAuditRule.Period)
	e.h.audit(r, storage.AuditEvent{Action: storage.AuditSignInFailed, Actor: storage.ActorAnonymous, Subject: "email:later"})
	if got, _ := e.store.ListAudit(e.ctx, storage.AuditFilter{Subjects: []string{"email:later"}}); len(got) != 1 {
		t.Fatalf("the budget did not refill after a period: %d events", len(got))
	}
}
