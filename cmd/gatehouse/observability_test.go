package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/gatehouse-id/gatehouse/internal/emailhash"
	"github.com/gatehouse-id/gatehouse/keys"
	"github.com/gatehouse-id/gatehouse/login/mail/mailtest"
)

// scrape reads the server's /metrics from its metrics listener.
func scrape(t *testing.T, ts *testServer) map[string]*dto.MetricFamily {
	t.Helper()
	if ts.metricsURL == "" {
		t.Fatal("the server has no metrics listener (set GATEHOUSE_METRICS_ADDR)")
	}
	resp, err := http.Get(ts.metricsURL + "/metrics")
	if err != nil {
		t.Fatalf("GET /metrics: %v", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /metrics: status %d", resp.StatusCode)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("parse /metrics: %v", err)
	}
	return fams
}

// metricSum is the sum of the counter, gauge or histogram-count values of
// name's series whose labels include want; ok is false when no series
// matches.
func metricSum(fams map[string]*dto.MetricFamily, name string, want map[string]string) (sum float64, ok bool) {
	f := fams[name]
	if f == nil {
		return 0, false
	}
series:
	for _, m := range f.GetMetric() {
		have := map[string]string{}
		for _, l := range m.GetLabel() {
			have[l.GetName()] = l.GetValue()
		}
		for k, v := range want {
			if have[k] != v {
				continue series
			}
		}
		ok = true
		switch {
		case m.Counter != nil:
			sum += m.GetCounter().GetValue()
		case m.Gauge != nil:
			sum += m.GetGauge().GetValue()
		case m.Histogram != nil:
			sum += float64(m.GetHistogram().GetSampleCount())
		case m.Untyped != nil:
			sum += m.GetUntyped().GetValue()
		}
	}
	return sum, ok
}

type series struct {
	name   string
	labels map[string]string
}

func l(kv ...string) map[string]string {
	m := map[string]string{}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return m
}

// TestMetrics drives every counted path through the real server — a sign-in,
// a wrong password, a lockout, a rate-limited sign-in, a registration with
// its verification mail over SMTP, a code exchange, a refresh and a refresh
// reuse — then reads /metrics from the metrics listener and checks that
// each counter moved by exactly what was driven, on both stores.
func TestMetrics(t *testing.T) {
	for _, backend := range backends {
		t.Run(backend, func(t *testing.T) {
			smtp := mailtest.NewServer(t)
			ts := startServer(t, backend, map[string]string{
				"SMTP_URL":                    smtp.URL(),
				"GATEHOUSE_METRICS_ADDR":      "127.0.0.1:0",
				"GATEHOUSE_LOCKOUT_THRESHOLD": "3",
				"GATEHOUSE_RATE_LOGIN_EMAIL":  "4/1h",
			})
			app := ts.createClient("--name", "App", "--redirect-uri", redirectA)
			ts.createUser("alice@example.com", testPassword)
			ts.createUser("frank@example.com", testPassword)
			before := scrape(t, ts)

			// A sign-in, its code exchange, a refresh and a reuse of the
			// rotated refresh token once the grace window has passed.
			r := newRP(t, ts, app)
			b := newBrowser(t, ts.issuer)
			ar, code := r.signIn(b, "alice@example.com", testPassword)
			first := r.exchange(ar, code)
			if _, err := r.refresh(first.token.RefreshToken); err != nil {
				t.Fatalf("refresh: %v", err)
			}
			ts.clock.advance(11 * time.Second)
			if _, err := r.refresh(first.token.RefreshToken); !isOAuthError(err, "invalid_grant") {
				t.Fatalf("reused refresh token: %v, want invalid_grant", err)
			}

			// A wrong password; then frank: three wrong (the third locks),
			// the right one refused as locked, and a fifth try over the
			// per-email rate limit of 4 an hour.
			b2 := newBrowser(t, ts.issuer)
			wrong := func(email, pw, want string) {
				t.Helper()
				p := b2.submit(b2.get(r.authURL().url), map[string]string{"email": email, "password": pw})
				if !strings.Contains(p.body, want) {
					t.Fatalf("%s: status %d, page lacks %q", email, p.status, want)
				}
			}
			wrong("alice@example.com", "Wrong-Passw0rd", "Invalid email or password.")
			wrong("frank@example.com", "Wrong-Passw0rd", "Invalid email or password.")
			wrong("frank@example.com", "Wrong-Passw0rd", "Invalid email or password.")
			wrong("frank@example.com", "Wrong-Passw0rd", "temporarily locked")
			wrong("frank@example.com", testPassword, "temporarily locked")
			wrong("frank@example.com", testPassword, "Too many attempts")

			// A registration, whose verification mail goes out over SMTP.
			b3 := newBrowser(t, ts.issuer)
			p := b3.followLink(b3.get(r.authURL().url), "Create account")
			p = b3.submit(p, map[string]string{"name": "Dana", "email": "dana@example.com", "password": "Fresh-Start-42"})
			if q := r.callbackParams(p); q.Get("code") == "" {
				t.Fatalf("registration did not come back with a code: %v", q)
			}
			waitMail(t, smtp, "dana@example.com")

			// An unknown path, which must not become a label of its own.
			if resp, err := http.Get(ts.issuer + "/no/such/page-8f3a"); err != nil {
				t.Fatal(err)
			} else {
				resp.Body.Close()
			}
			// A static file: its pattern, not its path.
			if resp, err := http.Get(ts.issuer + "/static/style.css"); err != nil || resp.StatusCode != http.StatusOK {
				t.Fatalf("GET /static/style.css: %v %v", resp, err)
			} else {
				resp.Body.Close()
			}

			// The mail counter moves when the SMTP conversation ends, just
			// after the message arrived, and a request is counted after its
			// response went out (the client may scrape first): wait for the
			// mail and for the last requests made.
			moved := func(m map[string]*dto.MetricFamily, name string, labels map[string]string) bool {
				was, _ := metricSum(before, name, labels)
				now, ok := metricSum(m, name, labels)
				return ok && now > was
			}
			var after map[string]*dto.MetricFamily
			deadline := time.Now().Add(10 * time.Second)
			for {
				after = scrape(t, ts)
				done := moved(after, "gatehouse_mail_sent_total", l("kind", "verify_email")) &&
					moved(after, "gatehouse_http_requests_total", l("route", "/static/*", "method", "GET", "code", "200")) &&
					moved(after, "gatehouse_http_requests_total", l("route", "unmatched", "method", "GET", "code", "404"))
				if done || time.Now().After(deadline) {
					break
				}
				time.Sleep(20 * time.Millisecond) // polling a condition, with a deadline
			}

			for _, c := range []struct {
				s    series
				want float64
			}{
				{series{"gatehouse_signins_total", l("outcome", "success")}, 1},
				{series{"gatehouse_signins_total", l("outcome", "invalid")}, 4},
				{series{"gatehouse_signins_total", l("outcome", "locked")}, 1},
				{series{"gatehouse_signins_total", l("outcome", "rate_limited")}, 1},
				{series{"gatehouse_signins_total", l("outcome", "unverified")}, 0},
				{series{"gatehouse_lockouts_total", nil}, 1},
				{series{"gatehouse_registrations_total", nil}, 1},
				{series{"gatehouse_mail_sent_total", l("kind", "verify_email")}, 1},
				{series{"gatehouse_mail_failed_total", nil}, 0},
				{series{"gatehouse_tokens_issued_total", l("grant_type", "authorization_code", "kind", "access_opaque")}, 1},
				{series{"gatehouse_tokens_issued_total", l("grant_type", "authorization_code", "kind", "id")}, 1},
				{series{"gatehouse_tokens_issued_total", l("grant_type", "authorization_code", "kind", "refresh")}, 1},
				{series{"gatehouse_tokens_issued_total", l("grant_type", "refresh_token", "kind", "access_opaque")}, 1},
				{series{"gatehouse_tokens_issued_total", l("grant_type", "refresh_token", "kind", "id")}, 1},
				{series{"gatehouse_tokens_issued_total", l("grant_type", "refresh_token", "kind", "refresh")}, 1},
				{series{"gatehouse_tokens_issued_total", l("kind", "access_jwt")}, 0},
				{series{"gatehouse_refresh_token_reuse_total", nil}, 1},
				// No app here has a back-channel logout URI: the series are
				// there, at zero (backchannel_retry_test.go moves them).
				{series{"gatehouse_backchannel_logout_deliveries_total", l("outcome", "delivered")}, 0},
				{series{"gatehouse_backchannel_logout_deliveries_total", l("outcome", "retry")}, 0},
				{series{"gatehouse_backchannel_logout_deliveries_total", l("outcome", "given_up")}, 0},
				{series{"gatehouse_backchannel_logout_pending", nil}, 0},
				{series{"gatehouse_http_requests_total", l("route", "/oauth/token", "method", "POST", "code", "200")}, 2},
				{series{"gatehouse_http_requests_total", l("route", "/oauth/token", "method", "POST", "code", "400")}, 1},
				{series{"gatehouse_http_requests_total", l("route", "/login", "method", "POST")}, 7},
				{series{"gatehouse_http_requests_total", l("route", "/register", "method", "POST")}, 1},
				{series{"gatehouse_http_requests_total", l("route", "unmatched", "method", "GET", "code", "404")}, 1},
				{series{"gatehouse_http_requests_total", l("route", "/static/*", "method", "GET", "code", "200")}, 1},
				{series{"gatehouse_http_request_duration_seconds", l("route", "/oauth/token", "method", "POST")}, 3},
			} {
				was, _ := metricSum(before, c.s.name, c.s.labels)
				now, ok := metricSum(after, c.s.name, c.s.labels)
				if !ok {
					t.Errorf("%s%v: no such series", c.s.name, c.s.labels)
					continue
				}
				if now-was != c.want {
					t.Errorf("%s%v moved by %v, want %v", c.s.name, c.s.labels, now-was, c.want)
				}
			}
			// Each password check and hash waited for a hashing slot, and
			// each wait was measured: five checks (one right, four wrong),
			// the locked try (it takes its slot before the lockout is read,
			// so that a refusal as busy counts nothing, and then checks
			// nothing) and the new account's hash; the rate-limited try
			// stops before. The CLI's users create has its own hasher.
			was, _ := metricSum(before, "gatehouse_password_hash_wait_seconds", nil)
			if n, _ := metricSum(after, "gatehouse_password_hash_wait_seconds", nil); n-was != 7 {
				t.Errorf("password hash waits measured: %v, want 7", n-was)
			}
			// Route labels are patterns only: no raw path made it in.
			for _, m := range after["gatehouse_http_requests_total"].GetMetric() {
				for _, lp := range m.GetLabel() {
					if lp.GetName() == "route" && (strings.Contains(lp.GetValue(), "8f3a") || strings.Contains(lp.GetValue(), "style.css")) {
						t.Errorf("route label %q is a raw path", lp.GetValue())
					}
				}
			}
			// The runtime, the process and the store's connection pool.
			for _, s := range []series{{"go_goroutines", nil}, {"process_start_time_seconds", nil}} {
				if _, ok := metricSum(after, s.name, s.labels); !ok {
					t.Errorf("%s missing", s.name)
				}
			}
			pool := series{"go_sql_max_open_connections", l("db_name", "sqlite")}
			if backend == "postgres" {
				pool = series{"gatehouse_db_pool_max_conns", l("db", "postgres")}
				if n, _ := metricSum(after, "gatehouse_db_pool_acquires_total", nil); n <= 0 {
					t.Errorf("gatehouse_db_pool_acquires_total = %v after a sign-in", n)
				}
			}
			if n, ok := metricSum(after, pool.name, pool.labels); !ok || n <= 0 {
				t.Errorf("%s%v = %v (present %v), want the pool size", pool.name, pool.labels, n, ok)
			}
		})
	}
}

// jsonLines parses a JSON log.
func jsonLines(t *testing.T, log string) []map[string]any {
	var out []map[string]any
	sc := bufio.NewScanner(strings.NewReader(log))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("log line is not JSON: %q", sc.Text())
		}
		out = append(out, m)
	}
	return out
}

// clientFrom is an HTTP client whose connections come from the loopback
// address src (any of 127.0.0.0/8 works on Linux), so a test can be a
// trusted proxy (127.0.0.1) or an untrusted peer (127.0.0.2).
func clientFrom(src string) *http.Client {
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}, Timeout: 10 * time.Second}
	return &http.Client{
		Transport:     &http.Transport{DialContext: d.DialContext},
		Timeout:       30 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// TestAccessLog: one JSON access line per request with method, route,
// status, bytes, duration, client IP (trusted-proxy rules), client_id where
// known and the request ID; X-Request-Id kept from a trusted proxy only;
// probes at debug level; failed sign-ins and lockouts logged with the
// client IP and an email pseudonym, no address in clear anywhere.
func TestAccessLog(t *testing.T) {
	logs := &syncBuffer{}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	issuer := "http://" + ln.Addr().String()
	ts := startServerOn(t, ln, serverVars(t, issuer, map[string]string{
		"GATEHOUSE_LOG_LEVEL":         "info",
		"GATEHOUSE_LOG_FORMAT":        "json",
		"GATEHOUSE_TRUSTED_PROXIES":   "127.0.0.1/32",
		"GATEHOUSE_SECRET":            testSecret,
		"GATEHOUSE_LOCKOUT_THRESHOLD": "2",
	}), logs)
	app := ts.createClient("--name", "App", "--redirect-uri", redirectA)
	ts.createUser("erin@example.com", testPassword)

	proxy, direct := clientFrom("127.0.0.1"), clientFrom("127.0.0.2")
	if resp, err := direct.Get(issuer + "/healthz"); err != nil {
		t.Skipf("cannot connect from 127.0.0.2 (loopback aliases unavailable): %v", err)
	} else {
		resp.Body.Close()
	}

	type sent struct {
		route, method, clientIP, clientID string
		status                            int
		bytes                             int
		id                                string
	}
	var reqs []sent
	do := func(c *http.Client, req *http.Request, route, clientIP, clientID string) *http.Response {
		t.Helper()
		resp, err := c.Do(req)
		if err != nil {
			t.Fatalf("%s %s: %v", req.Method, req.URL, err)
		}
		var body bytes.Buffer
		_, _ = body.ReadFrom(resp.Body)
		resp.Body.Close()
		reqs = append(reqs, sent{route: route, method: req.Method, clientIP: clientIP, clientID: clientID,
			status: resp.StatusCode, bytes: body.Len(), id: resp.Header.Get("X-Request-Id")})
		return resp
	}
	get := func(u string, hdr ...string) *http.Request {
		req, err := http.NewRequest(http.MethodGet, u, nil)
		if err != nil {
			t.Fatal(err)
		}
		for i := 0; i+1 < len(hdr); i += 2 {
			req.Header.Set(hdr[i], hdr[i+1])
		}
		return req
	}

	// X-Request-Id and X-Forwarded-For believed from the trusted proxy…
	resp := do(proxy, get(issuer+"/.well-known/openid-configuration", "X-Request-Id", "edge-42.a_b", "X-Forwarded-For", "198.51.100.7"),
		"/.well-known/openid-configuration", "198.51.100.7", "")
	if got := resp.Header.Get("X-Request-Id"); got != "edge-42.a_b" {
		t.Errorf("request ID from a trusted proxy: got %q, want it kept", got)
	}
	// …but not a malformed one,
	resp = do(proxy, get(issuer+"/keys", "X-Request-Id", "bad id\tx"), "/keys", "127.0.0.1", "")
	if got := resp.Header.Get("X-Request-Id"); got == "bad id\tx" || len(got) != 16 {
		t.Errorf("malformed request ID from a proxy: got %q, want a fresh one", got)
	}
	// …and neither header from anyone else.
	resp = do(direct, get(issuer+"/login", "X-Request-Id", "forged-id", "X-Forwarded-For", "203.0.113.9"), "/login", "127.0.0.2", "")
	if got := resp.Header.Get("X-Request-Id"); got == "forged-id" || len(got) != 16 {
		t.Errorf("request ID from an untrusted peer: got %q, want a fresh one", got)
	}
	// An authorization request names its (registered) client.
	authz := issuer + "/authorize?" + url.Values{"client_id": {app.ClientID}, "redirect_uri": {redirectA},
		"response_type": {"code"}, "scope": {"openid"}, "state": {"s1"}, "nonce": {"n1"},
		"code_challenge": {"E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGzSGv5yHw"}, "code_challenge_method": {"S256"}}.Encode()
	do(direct, get(authz), "/authorize", "127.0.0.2", app.ClientID)
	// The token endpoint names the authenticated client (here refused: the
	// grant is bogus, but the client authenticated).
	form := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {"not-a-token"}}
	req, _ := http.NewRequest(http.MethodPost, issuer+"/oauth/token", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(app.ClientID, app.ClientSecret)
	do(direct, req, "/oauth/token", "127.0.0.2", app.ClientID)
	// An unknown path.
	do(direct, get(issuer+"/nothing/here"), "unmatched", "127.0.0.2", "")
	// A probe: served, but its line is at debug level, below this log's.
	probe := do(direct, get(issuer+"/healthz"), "", "", "")
	reqs = reqs[:len(reqs)-1]

	// Failed sign-ins (the second locks the address) and a refused one.
	r := newRP(t, ts, app)
	b := newBrowser(t, ts.issuer)
	for _, want := range []string{"Invalid email or password.", "temporarily locked", "temporarily locked"} {
		p := b.submit(b.get(r.authURL().url), map[string]string{"email": "Erin@Example.com", "password": "Wrong-Passw0rd"})
		if !strings.Contains(p.body, want) {
			t.Fatalf("failed sign-in: status %d, page lacks %q", p.status, want)
		}
	}

	// The access lines appear when each handler returns, before the client
	// has the whole answer: poll for the last one.
	var lines []map[string]any
	deadline := time.Now().Add(10 * time.Second)
	for {
		lines = jsonLines(t, logs.String())
		found := false
		for _, m := range lines {
			if m["msg"] == "sign-in refused: locked" {
				found = true
			}
		}
		if found || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond) // polling a condition, with a deadline
	}

	byID := map[string][]map[string]any{}
	for _, m := range lines {
		if m["msg"] == "http request" {
			id, _ := m["request_id"].(string)
			byID[id] = append(byID[id], m)
		}
	}
	for _, s := range reqs {
		got := byID[s.id]
		if len(got) != 1 {
			t.Errorf("%s %s (request %s): %d access lines, want 1", s.method, s.route, s.id, len(got))
			continue
		}
		m := got[0]
		want := map[string]any{"level": "INFO", "method": s.method, "route": s.route, "status": float64(s.status),
			"bytes": float64(s.bytes), "client_ip": s.clientIP}
		for k, v := range want {
			if m[k] != v {
				t.Errorf("%s %s: %s = %#v, want %#v (line %v)", s.method, s.route, k, m[k], v, m)
			}
		}
		if d, ok := m["duration_ms"].(float64); !ok || d < 0 {
			t.Errorf("%s %s: duration_ms = %#v", s.method, s.route, m["duration_ms"])
		}
		if id, _ := m["client_id"].(string); id != s.clientID {
			t.Errorf("%s %s: client_id = %q, want %q", s.method, s.route, id, s.clientID)
		}
	}
	if n := len(byID[probe.Header.Get("X-Request-Id")]); n != 0 {
		t.Errorf("/healthz logged at info level (%d lines): probes belong at debug", n)
	}

	// Failed sign-in and lockout lines: client IP and the keyed pseudonym.
	pseudonym := emailhash.New(keys.DeriveKey([]byte(testSecret), "log-email-pseudonym")).Sum("erin@example.com")
	for _, msg := range []string{"sign-in failed", "sign-in failed; address locked", "sign-in refused: locked"} {
		n := 0
		for _, m := range lines {
			if m["msg"] == msg {
				n++
				if m["email_hash"] != pseudonym || m["client_ip"] != "127.0.0.1" {
					t.Errorf("%q: email_hash %v (want %s), client_ip %v", msg, m["email_hash"], pseudonym, m["client_ip"])
				}
			}
		}
		if n != 1 {
			t.Errorf("%d lines %q, want 1", n, msg)
		}
	}
	all := strings.ToLower(logs.String())
	if strings.Contains(all, "erin@example.com") || strings.Contains(all, "erin%40example.com") {
		t.Errorf("the log holds the address in clear:\n%s", logs.String())
	}
}

// TestMetricsAddrOff: "off" disables the metrics listener (an empty
// environment variable means the default, so it cannot).
func TestMetricsAddrOff(t *testing.T) {
	vars := map[string]string{"GATEHOUSE_METRICS_ADDR": "off"}
	cfg, err := loadConfig(newRootCmd(&env{getenv: mapEnv(vars)}).PersistentFlags(), mapEnv(vars))
	if err != nil || cfg.MetricsAddr != "" {
		t.Fatalf("off: MetricsAddr %q, err %v", cfg.MetricsAddr, err)
	}
	vars = map[string]string{}
	if cfg, err = loadConfig(newRootCmd(&env{getenv: mapEnv(vars)}).PersistentFlags(), mapEnv(vars)); err != nil || cfg.MetricsAddr != "127.0.0.1:9464" {
		t.Fatalf("default: MetricsAddr %q, err %v", cfg.MetricsAddr, err)
	}
}

// TestMetricsHandlerPprof: the profiles are served only when enabled, and
// /metrics always.
func TestMetricsHandlerPprof(t *testing.T) {
	reg, err := newRegistry()
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	for _, on := range []bool{false, true} {
		h := metricsHandler(reg, log, on)
		for path, want := range map[string]int{"/metrics": 200, "/debug/pprof/": map[bool]int{false: 404, true: 200}[on]} {
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
			if rec.Code != want {
				t.Errorf("pprof %v: GET %s = %d, want %d", on, path, rec.Code, want)
			}
		}
	}
}
