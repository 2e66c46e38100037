package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/net/html"

	"github.com/gatehouse-id/gatehouse/storage/postgres/pgtest"
)

// testServer is a real Gatehouse (the same wiring as `gatehouse serve`)
// listening on a loopback port, with the CLI bound to the same settings.
type testServer struct {
	t      testing.TB
	issuer string
	env    map[string]string
	app    *app
	clock  *testClock
	// metricsURL is the metrics listener's base URL, when the test set
	// GATEHOUSE_METRICS_ADDR.
	metricsURL string
}

// testClock is real time plus an offset the test can move forward, so expiry
// and grace windows are tested without sleeping.
type testClock struct{ offset atomic.Int64 }

func (c *testClock) now() time.Time          { return time.Now().Add(time.Duration(c.offset.Load())) }
func (c *testClock) advance(d time.Duration) { c.offset.Add(int64(d)) }

// backends lists the stores the end-to-end tests run on. PostgreSQL is
// skipped with a reason when not reachable, unless CI=true (then it fails).
var backends = []string{"sqlite", "postgres"}

func startServer(t testing.TB, backend string, extra map[string]string) *testServer {
	t.Helper()
	return startServerLogging(t, backend, extra, nil)
}

// startServerLogging is startServer whose log also goes to logw, for a test
// that reads what the server logged.
func startServerLogging(t testing.TB, backend string, extra map[string]string, logw io.Writer) *testServer {
	t.Helper()
	ln := listenLoopback(t)
	vars := serverVars(t, "http://"+ln.Addr().String(), nil)
	useBackend(t, backend, vars)
	for k, v := range extra {
		vars[k] = v
	}
	return startServerOn(t, ln, vars, logw)
}

// useBackend points vars at a new PostgreSQL database when backend is
// "postgres" (with the master secret such a store needs); "sqlite" keeps the
// data directory's file.
func useBackend(t testing.TB, backend string, vars map[string]string) {
	t.Helper()
	if backend == "postgres" {
		vars["DATABASE_URL"] = pgtest.URL(t)
		vars["GATEHOUSE_SECRET"] = testSecret
	}
}

func (ts *testServer) getenv(k string) string { return ts.env[k] }

// testLogWriter sends server logs to the test log.
type testLogWriter struct{ t testing.TB }

func (w testLogWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// cli runs a gatehouse command against the server's store and returns stdout;
// a non-zero exit fails the test.
func (ts *testServer) cli(stdin string, args ...string) string {
	ts.t.Helper()
	out, errOut, code := runCLI(ts.getenv, stdin, args...)
	if code != 0 {
		ts.t.Fatalf("gatehouse %s: exit %d: %s", strings.Join(args, " "), code, errOut)
	}
	return out
}

func runCLI(getenv func(string) string, stdin string, args ...string) (stdout, stderr string, code int) {
	var o, e bytes.Buffer
	code = run(context.Background(), args, strings.NewReader(stdin), &o, &e, getenv)
	return o.String(), e.String(), code
}

type createdClient struct {
	ClientID     string   `json:"client_id"`
	ClientSecret string   `json:"client_secret"`
	RedirectURIs []string `json:"redirect_uris"`
	postAuth     bool     // registered for client_secret_post
}

func (ts *testServer) createClient(args ...string) createdClient {
	ts.t.Helper()
	var c createdClient
	out := ts.cli("", append([]string{"clients", "create", "--json"}, args...)...)
	if err := json.Unmarshal([]byte(out), &c); err != nil {
		ts.t.Fatalf("clients create --json printed %q: %v", out, err)
	}
	c.postAuth = strings.Contains(strings.Join(args, " "), "--auth-method client_secret_post")
	return c
}

type createdUser struct {
	ID            string `json:"id"`
	Email         string `json:"email"`
	Role          string `json:"role"`
	EmailVerified bool   `json:"email_verified"`
}

func (ts *testServer) createUser(email, password string, args ...string) createdUser {
	ts.t.Helper()
	var u createdUser
	out := ts.cli(password+"\n", append([]string{"users", "create", "--json", "--email", email, "--name", "Test User", "--password-stdin"}, args...)...)
	if err := json.Unmarshal([]byte(out), &u); err != nil {
		ts.t.Fatalf("users create --json printed %q: %v", out, err)
	}
	return u
}

// browser is an HTTP client with a cookie jar that follows redirects within
// Gatehouse and stops at the first redirect to a client's redirect URI.
type browser struct {
	t      *testing.T
	client *http.Client
	issuer string
	// header is added to every request (a User-Agent, an X-Forwarded-For);
	// Go's client repeats it on the redirects it follows.
	header http.Header
}

func newBrowser(t *testing.T, issuer string) *browser {
	jar, _ := cookiejar.New(nil)
	b := &browser{t: t, issuer: issuer}
	b.client = &http.Client{
		Jar:     jar,
		Timeout: 30 * time.Second,
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if !strings.HasPrefix(req.URL.String(), issuer+"/") {
				return http.ErrUseLastResponse // leaving Gatehouse: hand the redirect to the test
			}
			if len(via) > 10 {
				return fmt.Errorf("too many redirects")
			}
			return nil
		},
	}
	return b
}

// page is a response with its body read.
type page struct {
	status   int
	location *url.URL // for a redirect out of Gatehouse
	url      *url.URL
	header   http.Header
	body     string
}

func (b *browser) do(req *http.Request) *page {
	b.t.Helper()
	for k, v := range b.header {
		req.Header[k] = v
	}
	resp, err := b.client.Do(req)
	if err != nil {
		b.t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	p := &page{status: resp.StatusCode, url: resp.Request.URL, header: resp.Header, body: string(body)}
	if loc := resp.Header.Get("Location"); loc != "" && resp.StatusCode >= 300 && resp.StatusCode < 400 {
		p.location, _ = resp.Request.URL.Parse(loc)
	}
	return p
}

func (b *browser) get(u string) *page {
	b.t.Helper()
	req, err := http.NewRequest(http.MethodGet, u, nil)
	if err != nil {
		b.t.Fatal(err)
	}
	return b.do(req)
}

// submit fills the first POST form of p with fields and submits it, the way a
// browser would (same-origin, with the hidden fields the page carries).
func (b *browser) submit(p *page, fields map[string]string) *page {
	b.t.Helper()
	action, values := parseForm(b.t, p)
	for k, v := range fields {
		values.Set(k, v)
	}
	target, err := p.url.Parse(action)
	if err != nil {
		b.t.Fatal(err)
	}
	req, err := http.NewRequest(http.MethodPost, target.String(), strings.NewReader(values.Encode()))
	if err != nil {
		b.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", b.issuer)
	return b.do(req)
}

// parseForm returns the action and the fields of the first POST form,
// including the value of a submit button named "action" if the test sets it.
func parseForm(t *testing.T, p *page) (string, url.Values) {
	t.Helper()
	doc, err := html.Parse(strings.NewReader(p.body))
	if err != nil {
		t.Fatal(err)
	}
	var action string
	var found bool
	values := url.Values{}
	var walk func(n *html.Node, inForm bool)
	walk = func(n *html.Node, inForm bool) {
		if n.Type == html.ElementNode && n.Data == "form" && !found && strings.EqualFold(attr(n, "method"), "post") {
			found, inForm = true, true
			action = attr(n, "action")
			for c := n.FirstChild; c != nil; c = c.NextSibling {
				walk(c, true)
			}
			return
		}
		if inForm && n.Type == html.ElementNode && attr(n, "name") != "" {
			switch n.Data {
			case "input":
				typ := attr(n, "type")
				if (typ != "submit" && typ != "checkbox" && typ != "radio") || hasAttr(n, "checked") {
					values.Set(attr(n, "name"), attr(n, "value"))
				}
			case "textarea":
				if n.FirstChild != nil {
					values.Set(attr(n, "name"), n.FirstChild.Data)
				} else {
					values.Set(attr(n, "name"), "")
				}
			case "select":
				values.Set(attr(n, "name"), selectedOption(n))
			}
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			walk(c, inForm)
		}
	}
	walk(doc, false)
	if !found {
		t.Fatalf("no POST form on %s (status %d):\n%s", p.url, p.status, p.body)
	}
	if action == "" {
		action = p.url.String()
	}
	return action, values
}

// hasAttr reports whether n has the attribute key (such as checked).
func hasAttr(n *html.Node, key string) bool {
	for _, a := range n.Attr {
		if a.Key == key {
			return true
		}
	}
	return false
}

// selectedOption is the value a select sends: its selected option's, else
// its first option's.
func selectedOption(sel *html.Node) string {
	first, chosen := "", ""
	var walk func(n *html.Node)
	walk = func(n *html.Node) {
		if n.Type == html.ElementNode && n.Data == "option" {
			if first == "" {
				first = attr(n, "value")
			}
			if chosen == "" && hasAttr(n, "selected") {
				chosen = attr(n, "value")
			}
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			walk(c)
		}
	}
	walk(sel)
	if chosen != "" {
		return chosen
	}
	return first
}

func attr(n *html.Node, key string) string {
	for _, a := range n.Attr {
		if a.Key == key {
			return a.Val
		}
	}
	return ""
}

func randomString(t *testing.T) string {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

// postForm sends a form POST with optional Basic client credentials.
func postForm(t *testing.T, endpoint string, form url.Values, basicUser, basicPass string) (int, http.Header, map[string]any) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, endpoint, strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if basicUser != "" {
		req.SetBasicAuth(url.QueryEscape(basicUser), url.QueryEscape(basicPass))
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	var m map[string]any
	if len(body) > 0 && json.Unmarshal(body, &m) != nil {
		t.Fatalf("POST %s: status %d, body is not JSON: %q", endpoint, resp.StatusCode, body)
	}
	return resp.StatusCode, resp.Header, m
}

func tempFile(t *testing.T, name, content string) string {
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}
