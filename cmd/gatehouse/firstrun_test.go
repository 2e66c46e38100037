package main

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-id/gatehouse/login/mail"
	"github.com/gatehouse-id/gatehouse/storage/postgres/pgtest"
)

// servedCLI is `gatehouse serve` run in-process through run(), as main runs it.
type servedCLI struct {
	addr           string // 127.0.0.1:port
	stdout, stderr *syncBuffer
	cancel         context.CancelFunc
	done           chan int
}

// freeLoopbackAddr returns a loopback address nothing listens on right now.
func freeLoopbackAddr(t *testing.T) string {
	t.Helper()
	ln := listenLoopback(t)
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// startServe runs serve with vars (GATEHOUSE_ADDR is set to addr) and waits
// until /readyz answers 200 or serve exits; stdout may be replaced.
func startServe(t *testing.T, addr string, vars map[string]string, stdout io.Writer) (*servedCLI, int, bool) {
	t.Helper()
	s := &servedCLI{addr: addr, stdout: &syncBuffer{}, stderr: &syncBuffer{}, done: make(chan int, 1)}
	// The default metrics port is one per machine; tests (and a developer's
	// own server) must not fight over it.
	env := map[string]string{"GATEHOUSE_ADDR": addr, "GATEHOUSE_METRICS_ADDR": "127.0.0.1:0"}
	for k, v := range vars {
		env[k] = v
	}
	var out io.Writer = s.stdout
	if stdout != nil {
		out = stdout
	}
	ctx, cancel := context.WithCancel(context.Background())
	s.cancel = cancel
	go func() { s.done <- run(ctx, []string{"serve"}, strings.NewReader(""), out, s.stderr, mapEnv(env)) }()
	deadline := time.Now().Add(30 * time.Second)
	hc := &http.Client{Timeout: 2 * time.Second}
	for time.Now().Before(deadline) {
		select {
		case code := <-s.done:
			cancel()
			return s, code, false
		default:
		}
		if resp, err := hc.Get("http://" + addr + "/readyz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				t.Cleanup(func() { s.stop(t) })
				return s, 0, true
			}
		}
		time.Sleep(20 * time.Millisecond) // polling interval, not synchronisation
	}
	cancel()
	t.Fatalf("serve was not ready within 30s; stderr:\n%s", s.stderr)
	return nil, 0, false
}

func (s *servedCLI) stop(t *testing.T) {
	s.cancel()
	select {
	case code := <-s.done:
		if code != 0 {
			t.Errorf("serve exited %d; stderr:\n%s", code, s.stderr)
		}
		s.done <- code // a second stop returns at once
	case <-time.After(20 * time.Second):
		t.Error("serve did not stop within 20s")
	}
}

// demoSecretWorks reports whether the demo client authenticates with secret
// at the token endpoint (invalid_grant for a made-up refresh token, rather
// than invalid_client).
func demoSecretWorks(t *testing.T, addr, secret string) bool {
	t.Helper()
	status, _, m := postForm(t, "http://"+addr+"/oauth/token",
		url.Values{"grant_type": {"refresh_token"}, "refresh_token": {"x"}}, demoClientID, secret)
	return status == http.StatusBadRequest && m["error"] == "invalid_grant"
}

var demoSecretLine = regexp.MustCompile(`client_secret: (\S+)`)

// TestServeBindsBeforeShowingTheDemoSecret: a busy port stops serve before it
// creates anything, so the secret is shown by the start that succeeds.
func TestServeBindsBeforeShowingTheDemoSecret(t *testing.T) {
	busy := listenLoopback(t)
	dir := filepath.Join(t.TempDir(), "data")
	vars := map[string]string{"GATEHOUSE_DATA_DIR": dir}
	s, code, ready := startServe(t, busy.Addr().String(), vars, nil)
	if ready || code == 0 {
		t.Fatal("serve started on a busy port")
	}
	if s.stdout.String() != "" || !strings.Contains(s.stderr.String(), "GATEHOUSE_ADDR") {
		t.Errorf("busy port: stdout %q, stderr %q; want nothing on stdout and an error naming GATEHOUSE_ADDR", s.stdout, s.stderr)
	}
	if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the failed start created %s (err %v)", dir, err)
	}

	addr := busy.Addr().String()
	busy.Close()
	s, _, ready = startServe(t, addr, vars, nil)
	if !ready {
		t.Fatalf("second start failed: %s", s.stderr)
	}
	m := demoSecretLine.FindStringSubmatch(s.stdout.String())
	if m == nil {
		t.Fatalf("second start did not show the demo secret; stdout:\n%s", s.stdout)
	}
	if !demoSecretWorks(t, addr, m[1]) {
		t.Error("the shown demo secret does not authenticate")
	}
	if !strings.Contains(s.stdout.String(), "mail (verification and reset links) is written to this log; set SMTP_URL") &&
		!strings.Contains(s.stdout.String(), "Mail (verification and reset links) is written to this log; set SMTP_URL") {
		t.Errorf("the banner does not say where mail goes:\n%s", s.stdout)
	}
}

type failingWriter struct{}

func (failingWriter) Write([]byte) (int, error) { return 0, errors.New("stdout closed") }

// TestDemoSecretNeverShown: when the secret cannot be shown, the demo client
// keeps no working secret and the next start says how to get one.
func TestDemoSecretNeverShown(t *testing.T) {
	vars := map[string]string{"GATEHOUSE_DATA_DIR": t.TempDir()}
	addr := freeLoopbackAddr(t)
	s, code, ready := startServe(t, addr, vars, failingWriter{})
	if ready || code == 0 || !strings.Contains(s.stderr.String(), rotateDemoHint) {
		t.Fatalf("unwritable stdout: ready %v exit %d stderr %q; want a failure naming %q", ready, code, s.stderr, rotateDemoHint)
	}
	s, _, ready = startServe(t, addr, vars, nil)
	if !ready {
		t.Fatalf("second start failed: %s", s.stderr)
	}
	if out := s.stdout.String(); !strings.Contains(out, "has no secret") || !strings.Contains(out, rotateDemoHint) {
		t.Fatalf("second start does not say how to get the unseen secret; stdout:\n%s", out)
	}
	var rot map[string]any
	out, errOut, code := runCLI(mapEnv(vars), "", "clients", "rotate-secret", "--json", demoClientID)
	if code != 0 || json.Unmarshal([]byte(out), &rot) != nil {
		t.Fatalf("rotate-secret: exit %d %s %s", code, out, errOut)
	}
	if secret, _ := rot["client_secret"].(string); !demoSecretWorks(t, addr, secret) {
		t.Error("the rotated demo secret does not authenticate")
	}
}

// TestIssuerFollowsAddr: without GATEHOUSE_ISSUER the issuer is localhost on
// the port served; a loopback issuer on another port gets one warning.
func TestIssuerFollowsAddr(t *testing.T) {
	addr := freeLoopbackAddr(t)
	_, port, _ := net.SplitHostPort(addr)
	s, _, ready := startServe(t, addr, map[string]string{"GATEHOUSE_DATA_DIR": t.TempDir()}, nil)
	if !ready {
		t.Fatalf("serve: %s", s.stderr)
	}
	resp, err := http.Get("http://" + addr + "/.well-known/openid-configuration")
	if err != nil {
		t.Fatal(err)
	}
	var disc struct{ Issuer string }
	err = json.NewDecoder(resp.Body).Decode(&disc)
	resp.Body.Close()
	if err != nil || disc.Issuer != "http://localhost:"+port {
		t.Errorf("issuer %q (%v), want http://localhost:%s", disc.Issuer, err, port)
	}
	if strings.Contains(s.stderr.String(), "loopback port other than") {
		t.Errorf("warned although the issuer follows the address:\n%s", s.stderr)
	}
	s.stop(t)

	addr = freeLoopbackAddr(t)
	s, _, ready = startServe(t, addr, map[string]string{"GATEHOUSE_DATA_DIR": t.TempDir(), "GATEHOUSE_ISSUER": "http://localhost:1"}, nil)
	if !ready {
		t.Fatalf("serve: %s", s.stderr)
	}
	if n := strings.Count(s.stderr.String(), "loopback port other than"); n != 1 {
		t.Errorf("issuer on port 1, server on %s: %d warnings, want 1:\n%s", addr, n, s.stderr)
	}
}

// TestMailLinksOnTheirOwnLine: without SMTP_URL, serve says where mail goes
// and writes a mail's link on a line of its own.
func TestMailLinksOnTheirOwnLine(t *testing.T) {
	addr := freeLoopbackAddr(t)
	issuer := "http://" + addr
	vars := map[string]string{"GATEHOUSE_DATA_DIR": t.TempDir(), "GATEHOUSE_ISSUER": issuer}
	s, _, ready := startServe(t, addr, vars, nil)
	if !ready {
		t.Fatalf("serve: %s", s.stderr)
	}
	if !strings.Contains(s.stderr.String(), "mail is written to this log; set SMTP_URL") {
		t.Errorf("start-up does not say where mail goes:\n%s", s.stderr)
	}
	if _, errOut, code := runCLI(mapEnv(vars), testPassword+"\n", "users", "create", "--email", "mo@example.com", "--name", "Mo", "--password-stdin"); code != 0 {
		t.Fatal(errOut)
	}
	b := newBrowser(t, issuer)
	b.submit(b.get(issuer+"/forgot"), map[string]string{"email": "mo@example.com"})
	link := regexp.MustCompile(`(?m)^\s*(` + regexp.QuoteMeta(issuer) + `/reset\S*)$`)
	deadline := time.Now().Add(20 * time.Second)
	for !link.MatchString(s.stderr.String()) {
		if time.Now().After(deadline) {
			t.Fatalf("no reset link on a line of its own within 20s; stderr:\n%s", s.stderr)
		}
		time.Sleep(20 * time.Millisecond) // polling interval
	}
}

// TestLinkPrinter: each link of a logged mail gets a line of its own, after
// the log sink has logged it.
func TestLinkPrinter(t *testing.T) {
	var log, links syncBuffer
	sink, err := mail.NewSender("", "", newLogger(&config{LogLevel: "info", LogFormat: "text"}, &log))
	if err != nil {
		t.Fatal(err)
	}
	a := "http://localhost:8080/verify-email?token=abc_-123"
	b := "https://id.example/reset?token=x=y&z=1"
	err = linkPrinter{sink, &links}.Send(context.Background(), mail.Message{To: "a@example.com", Subject: "Hi", Text: "Open " + a + ".\nOr <" + b + ">\n"})
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(links.String(), "\n")
	for _, want := range []string{a, b} {
		found := false
		for _, l := range lines {
			found = found || strings.TrimSpace(l) == want
		}
		if !found {
			t.Errorf("link %s is not on a line of its own:\n%s", want, links.String())
		}
	}
	if !strings.Contains(log.String(), "no SMTP_URL") {
		t.Errorf("the log sink did not log the mail: %s", log.String())
	}
}

// TestDemoClientOnlyWhereItBelongs: the demo client is for a laptop.
func TestDemoClientOnlyWhereItBelongs(t *testing.T) {
	yes, no := true, false
	for _, c := range []struct {
		db, issuer string
		demo       *bool
		want       bool
	}{
		{"", "http://localhost:8080", nil, true},
		{"", "http://127.0.0.1:9000", nil, true},
		{"", "https://localhost:8443", nil, false},
		{"", "https://id.example.com", nil, false},
		{"", "http://id.example.com", nil, false},
		{"postgres://x/y", "http://localhost:8080", nil, false},
		{"postgres://x/y", "https://id.example.com", &yes, true},
		{"", "http://localhost:8080", &no, false},
	} {
		cfg := &config{DatabaseURL: c.db, Issuer: c.issuer, DemoClient: c.demo}
		if got := demoClientWanted(cfg); got != c.want {
			t.Errorf("db %q issuer %s demo %v: %v, want %v", c.db, c.issuer, c.demo, got, c.want)
		}
	}
	// End to end: an https issuer on the embedded store gets no demo client.
	ln := listenLoopback(t)
	ts := startServerOn(t, ln, serverVars(t, "https://id.example.com", nil), nil)
	if err := bootstrapDemoClient(context.Background(), ts.app.store, ts.app.cfg, io.Discard, time.Now()); err != nil {
		t.Fatal(err)
	}
	if out := ts.cli("", "clients", "list"); strings.Contains(out, demoClientID) {
		t.Errorf("https issuer got the demo client: %s", out)
	}
	// PostgreSQL gets one only when asked.
	for _, ask := range []string{"", "true"} {
		ts := startServer(t, "postgres", map[string]string{"GATEHOUSE_DEMO_CLIENT": ask})
		if err := bootstrapDemoClient(context.Background(), ts.app.store, ts.app.cfg, io.Discard, time.Now()); err != nil {
			t.Fatal(err)
		}
		if got := strings.Contains(ts.cli("", "clients", "list"), demoClientID); got != (ask == "true") {
			t.Errorf("postgres, GATEHOUSE_DEMO_CLIENT=%q: demo client %v", ask, got)
		}
	}
}

// TestHelp: the help lists commands with examples, each command shows its own
// flags, an unknown command suggests the nearest one, and version prints.
func TestHelp(t *testing.T) {
	env := mapEnv(map[string]string{"GATEHOUSE_DATA_DIR": t.TempDir()})
	out, _, code := runCLI(env, "", "--help")
	for _, want := range []string{"serve ", "migrate ", "clients ", "users ", "keys ", "backup ", "version ", "Examples:", "--addr :8090"} {
		if code != 0 || !strings.Contains(out, want) {
			t.Errorf("gatehouse --help (exit %d) lacks %q:\n%s", code, want, out)
		}
	}
	has := func(args []string, flags ...string) map[string]bool {
		out, _, _ := runCLI(env, "", append(args, "--help")...)
		m := map[string]bool{}
		for _, f := range flags {
			m[f] = strings.Contains(out, f+" ")
		}
		return m
	}
	for _, c := range []struct {
		args     []string
		want, no []string
	}{
		{[]string{"serve"}, []string{"--addr", "--issuer", "--data-dir", "--smtp-url", "--password-min-length", "--demo-client"}, nil},
		{[]string{"migrate"}, []string{"--addr", "--database-url"}, nil},
		{[]string{"clients", "list"}, []string{"--data-dir", "--database-url", "--log-level", "--json"}, []string{"--addr", "--issuer", "--smtp-url", "--password-min-length"}},
		{[]string{"users", "create"}, []string{"--data-dir", "--password-min-length", "--password-hasher"}, []string{"--addr", "--smtp-url"}},
		{[]string{"keys", "rotate"}, []string{"--data-dir", "--signing-alg", "--access-token-ttl", "--json"}, []string{"--addr"}},
		{[]string{"users"}, nil, []string{"--data-dir"}},
	} {
		got := has(c.args, append(c.want, c.no...)...)
		for _, f := range c.want {
			if !got[f] {
				t.Errorf("%v --help lacks %s", c.args, f)
			}
		}
		for _, f := range c.no {
			if got[f] {
				t.Errorf("%v --help shows %s, which it does not use", c.args, f)
			}
		}
	}
	if _, _, code := runCLI(env, "", "clients", "list", "--addr", ":9"); code == 0 {
		t.Error("clients list accepted --addr")
	}

	for _, args := range [][]string{{"users", "lst"}, {"cleints"}, {"keys", "rotat"}} {
		out, errOut, code := runCLI(env, "", args...)
		if code == 0 || out != "" || strings.Count(errOut, "\n") != 1 || !strings.Contains(errOut, "did you mean") {
			t.Errorf("%v: exit %d stdout %q stderr %q; want one error line with a suggestion", args, code, out, errOut)
		}
	}

	for _, args := range [][]string{{"version"}, {"--version"}} {
		out, _, code := runCLI(env, "", args...)
		if code != 0 || !strings.HasPrefix(out, "gatehouse ") || !strings.Contains(out, "commit ") || !strings.Contains(out, runtime.Version()) {
			t.Errorf("%v: exit %d %q; want version, commit and %s", args, code, out, runtime.Version())
		}
	}
}

// TestBooleanFlags: a boolean setting is a flag without a value.
func TestBooleanFlags(t *testing.T) {
	cmd := withSettings(serveCmd(&env{}), scopeServe)
	if err := cmd.ParseFlags([]string{"--require-verified-email", "--password-check-common=false", "--demo-client"}); err != nil {
		t.Fatal(err)
	}
	cfg, err := loadConfig(cmd.Flags(), mapEnv(map[string]string{"GATEHOUSE_REQUIRE_VERIFIED_EMAIL": "false"}))
	if err != nil {
		t.Fatal(err)
	}
	if !cfg.RequireVerified || cfg.PasswordCommon || cfg.DemoClient == nil || !*cfg.DemoClient {
		t.Errorf("require-verified %v, check-common %v, demo %v", cfg.RequireVerified, cfg.PasswordCommon, cfg.DemoClient)
	}
}

// TestSettingsDeclaredOnce: every setting is declared once, with a kind its
// default parses as and a scope, and every setting the parser reads is
// declared (a misspelt name is an error, not a silent empty value).
func TestSettingsDeclaredOnce(t *testing.T) {
	flags, envs := map[string]bool{}, map[string]bool{}
	for _, s := range settings {
		if flags[s.flag] || envs[s.env] {
			t.Errorf("%s/%s declared twice", s.flag, s.env)
		}
		flags[s.flag], envs[s.env] = true, true
		if s.scope == 0 {
			t.Errorf("%s has no scope: no command takes it", s.env)
		}
		p := parser{raw: map[string]string{s.flag: s.def}, names: map[string]string{s.flag: s.env}}
		switch s.kind {
		case kindBool:
			if s.def != "" {
				p.boolean(s.flag)
			}
		case kindDuration:
			p.duration(s.flag, 0)
		case kindInt:
			p.intRange(s.flag, -1<<31, 1<<31)
		case kindRate:
			p.rate(s.flag)
		}
		if p.err != nil {
			t.Errorf("%s: default %q is not a %s: %v", s.env, s.def, s.kind, p.err)
		}
	}
	if _, err := loadConfig(withSettings(serveCmd(&env{}), scopeServe).Flags(), mapEnv(nil)); err != nil {
		t.Errorf("defaults: %v", err)
	}
	p := parser{raw: map[string]string{}, names: map[string]string{"addr": "GATEHOUSE_ADDR"}}
	p.str("adr")
	if p.err == nil || !strings.Contains(p.err.Error(), "not declared") {
		t.Errorf("reading a misspelt setting: %v", p.err)
	}
	p = parser{raw: map[string]string{"addr": ":1"}, names: map[string]string{"addr": "GATEHOUSE_ADDR"}}
	p.duration("addr", 0)
	if p.err == nil || !strings.Contains(p.err.Error(), "declared as string") {
		t.Errorf("reading a setting as the wrong kind: %v", p.err)
	}
}

// TestKeysRotateJSONIsQuiet: keys rotate --json prints one JSON value and no
// log line unless --log-level asks.
func TestKeysRotateJSONIsQuiet(t *testing.T) {
	env := mapEnv(map[string]string{"GATEHOUSE_DATA_DIR": t.TempDir()})
	runCLI(env, "", "users", "list") // creates the store and the secret, and says so
	out, errOut, code := runCLI(env, "", "keys", "rotate", "--json")
	var r struct {
		Active     string `json:"active_kid"`
		Previous   string `json:"previous_kid"`
		Algorithms []any  `json:"algorithms"`
	}
	if code != 0 || json.Unmarshal([]byte(out), &r) != nil || r.Active == "" || r.Previous == "" || r.Active == r.Previous || len(r.Algorithms) != 3 {
		t.Fatalf("keys rotate --json: exit %d stdout %q stderr %q", code, out, errOut)
	}
	if errOut != "" {
		t.Errorf("keys rotate --json wrote to stderr: %q", errOut)
	}
	_, errOut, _ = runCLI(env, "", "keys", "rotate", "--json", "--log-level", "info")
	if !strings.Contains(errOut, "rotated signing keys") {
		t.Errorf("--log-level info did not show the log: %q", errOut)
	}
}

// TestNewStoreNote: the command that creates a store says where, once.
func TestNewStoreNote(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "typo")
	sqlite := mapEnv(map[string]string{"GATEHOUSE_DATA_DIR": dir})
	pg := mapEnv(map[string]string{"DATABASE_URL": pgtest.URL(t), "GATEHOUSE_SECRET": testSecret})
	for _, c := range []struct {
		name  string
		env   func(string) string
		where string
	}{
		{"sqlite", sqlite, "created a new store in " + dir},
		{"postgres", pg, "created a new store in the PostgreSQL database"},
	} {
		_, errOut, code := runCLI(c.env, "", "users", "list")
		if code != 0 || !strings.Contains(errOut, c.where) {
			t.Errorf("%s, first command: exit %d stderr %q; want %q", c.name, code, errOut, c.where)
		}
		_, errOut, _ = runCLI(c.env, "", "users", "list")
		if strings.Contains(errOut, "created a new store") {
			t.Errorf("%s, second command: stderr %q", c.name, errOut)
		}
	}
}

// TestDatabaseConnectRetries: a database that comes up after start-up began
// is waited for (the proxy refuses connections until the first failed
// attempt has been logged).
func TestDatabaseConnectRetries(t *testing.T) {
	dbURL := pgtest.URL(t)
	u, err := url.Parse(dbURL)
	if err != nil {
		t.Fatal(err)
	}
	proxy := startTCPProxy(t, u.Host)
	proxy.cut()
	u.Host = proxy.addr()
	env := mapEnv(map[string]string{
		"DATABASE_URL": u.String(), "GATEHOUSE_SECRET": testSecret,
		"GATEHOUSE_DB_CONNECT_TIMEOUT": "30s", "GATEHOUSE_LOG_LEVEL": "info",
	})
	stderr := &watchWriter{want: "waiting for the database", seen: make(chan struct{})}
	var stdout syncBuffer
	done := make(chan int, 1)
	go func() {
		done <- run(context.Background(), []string{"migrate"}, strings.NewReader(""), &stdout, stderr, env)
	}()
	select {
	case <-stderr.seen:
		proxy.restore()
	case code := <-done:
		t.Fatalf("migrate ended (exit %d) without waiting for the database: %s", code, stderr.buf.String())
	case <-time.After(30 * time.Second):
		t.Fatal("no waiting line within 30s")
	}
	if code := <-done; code != 0 || !strings.Contains(stdout.String(), "schema is at version") {
		t.Errorf("migrate after the database came up: exit %d stdout %q stderr %q", code, stdout.String(), stderr.buf.String())
	}

	// Waiting cannot fix a missing database: that fails at once.
	u, _ = url.Parse(dbURL)
	u.Path = "/gh_no_such_database"
	start := time.Now()
	_, errOut, code := runCLI(mapEnv(map[string]string{"DATABASE_URL": u.String(), "GATEHOUSE_SECRET": testSecret, "GATEHOUSE_DB_CONNECT_TIMEOUT": "30s"}), "", "migrate")
	if code == 0 || !strings.HasPrefix(errOut, "gatehouse: DATABASE_URL") || strings.Count(errOut, "\n") != 1 {
		t.Errorf("missing database: exit %d stderr %q", code, errOut)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("missing database: took %s, want an immediate failure", d)
	}
}

// watchWriter collects output and closes seen when want first appears.
type watchWriter struct {
	buf  syncBuffer
	want string
	seen chan struct{}
	once bool
}

func (w *watchWriter) Write(p []byte) (int, error) {
	n, err := w.buf.Write(p)
	if !w.once && strings.Contains(w.buf.String(), w.want) {
		w.once = true
		close(w.seen)
	}
	return n, err
}

// TestScreenshotsStayOutOfTheRepository: the browser walk writes its pictures
// to a temporary directory unless asked to refresh docs/screenshots.
func TestScreenshotsStayOutOfTheRepository(t *testing.T) {
	t.Setenv("UPDATE_SCREENSHOTS", "")
	dir, err := filepath.Abs(screenshotDir(t))
	if err != nil {
		t.Fatal(err)
	}
	repo, _ := filepath.Abs(filepath.Join("..", ".."))
	if strings.HasPrefix(dir, repo+string(filepath.Separator)) {
		t.Errorf("screenshots go to %s, inside the repository", dir)
	}
	t.Setenv("UPDATE_SCREENSHOTS", "1")
	if got := filepath.ToSlash(screenshotDir(t)); !strings.HasSuffix(got, "docs/screenshots") {
		t.Errorf("UPDATE_SCREENSHOTS=1: %s", got)
	}
}

// TestBusyMetricsPort: a taken default metrics port costs the metrics, not
// the server (a second instance, an exporter on 9464); a metrics address the
// operator chose must be free, or start-up stops naming it.
func TestBusyMetricsPort(t *testing.T) {
	// Take the default address if it is free; if something else holds it,
	// the condition under test is already there.
	if ln, err := net.Listen("tcp", settingDefault("metrics-addr")); err == nil {
		t.Cleanup(func() { ln.Close() })
	}
	s, code, ok := startServe(t, freeLoopbackAddr(t), map[string]string{
		"GATEHOUSE_METRICS_ADDR": "", "GATEHOUSE_DATA_DIR": t.TempDir(),
	}, nil)
	if !ok || !strings.Contains(s.stderr.String(), "metrics are off") {
		t.Fatalf("serve with the default metrics port taken: exit %d ready %v; stderr:\n%s", code, ok, s.stderr)
	}

	busy := listenLoopback(t)
	defer busy.Close()
	out, errOut, code := runCLI(mapEnv(onFreePorts(map[string]string{
		"GATEHOUSE_METRICS_ADDR": busy.Addr().String(), "GATEHOUSE_DATA_DIR": t.TempDir(),
	})), "", "serve")
	if code == 0 || out != "" || strings.Count(errOut, "\n") != 1 || !strings.Contains(errOut, "GATEHOUSE_METRICS_ADDR") {
		t.Fatalf("serve with a chosen metrics address taken: exit %d stdout %q stderr %q", code, out, errOut)
	}
}
