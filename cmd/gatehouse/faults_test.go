package main

// Fault tests ("keep it true in CI"): a real `gatehouse serve` killed with
// SIGKILL under load, a PostgreSQL restart under load, a Redis outage. They
// are bounded in requests and time, print their counts in a fixed format
// (t.Log and stdout; `go test -v -run 'Kill|Restart|Redis' ./cmd/gatehouse`
// shows them) and make no timing assertions. -short skips them.

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/gatehouse-id/gatehouse/storage/postgres/pgtest"
)

const (
	loadPassword = "Load-Passw0rd-42"
	// A rotation the server committed but whose answer a fault swallowed is
	// presented again once the server is back. As documented, within the
	// reuse grace it gets the same successor; after it, the grant is revoked
	// as a replay. The fault tests set the grace above their longest outage so
	// a committed-but-unanswered rotation is judged as the client sees it.
	faultReuseGrace = "5m"
)

// killLedger is what the load workers were told: the writes the server
// acknowledged, the registrations left without an answer, and any answer
// that should not have been given.
type killLedger struct {
	mu         sync.Mutex
	users      []string // registrations answered with success
	unanswered []string // registrations posted without an answer
	grants     []*liveGrant
	rotations  int
	inFlight   int // requests the kill left without an answer
	unexpected []error
}

// liveGrant is one code redemption that returned 200, at its latest
// acknowledged refresh token.
type liveGrant struct {
	email   string
	refresh string
}

func (l *killLedger) add(f func(l *killLedger)) {
	l.mu.Lock()
	defer l.mu.Unlock()
	f(l)
}

func (l *killLedger) grantCount() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.grants)
}

// TestKillUnderLoad: SIGKILL `gatehouse serve` while workers register users,
// sign in, redeem codes and rotate refresh tokens; start it again on the same
// store. Every write the server acknowledged is there, whole: every user
// whose registration succeeded signs in, every grant whose code redemption
// returned 200 is live at the last refresh token it returned, and that token
// is spent once (presenting it again is the documented grace re-issue of the
// same successor, never a second one). A registration that got no answer
// either exists and signs in, or does not exist.
func TestKillUnderLoad(t *testing.T) {
	if testing.Short() {
		t.Skip("fault test under load; skipped with -short")
	}
	for _, backend := range backends {
		t.Run(backend, func(t *testing.T) { testKillUnderLoad(t, backend) })
	}
}

func testKillUnderLoad(t *testing.T, backend string) {
	const (
		workers    = 4
		killAfter  = 24               // acknowledged grants before the kill
		maxIters   = 40               // per worker: the load is bounded even if the kill never comes
		loadWindow = 30 * time.Second // the kill comes after killAfter grants or this long
	)
	vars := map[string]string{
		"GATEHOUSE_DATA_DIR":            t.TempDir(),
		"GATEHOUSE_LOG_LEVEL":           "warn",
		"GATEHOUSE_PASSWORD_HASHER":     "argon2id",
		"GATEHOUSE_RATE_LOGIN_EMAIL":    "1000/1m",
		"GATEHOUSE_RATE_LOGIN_IP":       "100000/1m",
		"GATEHOUSE_RATE_REGISTER_IP":    "100000/1h",
		"GATEHOUSE_REFRESH_REUSE_GRACE": faultReuseGrace,
		// Overload is not what this test is about: hashes at normal
		// priority, and a long wait for a slot, so that other test
		// binaries on the same cores cannot turn a sign-in into a 503.
		"GATEHOUSE_PASSWORD_HASH_PRIORITY": "normal",
		"GATEHOUSE_PASSWORD_HASH_MAX_WAIT": "1m",
	}
	if backend == "postgres" {
		vars["DATABASE_URL"] = pgtest.URL(t)
		vars["GATEHOUSE_SECRET"] = testSecret
	}
	srv := newGatehouseProcess(t, vars)
	admin := &testServer{t: t, issuer: srv.issuer, env: srv.env} // the CLI on the same store
	client := admin.createClient("--name", "Load app", "--redirect-uri", redirectA)
	srv.start()
	rp := newLoadRP(srv.issuer, client)

	led := &killLedger{}
	ctx, cancel := context.WithTimeout(context.Background(), loadWindow+30*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	run := randomString(t)[:8]
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range maxIters {
				email := strings.ToLower(fmt.Sprintf("load-%s-%d-%d@example.com", run, w, i))
				if err := killIteration(ctx, rp, led, email); err != nil {
					led.add(func(l *killLedger) {
						switch {
						case !errors.Is(err, errNoResponse): // after the kill, no answer is expected
							l.unexpected = append(l.unexpected, err)
						case !errors.Is(err, syscall.ECONNREFUSED): // not merely sent after it
							l.inFlight++
						}
					})
					return
				}
			}
		}()
	}

	// Kill mid-load: once enough writes were acknowledged, with every worker busy.
	deadline := time.Now().Add(loadWindow)
	for led.grantCount() < killAfter && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond) // polling the ledger, not waiting for an effect
	}
	srv.kill()
	wg.Wait()
	for _, err := range led.unexpected {
		t.Errorf("answer during the load: %v", err)
	}
	if len(led.grants) == 0 || len(led.users) == 0 {
		t.Fatalf("nothing was acknowledged before the kill (users=%d grants=%d): the test did not test anything", len(led.users), len(led.grants))
	}

	rp.dropConnections()
	srv.start()
	ctx, cancel = context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	lost := 0
	for _, email := range led.users {
		if err := signInAndRedeem(ctx, rp, email); err != nil {
			lost++
			t.Errorf("acknowledged registration of %s lost: %v", email, err)
		}
	}
	present, absent := 0, 0
	for _, email := range led.unanswered {
		res, err := rp.newBrowser().signIn(ctx, email, loadPassword)
		switch {
		case err == nil:
			present++
		case res.page != nil && res.page.status == http.StatusBadRequest && strings.Contains(res.page.body, "Invalid email or password."):
			absent++
		default:
			t.Errorf("registration of %s, unanswered at the kill, is neither there nor absent: %v", email, err)
		}
	}
	for _, g := range led.grants {
		if err := spendOnce(ctx, rp, g.refresh); err != nil {
			lost++
			t.Errorf("acknowledged grant of %s lost: %v", g.email, err)
		}
	}
	acked := len(led.users) + len(led.grants)
	line := fmt.Sprintf("faults[%s]: acknowledged=%d (users=%d, grants=%d, rotations=%d), verified=%d, lost=%d, in-flight-at-kill=%d, unanswered-registrations=%d (present=%d, absent=%d)",
		backend, acked, len(led.users), len(led.grants), led.rotations, acked-lost, lost, led.inFlight, len(led.unanswered), present, absent)
	t.Log(line)
	fmt.Println(line)
}

// killIteration is one round of a load worker: register (a code flow through
// the registration form), redeem the code, rotate the refresh token twice,
// sign in again in a new browser, redeem, rotate once.
func killIteration(ctx context.Context, rp *loadRP, led *killLedger, email string) error {
	res, sent, err := rp.newBrowser().register(ctx, "Load User", email, loadPassword)
	led.add(func(l *killLedger) {
		switch {
		case res.accepted:
			l.users = append(l.users, email)
		case sent && errors.Is(err, errNoResponse):
			l.unanswered = append(l.unanswered, email)
		}
	})
	if err != nil {
		return fmt.Errorf("register %s: %w", email, err)
	}
	if err := redeemAndRotate(ctx, rp, led, email, res, 2); err != nil {
		return err
	}
	if res, err = rp.newBrowser().signIn(ctx, email, loadPassword); err != nil {
		return fmt.Errorf("sign in %s: %w", email, err)
	}
	return redeemAndRotate(ctx, rp, led, email, res, 1)
}

func redeemAndRotate(ctx context.Context, rp *loadRP, led *killLedger, email string, res signInResult, rotations int) error {
	tok, err := rp.redeem(ctx, res.code, res.pc.verifier)
	if err != nil {
		return err
	}
	if tok.status != http.StatusOK || tok.refreshToken == "" {
		return fmt.Errorf("redeem code of %s: %s", email, tok)
	}
	g := &liveGrant{email: email, refresh: tok.refreshToken}
	led.add(func(l *killLedger) { l.grants = append(l.grants, g) })
	for range rotations {
		tok, err := rp.refresh(ctx, g.refresh)
		if err != nil {
			return err
		}
		if tok.status != http.StatusOK || tok.refreshToken == "" || tok.refreshToken == g.refresh {
			return fmt.Errorf("rotate refresh token of %s: %s", email, tok)
		}
		led.add(func(l *killLedger) { g.refresh = tok.refreshToken; l.rotations++ })
	}
	return nil
}

// signInAndRedeem signs email in through the form and redeems the code.
func signInAndRedeem(ctx context.Context, rp *loadRP, email string) error {
	res, err := rp.newBrowser().signIn(ctx, email, loadPassword)
	if err != nil {
		return err
	}
	tok, err := rp.redeem(ctx, res.code, res.pc.verifier)
	if err != nil {
		return err
	}
	if tok.status != http.StatusOK {
		return fmt.Errorf("redeem: %s", tok)
	}
	return nil
}

// spendOnce presents refresh twice and the successor once: the first answer
// is a successor, the second the same successor (grace re-issue, not a fork
// of the grant), and the successor rotates in turn.
func spendOnce(ctx context.Context, rp *loadRP, refresh string) error {
	first, err := rp.refresh(ctx, refresh)
	if err != nil {
		return err
	}
	if first.status != http.StatusOK || first.refreshToken == "" {
		return fmt.Errorf("refresh with the last acknowledged token: %s", first)
	}
	again, err := rp.refresh(ctx, refresh)
	if err != nil {
		return err
	}
	if again.status != http.StatusOK || again.refreshToken != first.refreshToken {
		return fmt.Errorf("the same token presented again: %s, want the same successor (grace re-issue)", again)
	}
	next, err := rp.refresh(ctx, first.refreshToken)
	if err != nil {
		return err
	}
	if next.status != http.StatusOK {
		return fmt.Errorf("refresh with the successor: %s", next)
	}
	return nil
}

// tokenLog records every token endpoint answer of a load: when, which
// worker, what.
type tokenLog struct {
	mu      sync.Mutex
	answers []tokenAnswer
}

type tokenAnswer struct {
	at     time.Time
	worker int
	status int
	code   string // OAuth error
}

func (l *tokenLog) record(worker int, r tokenReply) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.answers = append(l.answers, tokenAnswer{at: time.Now(), worker: worker, status: r.status, code: r.errCode})
}

// count returns how many answers at or after since satisfy ok.
func (l *tokenLog) count(since time.Time, ok func(tokenAnswer) bool) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, a := range l.answers {
		if !a.at.Before(since) && ok(a) {
			n++
		}
	}
	return n
}

// eachWorker says whether every one of workers got at least n answers at or
// after since that satisfy ok.
func (l *tokenLog) eachWorker(workers, n int, since time.Time, ok func(tokenAnswer) bool) bool {
	for w := range workers {
		if l.count(since, func(a tokenAnswer) bool { return a.worker == w && ok(a) }) < n {
			return false
		}
	}
	return true
}

// first returns the time of the first answer at or after since that satisfies ok.
func (l *tokenLog) first(since time.Time, ok func(tokenAnswer) bool) (time.Time, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, a := range l.answers {
		if !a.at.Before(since) && ok(a) {
			return a.at, true
		}
	}
	return time.Time{}, false
}

func anyAnswer(tokenAnswer) bool        { return true }
func isOK(a tokenAnswer) bool           { return a.status == http.StatusOK }
func is5xx(a tokenAnswer) bool          { return a.status >= 500 }
func isInvalidGrant(a tokenAnswer) bool { return a.code == "invalid_grant" }

// TestPostgresRestartUnderLoad restarts the database (a throwaway cluster)
// while workers rotate refresh tokens and redeem codes on a running Gatehouse.
// While it is down the token endpoint answers 5xx and /readyz 503 — never
// invalid_grant for a grant or code that is valid — and when it is back the
// very tokens and codes that failed work, with no restart of Gatehouse.
func TestPostgresRestartUnderLoad(t *testing.T) {
	if testing.Short() {
		t.Skip("fault test under load; skipped with -short")
	}
	const (
		chains  = 3          // refresh-rotation workers; one more redeems codes
		workers = chains + 1 // worker chains is the code redeemer
		warmup  = 3          // successes per worker before the stop
		outage  = 2          // 5xx per worker before the start
		after   = 3          // successes per worker after the start
	)
	pg := startPGCluster(t)
	ts := startServer(t, "sqlite", map[string]string{ // DATABASE_URL selects PostgreSQL
		"DATABASE_URL":                  pg.url(),
		"GATEHOUSE_SECRET":              testSecret,
		"GATEHOUSE_REFRESH_REUSE_GRACE": faultReuseGrace,
	})
	client := ts.createClient("--name", "Load app", "--redirect-uri", redirectA)
	ts.createUser("carol@example.com", testPassword)
	rp := newLoadRP(ts.issuer, client)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()

	// One signed-in browser mints every code (SSO: no form after the first).
	sso := rp.newBrowser()
	first, err := sso.signIn(ctx, "carol@example.com", testPassword)
	if err != nil {
		t.Fatalf("sign in: %v", err)
	}
	type minted struct{ code, verifier string }
	mint := func() (minted, error) {
		pc, p, err := sso.authorize(ctx)
		if err != nil {
			return minted{}, err
		}
		code, err := sso.code(ctx, pc, p)
		return minted{code, pc.verifier}, err
	}
	start := make([]string, chains)
	for i := range start {
		m := minted{first.code, first.pc.verifier}
		if i > 0 {
			if m, err = mint(); err != nil {
				t.Fatalf("mint a code: %v", err)
			}
		}
		tok, err := rp.redeem(ctx, m.code, m.verifier)
		if err != nil || tok.status != http.StatusOK {
			t.Fatalf("redeem: %v %v", tok, err)
		}
		start[i] = tok.refreshToken
	}

	tokens := &tokenLog{}
	var (
		stop       atomic.Bool
		wg         sync.WaitGroup
		mu         sync.Mutex
		unexpected []string
	)
	fail := func(format string, args ...any) {
		mu.Lock()
		unexpected = append(unexpected, fmt.Sprintf(format, args...))
		mu.Unlock()
	}
	// pace spaces the retries of a failed request; it waits for nothing.
	pace := func() { time.Sleep(20 * time.Millisecond) }
	for w := range chains {
		wg.Add(1)
		go func() {
			defer wg.Done()
			latest := start[w]
			for !stop.Load() && ctx.Err() == nil {
				tok, err := rp.refresh(ctx, latest)
				if err != nil {
					fail("refresh: %v", err)
					return
				}
				tokens.record(w, tok)
				switch {
				case tok.status == http.StatusOK:
					latest = tok.refreshToken
				case tok.status >= 500:
					pace() // the same token again: it is still valid
				default:
					fail("refresh of a valid token answered %s", tok)
					return
				}
			}
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		// It keeps two codes in hand, minting while the database is up, so
		// there is always a code to redeem across the restart.
		var held []minted
		for !stop.Load() && ctx.Err() == nil {
			for len(held) < 2 {
				m, err := mint()
				if err != nil {
					break // the database is down: redeem what is held
				}
				held = append(held, m)
			}
			if len(held) == 0 {
				pace()
				continue
			}
			tok, err := rp.redeem(ctx, held[0].code, held[0].verifier)
			if err != nil {
				fail("redeem: %v", err)
				return
			}
			tokens.record(chains, tok)
			switch {
			case tok.status == http.StatusOK:
				held = held[1:]
			case tok.status >= 500:
				pace() // the same code again: it is still valid
			default:
				fail("redemption of a valid code answered %s", tok)
				return
			}
		}
	}()
	// waitFor polls cond (the workers' progress) until a deadline.
	waitFor := func(what string, d time.Duration, cond func() bool) {
		t.Helper()
		deadline := time.Now().Add(d)
		for !cond() {
			if time.Now().After(deadline) || ctx.Err() != nil {
				stop.Store(true)
				wg.Wait()
				t.Fatalf("%s: not within %s (unexpected answers: %v)", what, d, unexpected)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	waitFor("warm-up", 30*time.Second, func() bool { return tokens.eachWorker(workers, warmup, time.Time{}, isOK) })

	stopping := time.Now()
	pg.stop()
	readyz503 := 0
	waitFor("/readyz 503 and 5xx to every worker while the database is down", 20*time.Second, func() bool {
		if status, _, _ := bearerGet(t, ts.issuer+"/readyz", ""); status == http.StatusServiceUnavailable {
			readyz503++
		} else {
			t.Errorf("/readyz while the database is down: %d, want 503", status)
		}
		return readyz503 > 0 && tokens.eachWorker(workers, outage, stopping, is5xx)
	})
	starting := time.Now()
	pg.start()
	dbStart := time.Since(starting)
	waitFor("recovery", 30*time.Second, func() bool { return tokens.eachWorker(workers, after, starting, isOK) })
	stop.Store(true)
	wg.Wait()
	for _, u := range unexpected {
		t.Error(u)
	}
	waitReady(t, ts.issuer)

	invalid := tokens.count(time.Time{}, isInvalidGrant)
	if invalid != 0 {
		t.Errorf("%d invalid_grant answers for valid grants and codes", invalid)
	}
	// Every answer between the stop and the start is a 5xx (or a 200 for a
	// request the database answered before it stopped).
	if n := tokens.count(stopping, func(a tokenAnswer) bool { return a.at.Before(starting) && a.status != http.StatusOK && a.status < 500 }); n != 0 {
		t.Errorf("%d answers while the database was down were neither 200 nor 5xx", n)
	}
	firstOK, _ := tokens.first(starting, isOK)
	line := fmt.Sprintf("pg-restart: requests=%d, 5xx=%d, invalid_grant=%d, recovered_after=%dms (db start %dms, 200 after recovery=%d, readyz 503 seen %d times)",
		tokens.count(time.Time{}, anyAnswer), tokens.count(stopping, is5xx), invalid, firstOK.Sub(starting).Milliseconds(),
		dbStart.Milliseconds(), tokens.count(starting, isOK), readyz503)
	t.Log(line)
	fmt.Println(line)
}

// TestRedisOutageFallsBackOnce cuts the connection to Redis (through a proxy:
// the shared Redis keeps running) under a real server. Sign-in still works
// and is still rate-limited — by the in-process fallback — and the switch to
// the fallback is logged exactly once however many checks fail; when Redis is
// back, that is logged once too.
func TestRedisOutageFallsBackOnce(t *testing.T) {
	if testing.Short() {
		t.Skip("fault test; skipped with -short")
	}
	_, redisAddr := requireRedis(t)
	proxy := startTCPProxy(t, redisAddr)
	ln := listenLoopback(t)
	issuer := "http://" + ln.Addr().String()
	log := &syncBuffer{}
	ts := startServerOn(t, ln, serverVars(t, issuer, map[string]string{
		"REDIS_URL":                  "redis://" + proxy.addr() + "/0",
		"GATEHOUSE_RATE_LOGIN_EMAIL": "3/1h",
		"GATEHOUSE_LOG_LEVEL":        "info",
	}), log)
	client := ts.createClient("--name", "App", "--redirect-uri", redirectA)
	ts.createUser("carol@example.com", testPassword)
	r := newRP(t, ts, client)
	attempt := func(email, password string) *page {
		b := newBrowser(t, ts.issuer)
		return b.submit(b.get(r.authURL(oauth2.SetAuthURLParam("prompt", "login")).url), map[string]string{"email": email, "password": password})
	}
	const down = "using the in-process fallback"
	const back = "shared limiter is back"

	proxy.cut()
	email := "limited-" + strings.ToLower(randomString(t)[:8]) + "@example.com"
	for i := 1; i <= 3; i++ {
		if p := attempt(email, "Wrong-Passw0rd"); p.status != http.StatusBadRequest || !strings.Contains(p.body, "Invalid email or password.") {
			t.Fatalf("attempt %d of 3/1h during the Redis outage: status %d, want 400 Invalid email or password", i, p.status)
		}
	}
	if p := attempt(email, "Wrong-Passw0rd"); p.status != http.StatusTooManyRequests || p.header.Get("Retry-After") == "" {
		t.Errorf("4th attempt of 3/1h during the Redis outage: status %d Retry-After %q, want 429 with Retry-After", p.status, p.header.Get("Retry-After"))
	}
	r.signIn(newBrowser(t, ts.issuer), "carol@example.com", testPassword) // sign-in still works
	if n := strings.Count(log.String(), down); n != 1 {
		t.Errorf("the fallback was logged %d times during one outage, want once:\n%s", n, grepLines(log.String(), "rate limiter"))
	}

	proxy.restore()
	// Recovery is seen on the next check that reaches Redis; go-redis may
	// fail a few more while it reconnects.
	deadline := time.Now().Add(15 * time.Second)
	for !strings.Contains(log.String(), back) && time.Now().Before(deadline) {
		attempt("probe-"+strings.ToLower(randomString(t)[:8])+"@example.com", "Wrong-Passw0rd")
	}
	if n := strings.Count(log.String(), back); n != 1 {
		t.Errorf("recovery was logged %d times, want once:\n%s", n, grepLines(log.String(), "rate limiter"))
	}
	if n := strings.Count(log.String(), down); n != 1 {
		t.Errorf("the fallback was logged %d times in all, want once:\n%s", n, grepLines(log.String(), "rate limiter"))
	}
	line := fmt.Sprintf("redis-outage: fallback logged=%d, recovery logged=%d",
		strings.Count(log.String(), down), strings.Count(log.String(), back))
	t.Log(line)
	fmt.Println(line)
}

// grepLines returns the lines of s that contain sub.
func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
