package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse-id/gatehouse/login/password"
)

// msgBusyPage is what the sign-in form says when the password hasher is
// overloaded: the server's state, not the user's mistake.
const msgBusyPage = "We are handling a lot of sign-ins right now. Please try again in a moment."

// TestSignInOverload: with one hashing slot and a 50 ms bound on the wait for
// it, sign-ins that find the hasher overloaded are answered 503 with
// Retry-After and the sign-in form again, saying to try again in a moment —
// never a 500, never "invalid", and never counted against the address, so
// no flood can lock an account; on every backend.
func TestSignInOverload(t *testing.T) {
	for _, backend := range backends {
		t.Run(backend, func(t *testing.T) {
			ts := startServer(t, backend, map[string]string{
				"GATEHOUSE_PASSWORD_HASH_CONCURRENCY": "1",
				"GATEHOUSE_PASSWORD_HASH_MAX_WAIT":    "50ms",
				"GATEHOUSE_METRICS_ADDR":              "127.0.0.1:0",
			})
			app := ts.createClient("--name", "App", "--redirect-uri", redirectA)
			ts.createUser("grace@example.com", testPassword)
			r := newRP(t, ts, app)
			t.Run("slot taken", func(t *testing.T) { testSignInSlotTaken(t, ts, r) })
			t.Run("admin API", func(t *testing.T) { testAdminAPIBusy(t, ts) })
			t.Run("flood", func(t *testing.T) { testSignInFlood(t, ts, r) })
		})
	}
}

// testSignInSlotTaken holds the only hashing slot while sign-ins arrive:
// each waits the 50 ms and is refused as busy, with a right or a wrong
// password, for an address with or without an account — the same answer, so
// overload tells nothing about accounts. More refusals than the lockout
// threshold (5) count nothing: afterwards four wrong passwords are still
// "invalid", not "locked", and the right one signs in.
func testSignInSlotTaken(t *testing.T, ts *testServer, r *rp) {
	_, release, err := ts.app.hasher.Reserve(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	b := newBrowser(t, ts.issuer)
	attempts := []struct{ email, password string }{
		{"grace@example.com", testPassword},
		{"grace@example.com", "Wrong-Passw0rd"},
		{"nobody@example.com", "Wrong-Passw0rd"},
	}
	const refusals = 8
	for i := range refusals {
		a := attempts[i%len(attempts)]
		p := b.submit(b.get(r.authURL().url), map[string]string{"email": a.email, "password": a.password})
		expectBusyForm(t, p.status, p.header, p.body, a.email)
	}
	release()

	for range 4 {
		p := b.submit(b.get(r.authURL().url), map[string]string{"email": "grace@example.com", "password": "Wrong-Passw0rd"})
		if p.status != http.StatusBadRequest || !strings.Contains(p.body, "Invalid email or password.") {
			t.Fatalf("wrong password after the busy refusals: status %d (the refusals must not count)\n%s", p.status, p.body)
		}
	}
	r.signIn(newBrowser(t, ts.issuer), "grace@example.com", testPassword)

	fams := scrape(t, ts)
	if n, _ := metricSum(fams, "gatehouse_signins_total", map[string]string{"outcome": "busy"}); n != refusals {
		t.Errorf("gatehouse_signins_total{outcome=busy} = %v, want %d", n, refusals)
	}
	if n, _ := metricSum(fams, "gatehouse_password_hash_refused_total", map[string]string{"reason": "max_wait"}); n != refusals {
		t.Errorf("gatehouse_password_hash_refused_total{reason=max_wait} = %v, want %d", n, refusals)
	}
	if n, _ := metricSum(fams, "gatehouse_lockouts_total", nil); n != 0 {
		t.Errorf("gatehouse_lockouts_total = %v after busy refusals", n)
	}
}

// testAdminAPIBusy: an administrator setting a password while the hasher is
// overloaded gets 503 with Retry-After (a state of the server, worth a
// retry), not a 500, and nothing changes.
func testAdminAPIBusy(t *testing.T, ts *testServer) {
	ops := ts.createClient("--name", "ops", "--grant-types", "client_credentials", "--allowed-scopes", "gatehouse:admin")
	tok := ccToken(t, ts, ops, "gatehouse:admin")
	_, release, err := ts.app.hasher.Reserve(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	r := apiCall(t, ts, tok, "POST", "/users", `{"email":"ivan@example.com","name":"Ivan","password":"Correct-Horse-8"}`)
	release()
	wantProblem(t, "create a user while the hasher is busy", r, http.StatusServiceUnavailable, "unavailable")
	if s, err := strconv.Atoi(r.header.Get("Retry-After")); err != nil || s < 1 {
		t.Errorf("Retry-After %q", r.header.Get("Retry-After"))
	}
	if r := apiCall(t, ts, tok, "GET", "/users?email=ivan@example.com", ""); len(r.body["items"].([]any)) != 0 {
		t.Errorf("the refused creation left a user: %v", r.body)
	}
	if r := apiCall(t, ts, tok, "POST", "/users", `{"email":"ivan@example.com","name":"Ivan","password":"Correct-Horse-8"}`); r.status != http.StatusCreated {
		t.Errorf("create once the hasher is free: %d %v", r.status, r.body)
	}
}

// testSignInFlood: 16 browsers submit the form at once. One hash at a time,
// each far longer than 50 ms / 15, so some are refused as busy while the
// first in line signs in; every answer is one of the two.
func testSignInFlood(t *testing.T, ts *testServer, r *rp) {
	const browsers = 16
	before, _ := metricSum(scrape(t, ts), "gatehouse_signins_total", map[string]string{"outcome": "busy"})
	// Every browser first gets its form, so that the posts leave together.
	type post struct {
		b   *browser
		req *http.Request
	}
	posts := make([]post, browsers)
	for i := range posts {
		b := newBrowser(t, ts.issuer)
		p := b.get(r.authURL().url)
		action, values := parseForm(t, p)
		values.Set("email", "grace@example.com")
		values.Set("password", testPassword)
		target, err := p.url.Parse(action)
		if err != nil {
			t.Fatal(err)
		}
		req, err := http.NewRequest(http.MethodPost, target.String(), strings.NewReader(values.Encode()))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Origin", ts.issuer)
		posts[i] = post{b, req}
	}
	type answer struct {
		status int
		header http.Header
		body   string
		err    error
	}
	answers := make([]answer, browsers)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i, p := range posts {
		wg.Go(func() {
			<-start
			resp, err := p.b.client.Do(p.req)
			if err != nil {
				answers[i].err = err
				return
			}
			defer resp.Body.Close()
			body, err := io.ReadAll(resp.Body)
			answers[i] = answer{status: resp.StatusCode, header: resp.Header, body: string(body), err: err}
		})
	}
	close(start)
	wg.Wait()

	var signedIn, busy int
	for _, a := range answers {
		if a.err != nil {
			t.Fatalf("sign-in: %v", a.err)
		}
		switch {
		case a.status == http.StatusServiceUnavailable:
			expectBusyForm(t, a.status, a.header, a.body, "grace@example.com")
			busy++
		case a.status >= 300 && a.status < 400 && strings.HasPrefix(a.header.Get("Location"), redirectA) &&
			strings.Contains(a.header.Get("Location"), "code="):
			signedIn++
		default:
			t.Fatalf("sign-in in a flood: status %d location %q, want a code or 503\n%s", a.status, a.header.Get("Location"), a.body)
		}
	}
	t.Logf("%d signed in, %d refused as busy", signedIn, busy)
	if signedIn == 0 || busy == 0 {
		t.Errorf("%d signed in and %d refused as busy; with one slot and a 50 ms wait both must happen", signedIn, busy)
	}
	fams := scrape(t, ts)
	if n, _ := metricSum(fams, "gatehouse_signins_total", map[string]string{"outcome": "busy"}); n-before != float64(busy) {
		t.Errorf("gatehouse_signins_total{outcome=busy} rose by %v, want %d", n-before, busy)
	}
	if n, _ := metricSum(fams, "gatehouse_lockouts_total", nil); n != 0 {
		t.Errorf("gatehouse_lockouts_total = %v after a flood of right passwords", n)
	}
	r.signIn(newBrowser(t, ts.issuer), "grace@example.com", testPassword)
}

// expectBusyForm checks a busy refusal: 503, a Retry-After in seconds, and
// the sign-in form again with the address typed and a message that blames
// no one.
func expectBusyForm(t *testing.T, status int, header http.Header, body, email string) {
	t.Helper()
	if status != http.StatusServiceUnavailable {
		t.Fatalf("status %d, want 503 (busy)\n%s", status, body)
	}
	if s, err := strconv.Atoi(header.Get("Retry-After")); err != nil || s < 1 {
		t.Errorf("Retry-After %q, want a number of seconds", header.Get("Retry-After"))
	}
	if !strings.Contains(body, msgBusyPage) || !strings.Contains(body, `name="password"`) || !strings.Contains(body, `value="`+email+`"`) {
		t.Errorf("busy answer is not the sign-in form with the message and %s:\n%s", email, body)
	}
	for _, blame := range []string{"Invalid email or password", "locked", "Too many attempts"} {
		if strings.Contains(body, blame) {
			t.Errorf("busy answer says %q:\n%s", blame, body)
		}
	}
}

// TestLowPriorityHashing: with GATEHOUSE_PASSWORD_HASH_PRIORITY=low the
// server hashes on one thread per processor, each of the lowest priority,
// and gives the Go scheduler that many more processors only while it hashes
// (a second after, the extra processors go); the sign-in form works as ever.
func TestLowPriorityHashing(t *testing.T) {
	if !password.LowPrioritySupported {
		t.Skip("thread priorities are Linux only")
	}
	procs := runtime.GOMAXPROCS(0)
	t.Cleanup(func() { // runs after the server's own cleanup
		if got := runtime.GOMAXPROCS(0); got != procs {
			t.Errorf("GOMAXPROCS %d after the server stopped, want %d again", got, procs)
		}
	})
	ts := startServer(t, "sqlite", map[string]string{"GATEHOUSE_PASSWORD_HASH_PRIORITY": "low"})
	if got := ts.app.hasher.Concurrency(); got != procs {
		t.Errorf("%d hashing slots, want one per processor (%d)", got, procs)
	}
	if got := runtime.GOMAXPROCS(0); got != procs {
		t.Errorf("GOMAXPROCS %d before any hash, want %d", got, procs)
	}
	app := ts.createClient("--name", "App", "--redirect-uri", redirectA)
	ts.createUser("heidi@example.com", testPassword)
	r := newRP(t, ts, app)
	r.signIn(newBrowser(t, ts.issuer), "heidi@example.com", testPassword)
	b := newBrowser(t, ts.issuer)
	p := b.submit(b.get(r.authURL().url), map[string]string{"email": "heidi@example.com", "password": "Wrong-Passw0rd"})
	if p.status != http.StatusBadRequest || !strings.Contains(p.body, "Invalid email or password.") {
		t.Errorf("wrong password: status %d", p.status)
	}
	// The server's hashes ran on its low-priority threads.
	threads := ts.app.hasher.LowPriorityThreads()
	if len(threads) != procs {
		t.Fatalf("%d low-priority hashing threads, want %d", len(threads), procs)
	}
	for _, tid := range threads {
		stat, err := os.ReadFile(fmt.Sprintf("/proc/self/task/%d/stat", tid))
		if err != nil {
			t.Fatal(err)
		}
		// Field 19 is the niceness; the command name (field 2) may hold
		// spaces, so count from the ')' that ends it.
		fields := strings.Fields(string(stat[bytes.LastIndexByte(stat, ')')+1:]))
		if nice := fields[16]; nice != "19" {
			t.Errorf("hashing thread %d has niceness %s, want 19", tid, nice)
		}
	}
	// The extra processors go once hashing has been idle for a second
	// (bounded wait: the linger is a timer, nothing to synchronise on).
	for deadline := time.Now().Add(10 * time.Second); runtime.GOMAXPROCS(0) != procs; {
		if time.Now().After(deadline) {
			t.Fatalf("GOMAXPROCS %d ten seconds after the last hash, want %d", runtime.GOMAXPROCS(0), procs)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
