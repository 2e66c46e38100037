package upstream

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// newServer starts h on 127.0.0.1 (httptest's default), closed when the
// test ends.
func newServer(t *testing.T, h http.Handler) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv
}

func TestHTTPClientNoRedirects(t *testing.T) {
	var hits atomic.Int32
	target := newServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		_, _ = io.WriteString(w, "followed")
	}))
	for _, status := range []int{http.StatusFound, http.StatusMovedPermanently, http.StatusTemporaryRedirect, http.StatusPermanentRedirect} {
		src := newServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, target.URL+"/elsewhere", status)
		}))
		c := NewHTTPClient(5*time.Second, 0)
		resp, err := c.Post(src.URL, "application/x-www-form-urlencoded", strings.NewReader("code=x"))
		if err != nil {
			t.Fatalf("%d: %v", status, err)
		}
		_ = resp.Body.Close()
		if resp.StatusCode != status {
			t.Errorf("status %d, want the redirect %d itself", resp.StatusCode, status)
		}
		if resp.Header.Get("Location") != target.URL+"/elsewhere" {
			t.Errorf("Location %q", resp.Header.Get("Location"))
		}
	}
	if n := hits.Load(); n != 0 {
		t.Errorf("redirect target fetched %d times", n)
	}
}

func TestHTTPClientBodyCap(t *testing.T) {
	const limit = 1000
	srv := newServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n, _ := strconv.Atoi(r.URL.Query().Get("n"))
		body := strings.Repeat("x", n)
		if r.URL.Query().Get("chunked") != "" {
			// Flushed in pieces before the end: no Content-Length.
			f := w.(http.Flusher)
			for i := 0; i < len(body); i += 100 {
				_, _ = io.WriteString(w, body[i:min(i+100, len(body))])
				f.Flush()
			}
			return
		}
		w.Header().Set("Content-Length", strconv.Itoa(n))
		_, _ = io.WriteString(w, body)
	}))
	c := NewHTTPClient(5*time.Second, limit)

	get := func(q string) (*http.Response, []byte, error) {
		t.Helper()
		resp, err := c.Get(srv.URL + "/?" + q)
		if err != nil {
			return nil, nil, err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		return resp, b, err
	}

	// Announced too large: refused before the body is read.
	if _, _, err := get("n=1001"); !errors.Is(err, ErrBodyTooLarge) {
		t.Errorf("Content-Length over the cap: err %v, want ErrBodyTooLarge", err)
	}
	// Streamed too large: fails while reading, rather than truncating.
	resp, b, err := get("n=5000&chunked=1")
	if resp != nil && resp.ContentLength != -1 {
		t.Fatalf("test server sent Content-Length %d; the chunked case needs none", resp.ContentLength)
	}
	if !errors.Is(err, ErrBodyTooLarge) {
		t.Errorf("chunked body over the cap: err %v, want ErrBodyTooLarge", err)
	}
	if len(b) > limit+1 {
		t.Errorf("read %d bytes past a cap of %d", len(b), limit)
	}
	if _, _, err := get("n=1001&chunked=1"); !errors.Is(err, ErrBodyTooLarge) {
		t.Errorf("chunked body one byte over the cap: err %v, want ErrBodyTooLarge", err)
	}
	// Exactly the cap is fine, either way.
	for _, q := range []string{"n=1000", "n=1000&chunked=1", "n=0"} {
		_, b, err := get(q)
		if err != nil {
			t.Errorf("%s: %v", q, err)
		}
		n, _ := strconv.Atoi(strings.TrimPrefix(strings.Split(q, "&")[0], "n="))
		if len(b) != n {
			t.Errorf("%s: read %d bytes", q, len(b))
		}
	}
}

func TestHTTPClientDefaults(t *testing.T) {
	c := NewHTTPClient(0, 0)
	if c.Timeout != DefaultTimeout {
		t.Errorf("timeout %v, want %v", c.Timeout, DefaultTimeout)
	}
	lt, ok := c.Transport.(limitTransport)
	if !ok || lt.max != DefaultMaxBodyBytes {
		t.Errorf("transport %T %+v, want a limitTransport with the default cap", c.Transport, c.Transport)
	}
}

func TestHTTPClientTimeout(t *testing.T) {
	const timeout = 200 * time.Millisecond
	var blocked atomic.Int32
	done := make(chan struct{})
	srv := newServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/body" {
			// Headers at once, then a body that never ends.
			_, _ = io.WriteString(w, "{")
			w.(http.Flusher).Flush()
		}
		blocked.Add(1)
		select {
		case <-r.Context().Done(): // the client gave up and hung up
		case <-done:
		}
	}))
	// Registered after the server's Close, so it runs first: a handler
	// still blocked when the test ends is released.
	t.Cleanup(func() { close(done) })
	c := NewHTTPClient(timeout, 0)
	for _, path := range []string{"/headers", "/body"} {
		// A backstop so that a client without its timeout fails the test
		// rather than hanging it.
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL+path, nil)
		start := time.Now()
		resp, err := c.Do(req)
		if err == nil {
			_, err = io.ReadAll(resp.Body)
			resp.Body.Close()
		}
		elapsed := time.Since(start)
		var ne net.Error
		if !errors.As(err, &ne) || !ne.Timeout() {
			t.Errorf("%s: err %v, want a timeout", path, err)
		}
		if elapsed < timeout || elapsed > 2*time.Second {
			t.Errorf("%s: gave up after %v, want about %v", path, elapsed, timeout)
		}
	}
	if blocked.Load() != 2 {
		t.Errorf("handler reached %d times, want 2", blocked.Load())
	}
}

func TestClassify(t *testing.T) {
	for _, tc := range []struct {
		status int
		err    error
		want   Kind
	}{
		{0, errors.New("connection refused"), Unavailable},
		{0, ErrBodyTooLarge, Unavailable},
		{500, nil, Unavailable},
		{502, nil, Unavailable},
		{503, nil, Unavailable},
		{429, nil, Unavailable},
		{400, nil, Invalid},
		{401, nil, Invalid},
		{404, nil, Invalid},
		{302, nil, Invalid},
	} {
		e := classify("corp", "op", tc.status, tc.err)
		if e.Kind != tc.want || e.Upstream != "corp" || e.Op != "op" {
			t.Errorf("classify(%d, %v) = %+v, want kind %v", tc.status, tc.err, e, tc.want)
		}
		if tc.err != nil && !errors.Is(e, tc.err) {
			t.Errorf("classify(%v) does not wrap the cause", tc.err)
		}
	}
}
