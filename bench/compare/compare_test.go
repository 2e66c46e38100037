package main

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func TestParseStatTicks(t *testing.T) {
	// A command name with a space and a parenthesis: fields are counted
	// from the last ')'.
	line := []byte("4242 (we(ird) name) S 1 4242 4242 0 -1 4194560 1000 0 0 0 123 45 0 0 20 0 9 0 100 0 0\n")
	got, err := parseStatTicks(line)
	if err != nil || got != 168 {
		t.Fatalf("parseStatTicks = %d, %v; want 168 (123 + 45)", got, err)
	}
	if statComm(line) != "we(ird) name" {
		t.Fatalf("statComm = %q", statComm(line))
	}
	if _, err := parseStatTicks([]byte("4242 (x) S 1 2")); err == nil {
		t.Fatal("a short line parsed")
	}
	// The driver's own process, for real.
	if _, err := cpuTime(os.Getpid()); err != nil {
		t.Skipf("no /proc here: %v", err)
	}
}

func TestParseStatus(t *testing.T) {
	m, err := parseStatus([]byte("Name:\tgatehouse\nVmHWM:\t  151552 kB\nVmRSS:\t   20480 kB\nThreads:\t9\n"))
	if err != nil || m.HWM != 151552<<10 || m.RSS != 20480<<10 {
		t.Fatalf("parseStatus = %+v, %v", m, err)
	}
	if _, err := parseStatus([]byte("Name:\tx\nVmRSS:\t1 kB\n")); err == nil {
		t.Fatal("a status without VmHWM parsed")
	}
	if _, err := parseStatus([]byte("VmHWM:\t1 MB\nVmRSS:\t1 kB\n")); err == nil {
		t.Fatal("a unit other than kB parsed")
	}
}

func TestParseForm(t *testing.T) {
	base, _ := url.Parse("http://127.0.0.1:8080/login?x=1")
	// Gatehouse's sign-in page: a language form first, then the sign-in form.
	page := `<html><body>
		<form method="post" action="/lang"><input type="hidden" name="lang" value="de"><button>Deutsch</button></form>
		<form method="post" action="/login">
			<input type="hidden" name="csrf" value="c1">
			<input type="email" name="email" value="">
			<input type="password" name="password">
			<input type="checkbox" name="remember" value="yes">
			<button type="submit">Sign in</button>
		</form></body></html>`
	f, err := parseForm(page, base)
	if err != nil {
		t.Fatal(err)
	}
	if f.action != "http://127.0.0.1:8080/login" || !f.hasPassword || f.loginField != "email" || f.passwordField != "password" {
		t.Fatalf("sign-in form = %+v", f)
	}
	if f.values.Get("csrf") != "c1" || f.values.Has("remember") || f.values.Has("lang") {
		t.Fatalf("values = %v", f.values)
	}

	// node-oidc-provider's dev consent page: no password, a named button.
	f, err = parseForm(`<form autocomplete="off" action="/interaction/u1" method="post">
		<input type="hidden" name="prompt" value="consent"/>
		<button autofocus type="submit" name="submit" value="yes">Continue</button>
		<button type="submit" name="submit" value="no">Cancel</button></form>`, base)
	if err != nil {
		t.Fatal(err)
	}
	if f.hasPassword || f.action != "http://127.0.0.1:8080/interaction/u1" || f.values.Get("prompt") != "consent" || f.values.Get("submit") != "yes" {
		t.Fatalf("consent form = %+v", f)
	}

	if _, err := parseForm(`<form method="get" action="/search"><input name="q"></form>`, base); err == nil {
		t.Fatal("a page without a POST form parsed")
	}
	if _, err := parseForm(`<form method="post"><input type="password" name="pw"></form>`, base); err == nil {
		t.Fatal("a password field without a login field parsed")
	}
}

// TestAuthorize walks a fake provider: a redirect, a sign-in form, a consent
// form, then the redirect to the app.
func TestAuthorize(t *testing.T) {
	var posted url.Values
	var srv *httptest.Server
	srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/auth":
			if c, err := r.Cookie("session"); err == nil && c.Value == "alice" {
				http.Redirect(w, r, redirectURI+"?code=c2&state="+r.URL.Query().Get("state"), http.StatusSeeOther)
				return
			}
			http.Redirect(w, r, "/login?state="+r.URL.Query().Get("state"), http.StatusFound)
		case "/login":
			if r.Method == http.MethodGet {
				w.Write([]byte(`<form method="post" action="/login?state=` + r.URL.Query().Get("state") +
					`"><input name="username"><input type="password" name="password"><input type="hidden" name="id" value="7"></form>`))
				return
			}
			r.ParseForm()
			posted = r.PostForm
			if r.Header.Get("Origin") != srv.URL {
				http.Error(w, "cross-site", http.StatusForbidden)
				return
			}
			http.SetCookie(w, &http.Cookie{Name: "session", Value: r.PostForm.Get("username"), Path: "/"})
			w.Write([]byte(`<form method="post" action="/consent?state=` + r.URL.Query().Get("state") + `"><button>Allow</button></form>`))
		case "/consent":
			http.Redirect(w, r, redirectURI+"?code=c1&state="+r.URL.Query().Get("state"), http.StatusSeeOther)
		default:
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()
	br := newBrowser(srv.Client().Transport)
	ctx := context.Background()

	if _, _, err := br.authorize(ctx, srv.URL+"/auth?state=s1", redirectURI, "s1", nil); !errors.Is(err, errSignInPage) {
		t.Fatalf("without an account: %v, want errSignInPage", err)
	}
	code, n, err := br.authorize(ctx, srv.URL+"/auth?state=s1", redirectURI, "s1", &account{"alice", "pw"})
	if err != nil || code != "c1" || n != 4 {
		t.Fatalf("sign-in: code %q after %d requests, %v; want c1 after 4", code, n, err)
	}
	if posted.Get("username") != "alice" || posted.Get("password") != "pw" || posted.Get("id") != "7" {
		t.Fatalf("posted %v", posted)
	}
	// The session now lets the browser through in one request.
	code, n, err = br.authorize(ctx, srv.URL+"/auth?state=s2", redirectURI, "s2", nil)
	if err != nil || code != "c2" || n != 1 {
		t.Fatalf("SSO: code %q after %d requests, %v; want c2 after 1", code, n, err)
	}
	if _, _, err := br.authorize(ctx, srv.URL+"/auth?state=s3", redirectURI, "other", nil); err == nil {
		t.Fatal("a redirect with the wrong state was taken")
	}
}

func TestJWTAlg(t *testing.T) {
	for tok, want := range map[string]string{
		"eyJhbGciOiJSUzI1NiIsImtpZCI6IjEifQ.e30.c2ln": "RS256",
		"eyJhbGciOiJFUzI1NiJ9.e30.c2ln":               "ES256",
		"opaque-token":                                "",
		"eyJhbGciOiJBMjU2R0NNS1cifQ.a.b.c.d":          "", // a JWE (zitadel's opaque tokens)
	} {
		if got := jwtAlg(tok); got != want {
			t.Errorf("jwtAlg(%q) = %q, want %q", tok, got, want)
		}
	}
}

func TestDrive(t *testing.T) {
	ctx := context.Background()
	var calls atomic.Int64
	s := drive(ctx, load{workers: 4, op: func(context.Context, int) (int, error) {
		if calls.Add(1)%10 == 0 {
			return 1, errors.New("every tenth fails")
		}
		time.Sleep(time.Millisecond)
		return 2, nil
	}}, 100*time.Millisecond)
	if s.ops == 0 || s.errs == 0 || s.requests != 2*s.ops || s.firstErr == nil {
		t.Fatalf("closed loop: %+v", s)
	}

	// A worker whose state broke stops; the others go on.
	s = drive(ctx, load{workers: 2, op: func(_ context.Context, w int) (int, error) {
		if w == 0 {
			return 1, errStopWorker
		}
		time.Sleep(time.Millisecond)
		return 1, nil
	}}, 50*time.Millisecond)
	if s.errs != 1 || s.ops == 0 {
		t.Fatalf("stopped worker: %d errors, %d ops; want 1 error and ops from the other", s.errs, s.ops)
	}

	// Open loop: about rate × duration arrivals, whatever the latency.
	s = drive(ctx, load{workers: 8, rate: 200, op: func(context.Context, int) (int, error) {
		time.Sleep(20 * time.Millisecond)
		return 1, nil
	}}, 200*time.Millisecond)
	if s.ops < 20 || s.ops > 50 {
		t.Fatalf("open loop at 200/s for 200ms: %d operations", s.ops)
	}
}

func TestFormatting(t *testing.T) {
	for v, want := range map[float64]string{0: "0.0", 67.04: "67.0", 1110: "1,110", 52345.6: "52,346", 1234567: "1,234,567"} {
		if got := fmtRate(v); got != want {
			t.Errorf("fmtRate(%v) = %q, want %q", v, got, want)
		}
	}
	if got := fmtLatency(1700 * time.Microsecond); got != "1.70 ms" {
		t.Errorf("fmtLatency = %q", got)
	}
	s := sample{lat: []time.Duration{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}}
	if s.percentile(50) != 5 || s.percentile(99) != 10 || s.percentile(0) != 1 {
		t.Errorf("percentiles %v %v %v", s.percentile(50), s.percentile(99), s.percentile(0))
	}
	if !strings.Contains(scenarios[6].label(config{flows: 8}), "8 browsers") {
		t.Errorf("label %q", scenarios[6].label(config{flows: 8}))
	}
}
