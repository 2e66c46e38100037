package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// redirectURI is the apps' redirect URI. Nothing listens there: the browser
// stops at the redirect and the driver exchanges the code itself.
const redirectURI = "http://127.0.0.1:9009/cb"

// benchPassword satisfies Gatehouse's default password policy.
const benchPassword = "Correct-Horse-7"

// client is an OAuth client's credentials.
type client struct {
	ID     string `json:"client_id"`
	Secret string `json:"client_secret"`
}

// discovery is the part of a discovery document the driver uses.
type discovery struct {
	Issuer                string `json:"issuer"`
	AuthorizationEndpoint string `json:"authorization_endpoint"`
	TokenEndpoint         string `json:"token_endpoint"`
	JWKSURI               string `json:"jwks_uri"`
}

// ccRequest is a client_credentials token request.
type ccRequest struct {
	app  client
	form url.Values
}

// target is one running system set up for the scenarios: its process, its
// endpoints, and the clients and accounts the scenarios use.
type target struct {
	name   string // process name in the memory table
	column string // its column in the summary table
	proc   *proc
	pprof  string // Gatehouse's pprof base URL when profiling, else ""
	hc     *http.Client
	tr     *http.Transport
	disc   discovery

	redirectURI  string
	app          client     // authorization_code + refresh_token (Gatehouse: + client_credentials)
	ccOpaque     *ccRequest // nil: not supported
	ccJWT        *ccRequest // an RS256 JWT access token
	refreshExtra url.Values // authorization parameters to be given a refresh token
	users        []account  // browser i signs in as users[i%len(users)]
	sso          bool       // keeps an SSO session across authorization requests
	hashes       bool       // its sign-in form checks a password hash
	postgres     bool       // its data is in PostgreSQL: count the database's CPU too

	// es256 returns the target and app whose ID tokens are ES256, nil if
	// the system has none (the peers: RS256 is the comparison).
	es256 func(ctx context.Context) (*target, client, error)

	idle  memory // right after start and setup, before any load
	final memory // after the last scenario
}

// proc is a server process the driver started.
type proc struct {
	name string
	cmd  *exec.Cmd
	log  string
	done chan struct{}
	err  error // after done
}

func (p *proc) pid() int { return p.cmd.Process.Pid }

// startProc starts bin with env (on top of a clean environment) and logs its
// output to logDir/name.log.
func startProc(name, bin string, args []string, dir string, env []string, logDir string) (*proc, error) {
	logPath := filepath.Join(logDir, name+".log")
	logFile, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, args...)
	cmd.Dir = dir
	cmd.Env = append(baseEnv(), env...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		logFile.Close()
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	p := &proc{name: name, cmd: cmd, log: logPath, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		logFile.Close()
		close(p.done)
	}()
	return p, nil
}

// stop asks the process to stop (SIGTERM), and kills it after 10 s.
func (p *proc) stop() {
	select {
	case <-p.done:
		return
	default:
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

// logTail is the end of the process's log, for error messages.
func (p *proc) logTail() string {
	raw, _ := os.ReadFile(p.log)
	if len(raw) > 2000 {
		raw = raw[len(raw)-2000:]
	}
	return string(raw)
}

// baseEnv is the driver's environment without the settings of the systems
// compared, so that a developer's GATEHOUSE_* or DATABASE_URL cannot change
// what is measured.
func baseEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(k, "GATEHOUSE_") || k == "DATABASE_URL" || k == "REDIS_URL" || k == "SMTP_URL" ||
			k == "PORT" || k == "REDIRECT_URI" || k == "USERS_FILE" || k == "NODE_OPTIONS" || k == "GOMAXPROCS" || k == "GOGC" {
			continue
		}
		env = append(env, kv)
	}
	return env
}

// freePort returns a port nothing listens on at 127.0.0.1 (it is free when
// this returns; a race with another program is possible but harmless: the
// server would fail to start and say so).
func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// newTarget makes the target's HTTP client and waits until the server
// answers its discovery document.
func newTarget(ctx context.Context, name, column string, p *proc, issuer string) (*target, error) {
	tr := &http.Transport{
		MaxIdleConns:        1024,
		MaxIdleConnsPerHost: 1024,
		IdleConnTimeout:     60 * time.Second,
		DisableCompression:  true,
	}
	t := &target{
		name: name, column: column, proc: p, tr: tr,
		hc:          &http.Client{Transport: tr, Timeout: 15 * time.Second},
		redirectURI: redirectURI,
	}
	wellKnown := strings.TrimRight(issuer, "/") + "/.well-known/openid-configuration"
	deadline := time.Now().Add(60 * time.Second)
	for {
		body, err := t.get(ctx, wellKnown)
		if err == nil {
			if err := json.Unmarshal(body, &t.disc); err != nil || t.disc.TokenEndpoint == "" {
				return nil, fmt.Errorf("%s: discovery document: %.200s", name, body)
			}
			return t, nil
		}
		select {
		case <-p.done:
			return nil, fmt.Errorf("%s exited (%v):\n%s", name, p.err, p.logTail())
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("%s did not answer %s within 60 s: %v\n%s", name, wellKnown, err, p.logTail())
		}
	}
}

// gatehouseInstance is how one `gatehouse serve` is set up.
type gatehouseInstance struct {
	name, column string
	signingAlg   string // GATEHOUSE_SIGNING_ALG
	databaseURL  string // empty: SQLite in a data dir of its own
}

// startGatehouse starts `gatehouse serve` and creates its clients and users
// with the CLI, as an operator would.
func (l *lab) startGatehouse(ctx context.Context, gi gatehouseInstance) (*target, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	issuer := fmt.Sprintf("http://127.0.0.1:%d", port)
	dataDir := filepath.Join(l.tmp, gi.name)
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return nil, err
	}
	env := []string{
		"GATEHOUSE_DATA_DIR=" + dataDir,
		"GATEHOUSE_LOG_LEVEL=warn",
		"GATEHOUSE_SIGNING_ALG=" + gi.signingAlg,
	}
	if gi.databaseURL != "" {
		env = append(env, "DATABASE_URL="+gi.databaseURL, "GATEHOUSE_SECRET="+rand.Text()+rand.Text())
	}
	metrics, pprofBase := "off", ""
	if l.cfg.profileDir != "" {
		mport, err := freePort()
		if err != nil {
			return nil, err
		}
		metrics = "127.0.0.1:" + strconv.Itoa(mport)
		pprofBase = "http://" + metrics
	}
	serveEnv := append([]string{
		"GATEHOUSE_ADDR=127.0.0.1:" + strconv.Itoa(port),
		"GATEHOUSE_ISSUER=" + issuer,
		"GATEHOUSE_METRICS_ADDR=" + metrics,
		"GATEHOUSE_PPROF=" + strconv.FormatBool(pprofBase != ""),
		"GATEHOUSE_DEMO_CLIENT=false",
		// The sign-in scenarios send thousands of sign-ins from one
		// address: the limits against guessing would answer 429.
		"GATEHOUSE_RATE_LOGIN_EMAIL=1000000/1s",
		"GATEHOUSE_RATE_LOGIN_IP=1000000/1s",
	}, env...)
	p, err := startProc(gi.name, l.cfg.gatehouse, []string{"serve"}, l.tmp, serveEnv, l.tmp)
	if err != nil {
		return nil, err
	}
	l.procs = append(l.procs, p)
	t, err := newTarget(ctx, gi.name, gi.column, p, issuer)
	if err != nil {
		return nil, err
	}
	t.sso, t.hashes, t.postgres = true, true, gi.databaseURL != ""
	t.pprof = pprofBase
	cli := func(stdin string, args ...string) ([]byte, error) {
		cmd := exec.CommandContext(ctx, l.cfg.gatehouse, args...)
		cmd.Env = append(baseEnv(), env...)
		cmd.Stdin = strings.NewReader(stdin)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			return nil, fmt.Errorf("gatehouse %s: %w: %s", strings.Join(args, " "), err, stderr.Bytes())
		}
		return out, nil
	}
	createClient := func(args ...string) (client, error) {
		out, err := cli("", append([]string{"clients", "create", "--json"}, args...)...)
		if err != nil {
			return client{}, err
		}
		var c client
		if err := json.Unmarshal(out, &c); err != nil || c.ID == "" || c.Secret == "" {
			return client{}, fmt.Errorf("clients create printed %.200s", out)
		}
		return c, nil
	}
	if t.app, err = createClient("--name", "Bench app", "--redirect-uri", redirectURI,
		"--grant-types", "authorization_code,refresh_token,client_credentials"); err != nil {
		return nil, err
	}
	// bench/load's scope: any scope works for client_credentials.
	ccForm := url.Values{"grant_type": {"client_credentials"}, "scope": {"api"}}
	t.ccOpaque = &ccRequest{app: t.app, form: ccForm}
	jwtApp, err := createClient("--name", "Bench API client", "--grant-types", "client_credentials", "--access-token", "jwt")
	if err != nil {
		return nil, err
	}
	t.ccJWT = &ccRequest{app: jwtApp, form: ccForm}
	// One user per concurrent browser, as a real flood has: no per-user
	// lock or counter is shared between the sign-ins.
	for i := range max(l.cfg.browsers, l.cfg.flows) {
		email := fmt.Sprintf("bench%d@example.com", i)
		if _, err := cli(benchPassword+"\n", "users", "create", "--email", email, "--name", "Bench User", "--password-stdin"); err != nil {
			return nil, err
		}
		t.users = append(t.users, account{email, benchPassword})
	}
	switch {
	case gi.signingAlg == "ES256":
	case l.perClientAlg:
		// Per-client ID token algorithm (issue 14): one process for both.
		es, err := createClient("--name", "Bench app ES256", "--redirect-uri", redirectURI,
			"--grant-types", "authorization_code,refresh_token", "--id-token-signing-alg", "ES256")
		if err != nil {
			return nil, err
		}
		t.es256 = func(context.Context) (*target, client, error) { return t, es, nil }
	default:
		// An instance of its own with GATEHOUSE_SIGNING_ALG=ES256, started
		// when an ES256 scenario first needs it.
		var es *target
		t.es256 = func(ctx context.Context) (*target, client, error) {
			if es == nil {
				esURL, err := "", error(nil)
				if gi.databaseURL != "" {
					if esURL, err = l.pg.schemaURL(ctx, "es256"); err != nil {
						return nil, client{}, err
					}
				}
				if es, err = l.startGatehouse(ctx, gatehouseInstance{name: gi.name + "-es256", column: gi.column, signingAlg: "ES256", databaseURL: esURL}); err != nil {
					return nil, client{}, err
				}
				if es.idle, err = readMemory(es.proc.pid()); err != nil {
					return nil, client{}, err
				}
				l.extra = append(l.extra, es)
			}
			return es, es.app, nil
		}
	}
	return t, nil
}

// startNode starts bench/peers/node-oidc-provider (npm ci must have run).
func (l *lab) startNode(ctx context.Context) (*target, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	app := client{ID: "bench", Secret: rand.Text()}
	p, err := startProc("node-oidc-provider", l.cfg.node, []string{"server.mjs"}, l.cfg.nodeDir, []string{
		"PORT=" + strconv.Itoa(port),
		"CLIENT_ID=" + app.ID,
		"CLIENT_SECRET=" + app.Secret,
		"REDIRECT_URI=" + redirectURI,
		"NODE_ENV=production",
	}, l.tmp)
	if err != nil {
		return nil, err
	}
	l.procs = append(l.procs, p)
	t, err := newTarget(ctx, "node-oidc-provider", "node-oidc-provider "+l.cfg.nodeVersion, p, fmt.Sprintf("http://127.0.0.1:%d", port))
	if err != nil {
		return nil, err
	}
	t.app, t.sso = app, true
	t.ccOpaque = &ccRequest{app: app, form: url.Values{"grant_type": {"client_credentials"}}}
	// A resource whose tokens are JWTs (server.mjs); without one, opaque.
	t.ccJWT = &ccRequest{app: app, form: url.Values{"grant_type": {"client_credentials"}, "resource": {"urn:gatehouse-bench:api"}, "scope": {"api"}}}
	// oidc-provider drops offline_access unless the app asks for consent.
	t.refreshExtra = url.Values{"prompt": {"consent"}}
	t.users = []account{{"bench", "any password"}} // its dev login takes any
	return t, nil
}

// startZitadel starts zitadel/oidc's example server (bench/peers/zitadel-example).
func (l *lab) startZitadel(ctx context.Context) (*target, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	p, err := startProc("zitadel-example", l.cfg.zitadel, nil, l.tmp, []string{
		"PORT=" + strconv.Itoa(port),
		"REDIRECT_URI=" + redirectURI,
	}, l.tmp)
	if err != nil {
		return nil, err
	}
	l.procs = append(l.procs, p)
	t, err := newTarget(ctx, "zitadel-example", "zitadel example "+l.cfg.zitadelVersion, p, fmt.Sprintf("http://127.0.0.1:%d/", port))
	if err != nil {
		return nil, err
	}
	// The example's clients and user (main.go there).
	t.app = client{ID: "web", Secret: "secret"}
	form := url.Values{"grant_type": {"client_credentials"}, "scope": {"openid"}}
	t.ccOpaque = &ccRequest{app: client{ID: "sid1", Secret: "verysecret"}, form: form}
	t.ccJWT = &ccRequest{app: client{ID: "sid-jwt", Secret: "verysecret"}, form: form}
	t.users = []account{{"test-user@127.0.0.1", "verysecure"}}
	return t, nil // no SSO session: its login page comes up on every authorization request
}

// supportsPerClientAlg tells whether this gatehouse has per-client ID token
// algorithms (`clients create --id-token-signing-alg`).
func supportsPerClientAlg(bin string) bool {
	out, err := exec.Command(bin, "clients", "create", "--help").CombinedOutput()
	return err == nil && bytes.Contains(out, []byte("--id-token-signing-alg"))
}

var errSkipped = errors.New("skipped")
