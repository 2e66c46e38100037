package upstream

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"time"
)

// Options are what every connector shares.
type Options struct {
	// HTTPClient makes the outbound requests; nil ⇒ NewHTTPClient(0, 0).
	HTTPClient *http.Client
	Logger     *slog.Logger
	Now        func() time.Time
	// DiscoveryRetry is how long a failed OIDC discovery is remembered
	// before the next sign-in tries again; default 10 s.
	DiscoveryRetry time.Duration
}

func (o Options) withDefaults() Options {
	if o.HTTPClient == nil {
		o.HTTPClient = NewHTTPClient(0, 0)
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.DiscoveryRetry <= 0 {
		o.DiscoveryRetry = 10 * time.Second
	}
	return o
}

// Defaults of NewHTTPClient.
const (
	DefaultTimeout      = 10 * time.Second
	DefaultMaxBodyBytes = 1 << 20
)

// ErrBodyTooLarge is reading past the response size cap.
var ErrBodyTooLarge = errors.New("upstream response larger than the allowed size")

// NewHTTPClient returns the client for talking to upstreams: every request
// ends within timeout (connection, TLS, headers and body), redirects are not
// followed (an upstream endpoint that redirects is answered as an error, so
// a compromised or misconfigured upstream cannot point Gatehouse elsewhere),
// and a response body longer than maxBody bytes fails to read. Zero values
// mean DefaultTimeout and DefaultMaxBodyBytes.
func NewHTTPClient(timeout time.Duration, maxBody int64) *http.Client {
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	if maxBody <= 0 {
		maxBody = DefaultMaxBodyBytes
	}
	dialer := &net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}
	base := &http.Transport{
		Proxy:                  http.ProxyFromEnvironment,
		DialContext:            dialer.DialContext,
		TLSHandshakeTimeout:    5 * time.Second,
		ResponseHeaderTimeout:  timeout,
		MaxIdleConnsPerHost:    8,
		IdleConnTimeout:        90 * time.Second,
		MaxResponseHeaderBytes: 64 << 10,
	}
	return &http.Client{
		Timeout:   timeout,
		Transport: limitTransport{base: base, max: maxBody},
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}
}

// limitTransport caps every response body.
type limitTransport struct {
	base http.RoundTripper
	max  int64
}

func (t limitTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := t.base.RoundTrip(r)
	if err != nil {
		return nil, err
	}
	if resp.ContentLength > t.max {
		resp.Body.Close()
		return nil, fmt.Errorf("%s %s: %w (%d bytes announced)", r.Method, r.URL.Redacted(), ErrBodyTooLarge, resp.ContentLength)
	}
	resp.Body = &limitedBody{rc: resp.Body, left: t.max}
	return resp, nil
}

// limitedBody fails with ErrBodyTooLarge once more than its cap was read,
// instead of silently truncating (a truncated JSON document could still
// parse).
type limitedBody struct {
	rc   io.ReadCloser
	left int64
}

func (b *limitedBody) Read(p []byte) (int, error) {
	if b.left < 0 {
		return 0, ErrBodyTooLarge
	}
	if int64(len(p)) > b.left+1 {
		p = p[:b.left+1]
	}
	n, err := b.rc.Read(p)
	b.left -= int64(n)
	if b.left < 0 {
		return n, ErrBodyTooLarge
	}
	return n, err
}

func (b *limitedBody) Close() error { return b.rc.Close() }

// classify turns a transport or HTTP failure into an *Error: network
// errors, timeouts, oversize bodies and 5xx answers are Unavailable (worth a
// retry, not the user's fault); other statuses Invalid.
func classify(upstream, op string, status int, err error) *Error {
	if err != nil {
		return &Error{Kind: Unavailable, Upstream: upstream, Op: op, Err: err}
	}
	if status >= 500 || status == http.StatusTooManyRequests {
		return &Error{Kind: Unavailable, Upstream: upstream, Op: op, Err: fmt.Errorf("HTTP status %d", status)}
	}
	return &Error{Kind: Invalid, Upstream: upstream, Op: op, Err: fmt.Errorf("HTTP status %d", status)}
}

// decodeJSON decodes the JSON answer body into v. A failure to read the
// body (the size cap, a timeout, a dropped connection) is the upstream's
// outage and Unavailable, like the same failure before the headers; a body
// that was read but is not the expected JSON is a malformed answer and
// Invalid. The decoder's own error cannot tell the two apart, so the reads
// are watched.
func decodeJSON(upstream, op string, body io.Reader, v any) error {
	rr := &readWatcher{r: body}
	if err := json.NewDecoder(rr).Decode(v); err != nil {
		if rr.err != nil {
			return classify(upstream, op, 0, fmt.Errorf("read: %w", rr.err))
		}
		return &Error{Kind: Invalid, Upstream: upstream, Op: op, Err: fmt.Errorf("decode: %w", err)}
	}
	return nil
}

// readWatcher remembers the first read error other than io.EOF.
type readWatcher struct {
	r   io.Reader
	err error
}

func (w *readWatcher) Read(p []byte) (int, error) {
	n, err := w.r.Read(p)
	if err != nil && err != io.EOF && w.err == nil {
		w.err = err
	}
	return n, err
}
