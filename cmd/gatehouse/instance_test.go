package main

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// startServerOn is startServer with the listener, the settings and an extra
// log destination chosen by the test: several instances behind one issuer,
// or a test that reads what the server logged. vars are complete (see
// serverVars); logw may be nil.
func startServerOn(t testing.TB, ln net.Listener, vars map[string]string, logw io.Writer) *testServer {
	t.Helper()
	ts := &testServer{t: t, issuer: vars["GATEHOUSE_ISSUER"], env: vars, clock: &testClock{}}
	cfg, err := loadConfig(newRootCmd(&env{getenv: ts.getenv}).PersistentFlags(), ts.getenv)
	if err != nil {
		t.Fatal(err)
	}
	var w io.Writer = testLogWriter{t}
	if logw != nil {
		w = io.MultiWriter(w, logw)
	}
	ctx, cancel := context.WithCancel(context.Background())
	a, err := newApp(ctx, cfg, newLogger(cfg, w), ts.clock.now)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	ts.app = a
	// The metrics listener only when the test asks for one: the default
	// address is fixed, and tests run side by side.
	var metricsLn net.Listener
	if _, asked := vars["GATEHOUSE_METRICS_ADDR"]; asked && cfg.MetricsAddr != "" {
		if metricsLn, err = net.Listen("tcp", cfg.MetricsAddr); err != nil {
			cancel()
			a.close()
			t.Fatal(err)
		}
		ts.metricsURL = "http://" + metricsLn.Addr().String()
	}
	done := make(chan error, 1)
	go func() { done <- a.serve(ctx, ln, metricsLn) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
		a.close()
	})
	return ts
}

// serverVars are startServer's settings for an instance with the given
// issuer, plus extra.
func serverVars(t testing.TB, issuer string, extra map[string]string) map[string]string {
	vars := map[string]string{
		"GATEHOUSE_ISSUER":          issuer,
		"GATEHOUSE_DATA_DIR":        t.TempDir(),
		"GATEHOUSE_LOG_LEVEL":       "warn",
		"GATEHOUSE_PASSWORD_HASHER": "argon2id",
		// The suites sign the same users in many times a minute; the rate-limit
		// tests set their own limits.
		"GATEHOUSE_RATE_LOGIN_EMAIL": "1000/1m",
		"GATEHOUSE_RATE_LOGIN_IP":    "1000/1m",
		// Many servers share a test process, and low-priority hashing (the
		// default on Linux) raises the process's GOMAXPROCS for its server:
		// concurrent servers would raise it on each other's raise.
		// TestLowPriorityHashing and the benchmarks (one server at a time)
		// run it.
		"GATEHOUSE_PASSWORD_HASH_PRIORITY": "normal",
	}
	for k, v := range extra {
		vars[k] = v
	}
	return vars
}

func listenLoopback(t testing.TB) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return ln
}

// testSecret is the master secret instances on a shared database are given.
const testSecret = "test-secret-0123456789-0123456789-abcdef"

// requireRedis returns the test Redis URL (GATEHOUSE_TEST_REDIS_URL, default
// the local server), skipping the test when Redis does not answer — failing
// it under CI=true.
func requireRedis(t *testing.T) (redisURL, addr string) {
	t.Helper()
	redisURL = os.Getenv("GATEHOUSE_TEST_REDIS_URL")
	if redisURL == "" {
		redisURL = "redis://127.0.0.1:6379/0"
	}
	opt, err := redis.ParseURL(redisURL)
	if err != nil {
		t.Fatalf("GATEHOUSE_TEST_REDIS_URL: %v", err)
	}
	rc := redis.NewClient(opt)
	defer rc.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := rc.Ping(ctx).Err(); err != nil {
		if ci, _ := strconv.ParseBool(os.Getenv("CI")); ci {
			t.Fatalf("Redis at %s is unreachable (CI=true): %v", opt.Addr, err)
		}
		t.Skipf("Redis at %s is unreachable, skipping (set GATEHOUSE_TEST_REDIS_URL): %v", opt.Addr, err)
	}
	return redisURL, opt.Addr
}

// syncBuffer collects a server log for a test to read while it runs.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// switchProxy is the one address (the issuer) in front of several instances,
// the way a load balancer is: it sends every request to the instance the test
// chose last, marks the response with that instance's name and remembers
// which instance served what.
type switchProxy struct {
	url      string
	backends map[string]*url.URL
	current  atomic.Value // string: the name of the instance requests go to

	mu     sync.Mutex
	served []string // "<instance> <method> <path>"
}

func startSwitchProxy(t *testing.T, ln net.Listener) *switchProxy {
	t.Helper()
	p := &switchProxy{url: "http://" + ln.Addr().String(), backends: map[string]*url.URL{}}
	rp := &httputil.ReverseProxy{
		Rewrite: func(r *httputil.ProxyRequest) {
			name := p.current.Load().(string)
			r.SetURL(p.backends[name])
			r.Out.Host = r.In.Host // the instance sees the issuer's host, as behind a balancer
			p.mu.Lock()
			p.served = append(p.served, name+" "+r.In.Method+" "+r.In.URL.Path)
			p.mu.Unlock()
			r.Out.Header.Set("X-Test-Instance", name) // read back by ModifyResponse
		},
		ModifyResponse: func(resp *http.Response) error {
			resp.Header.Set("X-Test-Instance", resp.Request.Header.Get("X-Test-Instance"))
			return nil
		},
	}
	srv := &http.Server{Handler: rp, ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return p
}

// add registers an instance listening on addr under name.
func (p *switchProxy) add(name, addr string) {
	p.backends[name] = &url.URL{Scheme: "http", Host: addr}
}

// use sends the following requests to the named instance.
func (p *switchProxy) use(name string) { p.current.Store(name) }

// servedSince returns what was served after the first n requests, and the new n.
func (p *switchProxy) servedSince(n int) ([]string, int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.served[n:]...), len(p.served)
}

// servedBy says whether every request in log that is "<method> <path>"
// went to instance name, and at least one did.
func servedBy(log []string, name, request string) bool {
	seen := false
	for _, l := range log {
		inst, req, _ := strings.Cut(l, " ")
		if req == request {
			if inst != name {
				return false
			}
			seen = true
		}
	}
	return seen
}
