// Command load drives an already running Gatehouse with concurrent workers
// for a fixed time against one endpoint, and prints the request rate, latency
// percentiles and the error count. bench/run.sh starts a server and runs it
// for every target; see bench/README.md.
//
//	go run ./bench/load -issuer http://127.0.0.1:8080 -target client_credentials \
//	    -client-id ID -client-secret SECRET -c 16 -d 10s
package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// maxDuration caps -d: this is a benchmark, not a soak test.
const maxDuration = 60 * time.Second

var targets = []string{"discovery", "jwks", "client_credentials", "introspect"}

type options struct {
	issuer, target         string
	clientID, clientSecret string
	clientJSON             string
	token, scope           string
	label                  string
	workers                int
	duration, warmup       time.Duration
	row                    bool
}

func main() {
	var o options
	flag.StringVar(&o.issuer, "issuer", "", "issuer URL of the running server (required)")
	flag.StringVar(&o.target, "target", "discovery", "endpoint: "+strings.Join(targets, ", "))
	flag.StringVar(&o.clientID, "client-id", "", "client ID (client_credentials, introspect)")
	flag.StringVar(&o.clientSecret, "client-secret", "", "client secret (client_credentials, introspect)")
	flag.StringVar(&o.clientJSON, "client-json", "", "file with the output of `gatehouse clients create --json`, instead of -client-id/-client-secret")
	flag.StringVar(&o.token, "token", "", "access token to introspect (default: one from client_credentials)")
	flag.StringVar(&o.scope, "scope", "api", "scope for client_credentials")
	flag.IntVar(&o.workers, "c", 16, "concurrent workers")
	flag.DurationVar(&o.duration, "d", 10*time.Second, "measured duration (at most 60s)")
	flag.DurationVar(&o.warmup, "warmup", time.Second, "unmeasured warm-up before the measured duration")
	flag.BoolVar(&o.row, "row", false, "print one Markdown table row instead of a report")
	flag.StringVar(&o.label, "label", "", "name of the row (default: the target)")
	flag.Parse()
	if err := run(o, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "load:", err)
		os.Exit(1)
	}
}

func run(o options, out io.Writer) error {
	if err := o.check(); err != nil {
		return err
	}
	hc := &http.Client{
		Timeout: 10 * time.Second,
		Transport: &http.Transport{
			MaxIdleConns:        o.workers,
			MaxIdleConnsPerHost: o.workers,
			IdleConnTimeout:     30 * time.Second,
			DisableCompression:  true,
		},
	}
	newReq, err := o.requestFunc(hc)
	if err != nil {
		return err
	}
	if o.warmup > 0 {
		drive(hc, newReq, o.workers, o.warmup)
	}
	res := drive(hc, newReq, o.workers, o.duration)
	if o.row {
		fmt.Fprintln(out, res.row(o))
	} else {
		res.report(out, o)
	}
	if res.errors > 0 && res.ok == 0 {
		return fmt.Errorf("every request failed; first error: %v", res.firstErr)
	}
	return nil
}

func (o *options) check() error {
	if o.issuer == "" {
		return errors.New("-issuer is required")
	}
	u, err := url.Parse(o.issuer)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("-issuer %q: an absolute http(s) URL", o.issuer)
	}
	o.issuer = strings.TrimRight(o.issuer, "/")
	if !slices.Contains(targets, o.target) {
		return fmt.Errorf("-target %q: use one of %s", o.target, strings.Join(targets, ", "))
	}
	if o.workers < 1 || o.workers > 1024 {
		return fmt.Errorf("-c %d: between 1 and 1024", o.workers)
	}
	if o.duration <= 0 {
		return fmt.Errorf("-d %v: must be positive", o.duration)
	}
	if o.duration > maxDuration {
		fmt.Fprintf(os.Stderr, "load: -d %v capped at %v\n", o.duration, maxDuration)
		o.duration = maxDuration
	}
	o.warmup = min(max(o.warmup, 0), 10*time.Second)
	if o.clientJSON != "" {
		raw, err := os.ReadFile(o.clientJSON)
		if err != nil {
			return err
		}
		var c struct {
			ClientID     string `json:"client_id"`
			ClientSecret string `json:"client_secret"`
		}
		if err := json.Unmarshal(raw, &c); err != nil {
			return fmt.Errorf("-client-json %s: %w", o.clientJSON, err)
		}
		o.clientID, o.clientSecret = c.ClientID, c.ClientSecret
	}
	if (o.target == "client_credentials" || o.target == "introspect") && (o.clientID == "" || o.clientSecret == "") {
		return fmt.Errorf("-target %s needs -client-id and -client-secret (or -client-json)", o.target)
	}
	return nil
}

// requestFunc returns a builder of one request for the target (a fresh
// request each time: a body is read once).
func (o *options) requestFunc(hc *http.Client) (func() *http.Request, error) {
	switch o.target {
	case "discovery":
		return get(o.issuer + "/.well-known/openid-configuration"), nil
	case "jwks":
		return get(o.issuer + "/keys"), nil
	case "client_credentials":
		return o.post("/oauth/token", url.Values{"grant_type": {"client_credentials"}, "scope": {o.scope}}), nil
	default: // introspect
		token := o.token
		if token == "" {
			var err error
			if token, err = o.fetchToken(hc); err != nil {
				return nil, fmt.Errorf("get a token to introspect: %w", err)
			}
		}
		return o.post("/oauth/introspect", url.Values{"token": {token}}), nil
	}
}

func get(u string) func() *http.Request {
	return func() *http.Request {
		req, _ := http.NewRequest(http.MethodGet, u, nil)
		return req
	}
}

// post sends form as the client, with client_secret_basic (RFC 6749 §2.3.1
// form-encodes the credentials before base64).
func (o *options) post(path string, form url.Values) func() *http.Request {
	u, body := o.issuer+path, form.Encode()
	return func() *http.Request {
		req, _ := http.NewRequest(http.MethodPost, u, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.SetBasicAuth(url.QueryEscape(o.clientID), url.QueryEscape(o.clientSecret))
		return req
	}
}

func (o *options) fetchToken(hc *http.Client) (string, error) {
	req := o.post("/oauth/token", url.Values{"grant_type": {"client_credentials"}, "scope": {o.scope}})()
	resp, err := hc.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("token endpoint: status %d: %.200s", resp.StatusCode, body)
	}
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	if err := json.Unmarshal(body, &tok); err != nil || tok.AccessToken == "" {
		return "", fmt.Errorf("token endpoint: no access_token in %.200s", body)
	}
	return tok.AccessToken, nil
}

// result is what the workers measured.
type result struct {
	elapsed   time.Duration
	ok        int
	errors    int
	firstErr  error
	latencies []time.Duration // successful requests, sorted
}

// drive runs workers for d, each sending one request after the other. At the
// end no new request starts, and the ones in flight finish (and count):
// cancelling them would measure disconnects rather than the server.
func drive(hc *http.Client, newReq func() *http.Request, workers int, d time.Duration) result {
	var stop atomic.Bool
	timer := time.AfterFunc(d, func() { stop.Store(true) })
	defer timer.Stop()
	type share struct {
		lat      []time.Duration
		errors   int
		firstErr error
	}
	shares := make([]share, workers)
	var wg sync.WaitGroup
	start := time.Now()
	for i := range shares {
		s := &shares[i]
		s.lat = make([]time.Duration, 0, 4096)
		wg.Go(func() {
			for !stop.Load() {
				t0 := time.Now()
				if err := send(hc, newReq()); err != nil {
					s.errors++
					if s.firstErr == nil {
						s.firstErr = err
					}
					continue
				}
				s.lat = append(s.lat, time.Since(t0))
			}
		})
	}
	wg.Wait()
	res := result{elapsed: time.Since(start)}
	for _, s := range shares {
		res.latencies = append(res.latencies, s.lat...)
		res.errors += s.errors
		if res.firstErr == nil {
			res.firstErr = s.firstErr
		}
	}
	res.ok = len(res.latencies)
	slices.Sort(res.latencies)
	return res
}

func send(hc *http.Client, req *http.Request) error {
	resp, err := hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("status %d: %.200s", resp.StatusCode, body)
	}
	return nil
}

// percentile of sorted latencies (nearest rank).
func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(p/100*float64(len(sorted))+0.5) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}

func (r result) rate() float64 { return float64(r.ok) / r.elapsed.Seconds() }

func (r result) report(w io.Writer, o options) {
	fmt.Fprintf(w, "target      %s (%s)\n", o.target, o.issuer)
	fmt.Fprintf(w, "workers     %d for %v\n", o.workers, o.duration)
	fmt.Fprintf(w, "requests    %d ok, %d errors\n", r.ok, r.errors)
	fmt.Fprintf(w, "throughput  %.0f requests/s\n", r.rate())
	fmt.Fprintf(w, "latency     p50 %v  p90 %v  p99 %v  max %v\n",
		ms(percentile(r.latencies, 50)), ms(percentile(r.latencies, 90)),
		ms(percentile(r.latencies, 99)), ms(percentile(r.latencies, 100)))
	if r.firstErr != nil {
		fmt.Fprintf(w, "first error %v\n", r.firstErr)
	}
}

// row is one line of the table bench/run.sh prints.
func (r result) row(o options) string {
	label := o.label
	if label == "" {
		label = o.target
	}
	return fmt.Sprintf("| %s | %d | %v | %d | %.0f | %v | %v | %v | %d |",
		label, o.workers, o.duration, r.ok, r.rate(),
		ms(percentile(r.latencies, 50)), ms(percentile(r.latencies, 90)), ms(percentile(r.latencies, 99)), r.errors)
}

// ms rounds a latency for display.
func ms(d time.Duration) time.Duration {
	switch {
	case d >= 10*time.Millisecond:
		return d.Round(100 * time.Microsecond)
	case d >= time.Millisecond:
		return d.Round(10 * time.Microsecond)
	default:
		return d.Round(time.Microsecond)
	}
}
