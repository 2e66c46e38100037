package login

import (
	"context"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gatehouse-id/gatehouse/login/upstream"
	"github.com/gatehouse-id/gatehouse/storage"
	"github.com/gatehouse-id/gatehouse/storage/sqlite"
)

// An upstream's address is taken only when lower-casing it changes ASCII
// letters alone: Unicode case mapping would fold an address the upstream
// verified onto another one.
func TestUpstreamEmail(t *testing.T) {
	for raw, want := range map[string]string{
		" Octo@Example.COM ":       "octo@example.com",
		"ärger@example.com":        "ärger@example.com",
		"\u00c4rger@example.com":   "", // Ä → ä: not what the upstream verified
		"alice@\u0130nbox.example": "", // İ → i: another domain
		"bob@\u212Aodak.example":   "", // Kelvin sign → k
		"not an address":           "",
		"":                         "",
	} {
		if got := upstreamEmail(raw); got != want {
			t.Errorf("upstreamEmail(%q) = %q, want %q", raw, got, want)
		}
	}
}

// listBarrier holds the first two ListLinkedIdentities calls until both
// have arrived, so two disconnects read the links before either removes
// one — the interleaving that could leave an account without a way in.
type listBarrier struct {
	storage.Store
	t       *testing.T
	arrived chan struct{}
	release chan struct{}
	calls   atomic.Int32
}

func (s *listBarrier) ListLinkedIdentities(ctx context.Context, userID string) ([]storage.LinkedIdentity, error) {
	links, err := s.Store.ListLinkedIdentities(ctx, userID)
	if s.calls.Add(1) <= 2 {
		s.arrived <- struct{}{}
		select {
		case <-s.release:
		case <-time.After(10 * time.Second):
			s.t.Error("the two disconnects never met")
		}
	}
	return links, err
}

// Two disconnects at once, of the two upstreams of an account without a
// password: each sees the other's link and goes ahead. One of them must be
// refused, or the account is left with no way to sign in.
func TestUnlinkRaceKeepsLastMethod(t *testing.T) {
	ctx := context.Background()
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "gatehouse.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	bar := &listBarrier{Store: st, t: t, arrived: make(chan struct{}, 2), release: make(chan struct{})}
	e := newEnvWithStore(t, bar, withUpstreams(t))

	// An account created through upstreams: no password, two links.
	u := e.createUserWithHash("nopw@example.com", "")
	for _, up := range []string{"corp", "github"} {
		if err := st.LinkIdentity(ctx, &storage.LinkedIdentity{Upstream: up, Subject: "s-" + up, UserID: u.ID, CreatedAt: e.clock.Now()}); err != nil {
			t.Fatal(err)
		}
	}
	c := e.newBrowser()
	bar.calls.Store(2) // the account page is not part of the race
	csrf := e.signedInAs(c, u)
	bar.calls.Store(0)

	statuses := make(chan int, 2)
	for _, up := range []string{"corp", "github"} {
		go func() {
			req, _ := http.NewRequest(http.MethodPost, e.srv.URL+"/account/upstreams/unlink",
				strings.NewReader(url.Values{"csrf": {csrf}, "upstream": {up}}.Encode()))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			res, err := c.Do(req)
			if err != nil {
				t.Error(err)
				statuses <- 0
				return
			}
			res.Body.Close()
			statuses <- res.StatusCode
		}()
	}
	<-bar.arrived
	<-bar.arrived
	close(bar.release)
	<-statuses
	<-statuses

	links, err := st.ListLinkedIdentities(ctx, u.ID)
	if err != nil {
		t.Fatal(err)
	}
	if len(links) == 0 {
		t.Fatal("two concurrent disconnects left an account without a password and without any upstream")
	}
}

// withUpstreams configures GitHub and an OIDC upstream "corp" (neither is
// contacted: these tests never start a leg).
func withUpstreams(t *testing.T) envOption {
	gh := upstream.GitHubFromSettings("gh-id", "gh-secret", "", "")
	corp := upstream.Config{ID: "corp", Type: upstream.TypeOIDC, Name: "Corp", Issuer: "https://sso.corp.example",
		ClientID: "gatehouse", ClientSecret: "s", Scopes: []string{"openid", "email"}}
	reg, err := upstream.NewRegistry([]upstream.Config{gh, corp}, upstream.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return func(c *Config) { c.Upstreams = reg }
}

// signedInAs gives browser c a session of user u (no password needed) and
// returns the account page's form token.
func (e *env) signedInAs(c *http.Client, u *storage.User) string {
	e.t.Helper()
	token := randomToken(32)
	now := e.clock.Now()
	if err := e.store.CreateSession(e.ctx, &storage.Session{ID: randomToken(16), TokenHash: hashToken(token), UserID: u.ID, AuthTime: now,
		CreatedAt: now, LastSeenAt: now, ExpiresAt: now.Add(time.Hour), IdleExpiresAt: now.Add(time.Hour)}); err != nil {
		e.t.Fatal(err)
	}
	base, _ := url.Parse(e.srv.URL)
	c.Jar.SetCookies(base, []*http.Cookie{{Name: SessionCookie, Value: token, Path: "/"}})
	return field(e.t, csrfRe, e.get(c, "/account").Body)
}

// A link to an upstream that is no longer configured is no way to sign
// in: it does not let the account's last real method be disconnected.
func TestUnlinkRemovedUpstreamIsNoMethod(t *testing.T) {
	e := newEnv(t, withUpstreams(t))
	u := e.createUserWithHash("nopw@example.com", "")
	for _, up := range []string{"github", "oldcorp"} { // oldcorp was removed from the upstreams file
		if err := e.store.LinkIdentity(e.ctx, &storage.LinkedIdentity{Upstream: up, Subject: "s-" + up, UserID: u.ID, CreatedAt: e.clock.Now()}); err != nil {
			t.Fatal(err)
		}
	}
	c := e.newBrowser()
	csrf := e.signedInAs(c, u)
	if res := e.post(c, "/account/upstreams/unlink", url.Values{"csrf": {csrf}, "upstream": {"github"}}); res.Status != http.StatusConflict {
		t.Fatalf("disconnecting the only configured upstream: status %d", res.Status)
	}
	// The dead link itself can go.
	if res := e.post(c, "/account/upstreams/unlink", url.Values{"csrf": {csrf}, "upstream": {"oldcorp"}}); res.Status != http.StatusSeeOther {
		t.Fatalf("disconnecting a removed upstream: status %d", res.Status)
	}
	if links, _ := e.store.ListLinkedIdentities(e.ctx, u.ID); len(links) != 1 || links[0].Upstream != "github" {
		t.Fatalf("links left: %+v", links)
	}
}
