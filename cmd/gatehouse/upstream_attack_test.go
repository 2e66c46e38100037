package main

import (
	"net/http"
	"strings"
	"testing"

	"github.com/gatehouse-id/gatehouse/login/mail/mailtest"
	"github.com/gatehouse-id/gatehouse/login/upstream/githubtest"
)

// Attacks on upstream sign-in (issue 9 review): each test is an attacker's
// attempt that must fail.

// The "trojan identifier" pre-account takeover: the attacker registers the
// victim's address (unverified; sign-in is allowed before verification by
// default), connects the attacker's own GitHub account from the account
// page, and waits. The victim later claims the account the only way they
// can, with "Forgot your password?" — which ends every session and refresh
// token, but would leave the attacker's GitHub link in place, a way back in.
// An account whose address nobody has proven must not gain sign-in methods.
func TestUpstreamAttackTrojanIdentity(t *testing.T) {
	smtp := mailtest.NewServer(t)
	gh := githubtest.New(t, ghClientID, ghClientSecret)
	gh.AddUser(octocat(666, "mallory", "mallory@evil.example", true))
	ts := startServer(t, "sqlite", githubVars(gh, map[string]string{"SMTP_URL": smtp.URL()}))
	r := newRP(t, ts, ts.createClient("--name", "App", "--redirect-uri", "http://127.0.0.1:9/cb"))

	// The attacker registers victim@example.com and is signed in at once.
	mallory := newBrowser(t, ts.issuer)
	reg := mallory.followLink(mallory.get(ts.issuer+"/login?return=/account"), "Create account")
	acct := mallory.submit(reg, map[string]string{"name": "Victim", "email": "victim@example.com", "password": "Mallory-Passw0rd-1"})
	if acct.status != http.StatusOK || !strings.Contains(acct.body, "Your account") {
		t.Fatalf("registration: status %d\n%s", acct.status, acct.body)
	}
	connect := elementAttr(t, acct, "connect-github", "href")
	if connect == "" {
		t.Fatalf("no Connect GitHub link:\n%s", acct.body)
	}
	gh.SetApprover("mallory")
	start := mallory.get(ts.issuer + connect)
	if start.location != nil {
		got := mallory.get(start.location.String())
		if got.status == http.StatusOK && strings.Contains(got.body, "Connected.") {
			t.Errorf("an account with an unverified address connected GitHub")
		}
	} else if start.status != http.StatusForbidden || !strings.Contains(start.body, "Verify your email address") {
		t.Errorf("connect refused with status %d, want 403 and a reason:\n%s", start.status, start.body)
	}

	// The victim takes the account over through the reset link.
	fb := newBrowser(t, ts.issuer)
	fb.submit(fb.followLink(fb.get(ts.issuer+"/login?return=/account"), "Forgot your password?"), map[string]string{"email": "victim@example.com"})
	var link string
	for link == "" { // the verification mail of the registration comes first
		link = waitMail(t, smtp, "victim@example.com").Link(ts.issuer + "/reset")
	}
	vb := newBrowser(t, ts.issuer)
	if p := vb.submit(vb.get(link), map[string]string{"password": "Victim-Passw0rd-1"}); !strings.Contains(p.body, "Your password has been changed") {
		t.Fatalf("reset: status %d\n%s", p.status, p.body)
	}
	victim := ts.users()["victim@example.com"]

	// The attacker comes back through GitHub.
	b := newBrowser(t, ts.issuer)
	ar, p := r.signInPage(b)
	got := b.viaGitHub(p)
	if got.location != nil && got.location.Query().Get("code") != "" {
		if tok := r.exchange(ar, r.codeFrom(ar, got)); tok.idToken.Subject == victim.ID {
			t.Fatalf("the attacker's GitHub account signed in to the victim's account after the victim reset its password")
		}
	}
}

// Gatehouse lower-cases addresses with Unicode case mapping, which folds
// some non-ASCII letters onto ASCII ones ("İ" → "i", the Kelvin sign →
// "k"). An upstream that verified "alice@İnbox.example" — a different
// domain (IDNA maps "İ" to "i̇"), which the attacker can own — must not
// give the attacker a verified account for alice@inbox.example.
func TestUpstreamAttackUnicodeCaseFold(t *testing.T) {
	gh := githubtest.New(t, ghClientID, ghClientSecret)
	gh.AddUser(octocat(667, "mallory", "Alice@\u0130nbox.example", true))
	gh.AddUser(octocat(668, "trudy", "bob@\u212Aodak.example", true))
	gh.AddUser(octocat(669, "ursula", "\u00c4rger@example.com", true))
	ts := startServer(t, "sqlite", githubVars(gh, nil))
	r := newRP(t, ts, ts.createClient("--name", "App", "--redirect-uri", "http://127.0.0.1:9/cb"))
	for _, login := range []string{"mallory", "trudy", "ursula"} {
		gh.SetApprover(login)
		b := newBrowser(t, ts.issuer)
		_, p := r.signInPage(b)
		got := b.viaGitHub(p)
		if got.status != http.StatusForbidden || got.location != nil {
			t.Errorf("%s: status %d location %v, want 403", login, got.status, got.location)
		}
	}
	if users := ts.users(); len(users) != 0 {
		t.Fatalf("accounts created from case-folded upstream addresses: %v", users)
	}
}

// A callback without a leg is refused before anything else, and audited
// as a failed sign-in. Unlimited, one address could write to the trail as
// fast as it can send requests — and spend the shared budget for
// anonymous events, so that other addresses' failed passwords are no longer
// recorded. Refused callbacks count against the per-IP sign-in limit, like
// wrong passwords.
func TestUpstreamAttackRefusedCallbackFlood(t *testing.T) {
	gh := githubtest.New(t, ghClientID, ghClientSecret)
	ts := startServer(t, "sqlite", githubVars(gh, map[string]string{"GATEHOUSE_RATE_LOGIN_IP": "5/1m"}))
	b := newBrowser(t, ts.issuer)
	for range 20 {
		if p := b.get(ts.issuer + "/upstream/github/callback?code=x&state=y"); p.status != http.StatusBadRequest {
			t.Fatalf("status %d", p.status)
		}
	}
	n := 0
	for _, ev := range findAudit(ts.auditList(), "sign_in_failed") {
		if ev.Detail["reason"] == "no_leg" {
			n++
		}
	}
	if n > 5 {
		t.Fatalf("%d audit events from 20 refused callbacks of one address, want at most the per-IP sign-in limit (5)", n)
	}
}

// While an OIDC upstream is down, every start fails at discovery — an
// anonymous request that is audited. Those too spend the per-IP limit.
func TestUpstreamAttackStartFloodWhileDown(t *testing.T) {
	upstreams := tempFile(t, "upstreams.json", `{"upstreams":[{"id":"corp","type":"oidc","name":"Corp SSO",
		"issuer":"http://127.0.0.1:9","client_id":"gatehouse","client_secret":"s"}]}`)
	ts := startServer(t, "sqlite", map[string]string{"GATEHOUSE_UPSTREAMS_FILE": upstreams, "GATEHOUSE_RATE_LOGIN_IP": "5/1m"})
	b := newBrowser(t, ts.issuer)
	for range 20 {
		if p := b.get(ts.issuer + "/upstream/corp/start"); p.status != http.StatusServiceUnavailable && p.status != http.StatusTooManyRequests {
			t.Fatalf("status %d", p.status)
		}
	}
	n := 0
	for _, ev := range findAudit(ts.auditList(), "sign_in_failed") {
		if ev.Detail["upstream"] == "corp" {
			n++
		}
	}
	if n > 5 {
		t.Fatalf("%d audit events from 20 starts of one address, want at most the per-IP sign-in limit (5)", n)
	}
}
