package main

// Benchmarks of the hot endpoints against a real in-process server over
// loopback HTTP, on every backend (PostgreSQL is skipped when unreachable).
// They only run with -bench; a plain `go test` compiles them and runs none of
// them. Speed targets live in bench/README.md as measured numbers, never as
// timed assertions in tests.
//
//	go test ./cmd/gatehouse -run '^$' -bench . -benchtime 2s
//
// Each benchmark starts one server per backend and reuses it for every b.N
// round. Allocations (-benchmem / ReportAllocs) are process-wide, so they count
// the client and the server side of each request together.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"github.com/gatehouse-id/gatehouse/storage"
	"io"
	"log/slog"
	"math"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/crypto/argon2"
	"golang.org/x/net/html"
	"golang.org/x/oauth2"

	"github.com/gatehouse-id/gatehouse/login/password"
)

// benchParallelism multiplies GOMAXPROCS for b.RunParallel: a request over
// loopback spends most of its time waiting, so one client per core would
// leave the server idle.
const benchParallelism = 4

// benchServer is a test server (startServer, the wiring of `gatehouse
// serve`) with an HTTP client sized for parallel benchmarks.
type benchServer struct {
	*testServer
	hc *http.Client // keep-alive client sized for parallel benchmarks
}

func startBenchServer(b *testing.B, backend string) *benchServer {
	b.Helper()
	extra := map[string]string{
		// The sign-in benchmarks sign in thousands of times a minute, all
		// from 127.0.0.1.
		"GATEHOUSE_RATE_LOGIN_IP":    "1000000/1m",
		"GATEHOUSE_RATE_LOGIN_EMAIL": "1000000/1m",
		// serve's default, which the tests' servers do not use (serverVars).
		"GATEHOUSE_PASSWORD_HASH_PRIORITY": settingDefault("password-hash-priority"),
	}
	// GATEHOUSE_SIGNING_ALG=ES256 in the environment compares the
	// algorithms; GATEHOUSE_PASSWORD_HASH_CONCURRENCY and _PRIORITY the ways
	// of sharing the processors with password hashing.
	for _, k := range []string{"GATEHOUSE_SIGNING_ALG", "GATEHOUSE_PASSWORD_HASH_CONCURRENCY", "GATEHOUSE_PASSWORD_HASH_PRIORITY"} {
		if v := os.Getenv(k); v != "" {
			extra[k] = v
		}
	}
	// As `gatehouse serve` does: zitadel logs through the default logger.
	prevLog := slog.Default()
	slog.SetDefault(slog.New(slog.NewTextHandler(testLogWriter{b}, &slog.HandlerOptions{Level: slog.LevelWarn})))
	b.Cleanup(func() { slog.SetDefault(prevLog) })
	ts := startServer(b, backend, extra)
	tr := &http.Transport{
		MaxIdleConns:        1024,
		MaxIdleConnsPerHost: 1024,
		IdleConnTimeout:     30 * time.Second,
		DisableCompression:  true,
	}
	b.Cleanup(tr.CloseIdleConnections) // runs before the server's own cleanup
	return &benchServer{testServer: ts, hc: &http.Client{Transport: tr, Timeout: 30 * time.Second}}
}

// forEachBackend runs bench on a fresh server per backend. bench does its
// setup once and registers its measured loops with b.Run; only those leaves
// are re-run with growing b.N.
func forEachBackend(b *testing.B, bench func(b *testing.B, ts *benchServer)) {
	for _, backend := range backends {
		b.Run(backend, func(b *testing.B) {
			bench(b, startBenchServer(b, backend))
		})
	}
}

// call sends req and checks the status; it returns the body.
func (ts *benchServer) call(req *http.Request, want int) ([]byte, error) {
	resp, err := ts.hc.Do(req)
	if err != nil {
		return nil, err
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != want {
		return body, fmt.Errorf("%s %s: status %d: %.200s", req.Method, req.URL.Path, resp.StatusCode, body)
	}
	return body, nil
}

// request builds one request; a fresh one per iteration, since a body is read once.
type request struct {
	method, url, body, auth string
}

func (r request) build() *http.Request {
	var body io.Reader
	if r.body != "" {
		body = strings.NewReader(r.body)
	}
	req, err := http.NewRequest(r.method, r.url, body)
	if err != nil {
		panic(err) // static inputs
	}
	if r.body != "" {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	if r.auth != "" {
		req.Header.Set("Authorization", r.auth)
	}
	return req
}

func basicAuth(c createdClient) string {
	req := http.Request{Header: http.Header{}}
	req.SetBasicAuth(url.QueryEscape(c.ClientID), url.QueryEscape(c.ClientSecret))
	return req.Header.Get("Authorization")
}

// errorOnce reports the first failure of a parallel loop (FailNow must not be
// called from RunParallel's goroutines) and counts the rest.
type errorOnce struct {
	once sync.Once
	n    atomic.Int64
}

func (e *errorOnce) report(b *testing.B, err error) {
	e.n.Add(1)
	e.once.Do(func() { b.Errorf("first failure: %v", err) })
}

func (e *errorOnce) done(b *testing.B) {
	if n := e.n.Load(); n > 0 {
		b.Errorf("%d of %d requests failed", n, b.N)
	}
}

// meter reports, next to ns/op, the request rate and the CPU time the whole
// process (client and server; not PostgreSQL) spent per request. CPU per
// request stays meaningful on a shared or noisy machine, where wall-clock
// rates swing with whatever else runs.
type meter struct {
	cpu   time.Duration
	cpuOK bool
	// db counts the store's statements (storage.StatementCounter).
	db     storage.StatementCounter
	dbFrom storage.StatementCounts
}

// startMeter is called right before the measured loop.
func (ts *benchServer) startMeter() meter {
	cpu, ok := processCPU()
	m := meter{cpu: cpu, cpuOK: ok}
	if c, ok := ts.app.store.(storage.StatementCounter); ok {
		m.db, m.dbFrom = c, c.Statements()
	}
	return m
}

// report adds req/s, the process's CPU per op and the database statements
// per op: db-reads/op (SELECTs), db-writes/op (statements that change rows)
// and db-tx/op (transactions, each a BEGIN and a COMMIT more on PostgreSQL).
// Background work (session touches, cleanup) counts too, as it would.
func (m meter) report(b *testing.B) {
	if s := b.Elapsed().Seconds(); s > 0 {
		b.ReportMetric(float64(b.N)/s, "req/s")
	}
	if cpu, ok := processCPU(); ok && m.cpuOK && cpu > m.cpu {
		b.ReportMetric(float64(cpu-m.cpu)/float64(b.N), "cpu-ns/op")
	}
	if m.db != nil && b.N > 0 {
		n := m.db.Statements()
		b.ReportMetric(float64(n.Reads-m.dbFrom.Reads)/float64(b.N), "db-reads/op")
		b.ReportMetric(float64(n.Writes-m.dbFrom.Writes)/float64(b.N), "db-writes/op")
		b.ReportMetric(float64(n.Transactions-m.dbFrom.Transactions)/float64(b.N), "db-tx/op")
	}
}

// processCPU is the user+system CPU time of this process from /proc/self/stat
// (Linux; ok is false elsewhere). The unit is USER_HZ, 100 per second for
// /proc on every Linux architecture: 10 ms resolution, fine over a benchmark.
func processCPU() (time.Duration, bool) {
	raw, err := os.ReadFile("/proc/self/stat")
	if err != nil {
		return 0, false
	}
	// The command name (field 2) is in parentheses and may contain spaces.
	i := bytes.LastIndexByte(raw, ')')
	if i < 0 || i+2 > len(raw) {
		return 0, false
	}
	f := strings.Fields(string(raw[i+2:])) // f[0] is field 3, so utime (14) is f[11]
	if len(f) < 13 {
		return 0, false
	}
	utime, err1 := strconv.ParseInt(f[11], 10, 64)
	stime, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, false
	}
	return time.Duration(utime+stime) * (time.Second / 100), true
}

// parallel measures throughput: b.N requests from GOMAXPROCS×benchParallelism
// concurrent clients, each checked for status want.
func (ts *benchServer) parallel(r request, want int) func(b *testing.B) {
	return func(b *testing.B) {
		b.ReportAllocs()
		b.SetParallelism(benchParallelism)
		var errs errorOnce
		m := ts.startMeter()
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if _, err := ts.call(r.build(), want); err != nil {
					errs.report(b, err)
				}
			}
		})
		b.StopTimer()
		m.report(b)
		errs.done(b)
	}
}

// serial measures latency: one request at a time.
func (ts *benchServer) serial(r request, want int) func(b *testing.B) {
	return func(b *testing.B) {
		b.ReportAllocs()
		m := ts.startMeter()
		for b.Loop() {
			if _, err := ts.call(r.build(), want); err != nil {
				b.Fatal(err)
			}
		}
		m.report(b)
	}
}

func BenchmarkDiscovery(b *testing.B) {
	forEachBackend(b, func(b *testing.B, ts *benchServer) {
		b.Run("parallel", ts.parallel(request{method: http.MethodGet, url: ts.issuer + "/.well-known/openid-configuration"}, http.StatusOK))
	})
}

func BenchmarkJWKS(b *testing.B) {
	forEachBackend(b, func(b *testing.B, ts *benchServer) {
		b.Run("parallel", ts.parallel(request{method: http.MethodGet, url: ts.issuer + "/keys"}, http.StatusOK))
	})
}

// clientCredentials is a token request of a client_credentials client.
func (ts *benchServer) clientCredentials(c createdClient) request {
	return request{
		method: http.MethodPost, url: ts.issuer + "/oauth/token",
		body: url.Values{"grant_type": {"client_credentials"}, "scope": {"api"}}.Encode(),
		auth: basicAuth(c),
	}
}

func BenchmarkClientCredentialsOpaque(b *testing.B) {
	forEachBackend(b, func(b *testing.B, ts *benchServer) {
		svc := ts.createClient("--name", "Bench service", "--grant-types", "client_credentials")
		r := ts.clientCredentials(svc)
		b.Run("serial", ts.serial(r, http.StatusOK))
		b.Run("parallel", ts.parallel(r, http.StatusOK))
	})
}

func BenchmarkClientCredentialsJWT(b *testing.B) {
	forEachBackend(b, func(b *testing.B, ts *benchServer) {
		svc := ts.createClient("--name", "Bench JWT service", "--grant-types", "client_credentials", "--access-token", "jwt")
		r := ts.clientCredentials(svc)
		body, err := ts.call(r.build(), http.StatusOK)
		if err != nil {
			b.Fatal(err)
		}
		var tok struct {
			AccessToken string `json:"access_token"`
		}
		if err := json.Unmarshal(body, &tok); err != nil || strings.Count(tok.AccessToken, ".") != 2 {
			b.Fatalf("client_credentials for a jwt client did not return a JWT: %s", body)
		}
		b.Run("serial", ts.serial(r, http.StatusOK))
		b.Run("parallel", ts.parallel(r, http.StatusOK))
	})
}

// tokenResponse is the part of a token response the benchmarks use.
type tokenResponse struct {
	AccessToken  string `json:"access_token"`
	RefreshToken string `json:"refresh_token"`
	IDToken      string `json:"id_token"`
}

// refreshChain is one sign-in whose refresh token is rotated over and over:
// every request presents the token the previous one returned.
type refreshChain struct {
	latest string
}

func (ts *benchServer) rotate(ch *refreshChain, auth string) error {
	r := request{
		method: http.MethodPost, url: ts.issuer + "/oauth/token",
		body: url.Values{"grant_type": {"refresh_token"}, "refresh_token": {ch.latest}}.Encode(),
		auth: auth,
	}
	body, err := ts.call(r.build(), http.StatusOK)
	if err != nil {
		return err
	}
	var tok tokenResponse
	if err := json.Unmarshal(body, &tok); err != nil {
		return err
	}
	if tok.RefreshToken == "" || tok.RefreshToken == ch.latest {
		return errors.New("refresh token did not rotate")
	}
	ch.latest = tok.RefreshToken
	return nil
}

func BenchmarkRefreshRotation(b *testing.B) {
	forEachBackend(b, func(b *testing.B, ts *benchServer) {
		app := ts.createClient("--name", "Bench app", "--redirect-uri", benchRedirect)
		ts.createUser(b, benchEmail)
		// One chain per parallel client, plus one for the serial loop. The
		// browser signs in once; the other sign-ins ride its SSO session.
		br := ts.newBrowser(b)
		n := runtime.GOMAXPROCS(0)*benchParallelism + 1
		chains := make([]*refreshChain, n)
		for i := range chains {
			tok := br.signIn(b, app, "openid offline_access")
			chains[i] = &refreshChain{latest: tok.RefreshToken}
		}
		auth := basicAuth(app)
		// The refresh response carries a new ID token, so every rotation also
		// signs once (RS256 by default).
		b.Run("serial", func(b *testing.B) {
			b.ReportAllocs()
			m := ts.startMeter()
			for b.Loop() {
				if err := ts.rotate(chains[0], auth); err != nil {
					b.Fatal(err)
				}
			}
			m.report(b)
		})
		b.Run("parallel", func(b *testing.B) {
			b.ReportAllocs()
			b.SetParallelism(benchParallelism)
			var next atomic.Int64
			var errs errorOnce
			m := ts.startMeter()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				ch := chains[1+int(next.Add(1)-1)%(n-1)]
				for pb.Next() {
					if err := ts.rotate(ch, auth); err != nil {
						errs.report(b, err)
						return // the chain is broken; the other clients finish b.N
					}
				}
			})
			b.StopTimer()
			m.report(b)
			errs.done(b)
		})
	})
}

func BenchmarkUserinfo(b *testing.B) {
	forEachBackend(b, func(b *testing.B, ts *benchServer) {
		app := ts.createClient("--name", "Bench app", "--redirect-uri", benchRedirect)
		jwtApp := ts.createClient("--name", "Bench JWT app", "--redirect-uri", benchRedirect, "--access-token", "jwt")
		ts.createUser(b, benchEmail)
		br := ts.newBrowser(b)
		for _, c := range []struct {
			name   string
			client createdClient
		}{{"opaque", app}, {"jwt", jwtApp}} {
			tok := br.signIn(b, c.client, "openid email profile")
			r := request{method: http.MethodGet, url: ts.issuer + "/userinfo", auth: "Bearer " + tok.AccessToken}
			b.Run(c.name, ts.parallel(r, http.StatusOK))
		}
	})
}

func BenchmarkIntrospection(b *testing.B) {
	forEachBackend(b, func(b *testing.B, ts *benchServer) {
		// The resource server introspecting is itself a confidential client.
		rs := ts.createClient("--name", "Bench API", "--grant-types", "client_credentials")
		app := ts.createClient("--name", "Bench app", "--redirect-uri", benchRedirect)
		ts.createUser(b, benchEmail)

		body, err := ts.call(ts.clientCredentials(rs).build(), http.StatusOK)
		if err != nil {
			b.Fatal(err)
		}
		var svcTok tokenResponse
		if err := json.Unmarshal(body, &svcTok); err != nil {
			b.Fatal(err)
		}
		userTok := ts.newBrowser(b).signIn(b, app, "openid email profile")

		for _, c := range []struct{ name, token string }{
			{"client_credentials_token", svcTok.AccessToken},
			{"user_token", userTok.AccessToken},
		} {
			r := request{
				method: http.MethodPost, url: ts.issuer + "/oauth/introspect",
				body: url.Values{"token": {c.token}}.Encode(), auth: basicAuth(rs),
			}
			got, err := ts.call(r.build(), http.StatusOK)
			if err != nil || !strings.Contains(string(got), `"active":true`) {
				b.Fatalf("introspection of the %s: %v %s", c.name, err, got)
			}
			b.Run(c.name, ts.parallel(r, http.StatusOK))
		}
	})
}

// ---- signing in through the real login form, for user tokens ----

const (
	benchEmail    = "bench@example.com"
	benchPassword = "Correct-Horse-7"
	benchRedirect = "http://127.0.0.1:9009/callback"
)

func (ts *benchServer) createUser(b *testing.B, email string) {
	b.Helper()
	ts.cli(benchPassword+"\n", "users", "create", "--email", email, "--name", "Bench User", "--password-stdin")
}

// benchBrowser keeps the SSO cookie and stops at redirects that leave Gatehouse.
type benchBrowser struct {
	ts *benchServer
	hc *http.Client
}

func (ts *benchServer) newBrowser(b *testing.B) *benchBrowser {
	jar, err := cookiejar.New(nil)
	if err != nil {
		b.Fatal(err)
	}
	return &benchBrowser{ts: ts, hc: &http.Client{
		Jar: jar, Timeout: 30 * time.Second, Transport: ts.hc.Transport,
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if !strings.HasPrefix(req.URL.String(), ts.issuer+"/") {
				return http.ErrUseLastResponse
			}
			if len(via) > 10 {
				return errors.New("too many redirects")
			}
			return nil
		},
	}}
}

// signIn runs the code flow with PKCE (the form only when there is no SSO
// session yet) and exchanges the code.
func (br *benchBrowser) signIn(b *testing.B, c createdClient, scope string) tokenResponse {
	b.Helper()
	cfg := &oauth2.Config{
		ClientID: c.ClientID, ClientSecret: c.ClientSecret, RedirectURL: benchRedirect,
		Scopes: strings.Fields(scope),
		Endpoint: oauth2.Endpoint{
			AuthURL: br.ts.issuer + "/authorize", TokenURL: br.ts.issuer + "/oauth/token",
			AuthStyle: oauth2.AuthStyleInHeader,
		},
	}
	verifier := oauth2.GenerateVerifier()
	resp, err := br.hc.Get(cfg.AuthCodeURL("bench-state", oauth2.S256ChallengeOption(verifier)))
	if err != nil {
		b.Fatal(err)
	}
	if resp.StatusCode == http.StatusOK { // the sign-in form
		action, values, err := firstPostForm(resp)
		if err != nil {
			b.Fatal(err)
		}
		values.Set("email", benchEmail)
		values.Set("password", benchPassword)
		req, err := http.NewRequest(http.MethodPost, action, strings.NewReader(values.Encode()))
		if err != nil {
			b.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Origin", br.ts.issuer)
		if resp, err = br.hc.Do(req); err != nil {
			b.Fatal(err)
		}
	}
	resp.Body.Close()
	loc, err := resp.Location()
	if err != nil || !strings.HasPrefix(loc.String(), benchRedirect) || loc.Query().Get("code") == "" {
		b.Fatalf("sign-in did not end at the redirect URI with a code: status %d location %v", resp.StatusCode, loc)
	}
	ctx := context.WithValue(context.Background(), oauth2.HTTPClient, br.ts.hc)
	tok, err := cfg.Exchange(ctx, loc.Query().Get("code"), oauth2.VerifierOption(verifier))
	if err != nil {
		b.Fatalf("code exchange: %v", err)
	}
	return tokenResponse{AccessToken: tok.AccessToken, RefreshToken: tok.RefreshToken}
}

// firstPostForm reads resp and returns the absolute action and the fields of its
// first POST form.
func firstPostForm(resp *http.Response) (string, url.Values, error) {
	defer resp.Body.Close()
	doc, err := html.Parse(resp.Body)
	if err != nil {
		return "", nil, err
	}
	var form *html.Node
	var find func(n *html.Node)
	find = func(n *html.Node) {
		if form != nil {
			return
		}
		if n.Type == html.ElementNode && n.Data == "form" && strings.EqualFold(attr(n, "method"), "post") {
			form = n
			return
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			find(c)
		}
	}
	find(doc)
	if form == nil {
		return "", nil, fmt.Errorf("no POST form on %s", resp.Request.URL)
	}
	values := url.Values{}
	var fields func(n *html.Node)
	fields = func(n *html.Node) {
		if n.Type == html.ElementNode && n.Data == "input" && attr(n, "name") != "" {
			if typ := attr(n, "type"); typ != "submit" && typ != "checkbox" && typ != "radio" {
				values.Set(attr(n, "name"), attr(n, "value"))
			}
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			fields(c)
		}
	}
	fields(form)
	action, err := resp.Request.URL.Parse(attr(form, "action"))
	if err != nil {
		return "", nil, err
	}
	return action.String(), values, nil
}

// BenchmarkCodeFlowSSO is one whole authorization code flow on an SSO
// session: /authorize, the sign-in page (skipped by the session), the
// callback and the code exchange — what every app sign-in of a signed-in
// user costs.
func BenchmarkCodeFlowSSO(b *testing.B) {
	forEachBackend(b, func(b *testing.B, ts *benchServer) {
		app := ts.createClient("--name", "Bench app", "--redirect-uri", benchRedirect)
		ts.createUser(b, benchEmail)
		br := ts.newBrowser(b)
		br.signIn(b, app, "openid") // the password sign-in that opens the session
		b.ReportAllocs()
		m := ts.startMeter()
		for b.Loop() {
			br.signIn(b, app, "openid")
		}
		m.report(b)
	})
}

// ---- a sign-in flood next to the token endpoint (issue 14, item 3) ----

// floodBrowsers is how many browsers sign in at once in BenchmarkSignInFlood.
const floodBrowsers = 16

// floodPhase is how long each phase of BenchmarkSignInFlood runs: -benchtime
// when it is a duration (so -benchtime 200ms validates the benchmark quickly),
// otherwise 2 s.
func floodPhase() time.Duration {
	if f := flag.Lookup("test.benchtime"); f != nil {
		if d, err := time.ParseDuration(f.Value.String()); err == nil && d > 0 {
			return d
		}
	}
	return 2 * time.Second
}

// BenchmarkSignInFlood measures what password sign-ins do to the token
// endpoint. It ignores b.N: each phase runs for floodPhase, and the results
// are metrics, not ns/op.
//
//   - raw-hash/s: argon2id hashes per second at the configured parameters
//     (x/crypto's, on one goroutine per processor, nothing else running) — what
//     password sign-ins could reach at best;
//   - idle-p50-ms, idle-p99-ms: client_credentials (opaque) latency, one
//     request at a time, nothing else running;
//   - signin/s-alone: sign-ins per second through the real form by
//     floodBrowsers browsers, nothing else running; alone-%raw relates it to
//     raw-hash/s;
//   - flood-p50-ms, flood-p99-ms, signin/s-flood, flood-%raw: the same two
//     measured together; p99-x-idle is flood-p99 / idle-p99.
//   - busy-signins: sign-ins refused with 503 (the hash queue's bound) over
//     both flood phases; they are not counted as sign-ins;
//   - hash-slots: the server's hashing concurrency.
func BenchmarkSignInFlood(b *testing.B) {
	forEachBackend(b, func(b *testing.B, ts *benchServer) {
		svc := ts.createClient("--name", "Bench service", "--grant-types", "client_credentials")
		app := ts.createClient("--name", "Bench app", "--redirect-uri", benchRedirect)
		for i := range floodBrowsers {
			ts.createUser(b, floodEmail(i))
		}
		cc := ts.clientCredentials(svc)
		d := floodPhase()
		b.Run("flood", func(b *testing.B) {
			raw := rawHashRate(d)
			idle, err := ts.latencies(cc, d)
			if err != nil {
				b.Fatal(err)
			}
			var busy atomic.Int64
			alone, err := ts.signInFlood(app, d, &busy, func() { time.Sleep(d) })
			if err != nil {
				b.Fatal(err)
			}
			var during []time.Duration
			var probeErr error
			flood, err := ts.signInFlood(app, d, &busy, func() { during, probeErr = ts.latencies(cc, d) })
			if err == nil {
				err = probeErr
			}
			if err != nil {
				b.Fatal(err)
			}
			idle50, idle99 := percentile(idle, 50), percentile(idle, 99)
			flood50, flood99 := percentile(during, 50), percentile(during, 99)
			ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
			b.ReportMetric(0, "ns/op") // b.N means nothing here
			b.ReportMetric(raw, "raw-hash/s")
			b.ReportMetric(ms(idle50), "idle-p50-ms")
			b.ReportMetric(ms(idle99), "idle-p99-ms")
			b.ReportMetric(ms(flood50), "flood-p50-ms")
			b.ReportMetric(ms(flood99), "flood-p99-ms")
			b.ReportMetric(float64(flood99)/float64(idle99), "p99-x-idle")
			b.ReportMetric(alone, "signin/s-alone")
			b.ReportMetric(flood, "signin/s-flood")
			b.ReportMetric(100*alone/raw, "alone-%raw")
			b.ReportMetric(100*flood/raw, "flood-%raw")
			b.ReportMetric(float64(busy.Load()), "busy-signins")
			b.ReportMetric(float64(ts.app.hasher.Concurrency()), "hash-slots")
		})
	})
}

func floodEmail(i int) string { return fmt.Sprintf("flood%d@example.com", i) }

// benchProcs is GOMAXPROCS as the process started, before a server with
// low-priority hashing raised it.
var benchProcs = runtime.GOMAXPROCS(0)

// rawHashRate is the argon2id hashes per second benchProcs goroutines reach
// in d at the configured parameters (the defaults) with nothing else running.
func rawHashRate(d time.Duration) float64 {
	var n atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	deadline := start.Add(d)
	for range benchProcs {
		wg.Go(func() {
			salt := make([]byte, 16)
			for time.Now().Before(deadline) {
				argon2.IDKey([]byte(benchPassword), salt, password.DefaultArgon2Time, password.DefaultArgon2Memory, password.DefaultArgon2Threads, 32)
				n.Add(1)
			}
		})
	}
	wg.Wait()
	return float64(n.Load()) / time.Since(start).Seconds()
}

// probeEvery paces the latency probe of BenchmarkSignInFlood: a request every
// 2 ms (at most 500 a second, one at a time) measures how long a token
// request waits without being a load of its own. A probe sending as fast as
// it can would take a processor by itself, and whatever gives token requests
// priority would then leave hashing nothing.
const probeEvery = 2 * time.Millisecond

// latencies sends r every probeEvery (one at a time: a late answer delays
// the next request) for d and returns each request's time.
func (ts *benchServer) latencies(r request, d time.Duration) ([]time.Duration, error) {
	var out []time.Duration
	tick := time.NewTicker(probeEvery)
	defer tick.Stop()
	for deadline := time.Now().Add(d); time.Now().Before(deadline); <-tick.C {
		start := time.Now()
		if _, err := ts.call(r.build(), http.StatusOK); err != nil {
			return nil, err
		}
		out = append(out, time.Since(start))
	}
	if len(out) == 0 {
		return nil, errors.New("no request completed")
	}
	return out, nil
}

// percentile returns the p-th percentile (nearest rank) of ds, which it sorts.
func percentile(ds []time.Duration, p float64) time.Duration {
	slices.Sort(ds)
	i := int(math.Ceil(p/100*float64(len(ds)))) - 1
	return ds[max(i, 0)]
}

// signInFlood has floodBrowsers browsers sign in through the form over and
// over, each as its own user with a fresh cookie jar (so every sign-in checks
// a password), while during runs; it returns the sign-ins per second
// completed while during ran. Sign-ins refused as busy (503) are counted in
// busy; any other failure ends the flood with an error.
func (ts *benchServer) signInFlood(app createdClient, d time.Duration, busy *atomic.Int64, during func()) (float64, error) {
	var (
		stop    atomic.Bool
		counted atomic.Bool
		n       atomic.Int64
		wg      sync.WaitGroup
		errs    = make(chan error, floodBrowsers)
	)
	for i := range floodBrowsers {
		wg.Go(func() {
			// Bounded: the flood ends when during does, or at the first error.
			for !stop.Load() {
				ok, err := ts.formSignIn(app, floodEmail(i))
				if err != nil {
					errs <- err
					return
				}
				if ok {
					n.Add(1)
				} else if counted.Load() {
					busy.Add(1)
				}
			}
		})
	}
	// Counting starts after the first floodBrowsers sign-ins (or d/2): the
	// first round pays for connections and cold caches.
	warm := time.Now().Add(d / 2)
	for n.Load() < floodBrowsers && time.Now().Before(warm) && len(errs) == 0 {
		time.Sleep(time.Millisecond)
	}
	counted.Store(true)
	n.Store(0)
	start := time.Now()
	during()
	elapsed := time.Since(start)
	done := n.Load()
	counted.Store(false)
	stop.Store(true)
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		return 0, err
	}
	return float64(done) / elapsed.Seconds(), nil
}

// formSignIn is one password sign-in of a new browser: /authorize, the
// form, and its answer, the redirect to the app with a code. ok is false
// when the server answered 503 (busy), which is a refusal, not a failure.
func (ts *benchServer) formSignIn(app createdClient, email string) (ok bool, err error) {
	jar, err := cookiejar.New(nil)
	if err != nil {
		return false, err
	}
	hc := &http.Client{
		Jar: jar, Timeout: 30 * time.Second, Transport: ts.hc.Transport,
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if !strings.HasPrefix(req.URL.String(), ts.issuer+"/") {
				return http.ErrUseLastResponse
			}
			return nil
		},
	}
	cfg := &oauth2.Config{
		ClientID: app.ClientID, RedirectURL: benchRedirect, Scopes: []string{"openid"},
		Endpoint: oauth2.Endpoint{AuthURL: ts.issuer + "/authorize"},
	}
	resp, err := hc.Get(cfg.AuthCodeURL("flood", oauth2.S256ChallengeOption(oauth2.GenerateVerifier())))
	if err != nil {
		return false, err
	}
	if resp.StatusCode != http.StatusOK {
		resp.Body.Close()
		return false, fmt.Errorf("authorize: status %d", resp.StatusCode)
	}
	action, values, err := firstPostForm(resp)
	if err != nil {
		return false, err
	}
	values.Set("email", email)
	values.Set("password", benchPassword)
	req, err := http.NewRequest(http.MethodPost, action, strings.NewReader(values.Encode()))
	if err != nil {
		return false, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", ts.issuer)
	if resp, err = hc.Do(req); err != nil {
		return false, err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode == http.StatusServiceUnavailable && resp.Header.Get("Retry-After") != "" {
		return false, nil
	}
	loc, err := resp.Location()
	if err != nil || !strings.HasPrefix(loc.String(), benchRedirect) || loc.Query().Get("code") == "" {
		return false, fmt.Errorf("sign-in did not end at the redirect URI with a code: status %d location %v", resp.StatusCode, loc)
	}
	return true, nil
}
