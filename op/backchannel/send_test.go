package backchannel

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

const testToken = "eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJ1In0.c2ln"

// receiver is an httptest server answering with status and checking that
// the request is the spec's form POST of testToken.
func receiver(t *testing.T, status int) (*httptest.Server, *atomic.Int32) {
	t.Helper()
	var hits atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		if r.Method != http.MethodPost {
			t.Errorf("method %s", r.Method)
		}
		if ct := r.Header.Get("Content-Type"); ct != "application/x-www-form-urlencoded" {
			t.Errorf("Content-Type %q", ct)
		}
		if err := r.ParseForm(); err != nil {
			t.Errorf("form: %v", err)
		}
		if len(r.PostForm) != 1 || r.PostForm.Get("logout_token") != testToken {
			t.Errorf("form %v, want only logout_token", r.PostForm)
		}
		if r.URL.RawQuery != "tenant=a" {
			t.Errorf("query %q, want the registered one", r.URL.RawQuery)
		}
		w.WriteHeader(status)
	}))
	t.Cleanup(srv.Close)
	return srv, &hits
}

func TestSendClassifiesStatus(t *testing.T) {
	cases := []struct {
		status int
		want   Outcome
	}{
		{200, Delivered}, {204, Delivered},
		{400, GiveUp}, {401, GiveUp}, {404, GiveUp}, {410, GiveUp},
		{408, Retry}, {429, Retry}, {500, Retry}, {502, Retry}, {503, Retry},
	}
	client := NewHTTPClient(2 * time.Second)
	for _, c := range cases {
		srv, hits := receiver(t, c.status)
		res := Send(t.Context(), client, srv.URL+"/bcl?tenant=a", testToken)
		if res.Outcome != c.want || res.Status != c.status {
			t.Errorf("%d: outcome %v status %d, want %v", c.status, res.Outcome, res.Status, c.want)
		}
		if (res.Err == nil) != (c.want == Delivered) {
			t.Errorf("%d: err %v", c.status, res.Err)
		}
		if res.Err != nil && strings.Contains(res.Err.Error(), testToken) {
			t.Errorf("%d: error text contains the token: %v", c.status, res.Err)
		}
		if hits.Load() != 1 {
			t.Errorf("%d: %d requests, want 1", c.status, hits.Load())
		}
	}
}

func TestClassifyOddStatuses(t *testing.T) {
	for status, want := range map[int]Outcome{299: Delivered, 300: GiveUp, 304: GiveUp, 499: GiveUp, 599: Retry, 600: GiveUp, 199: GiveUp} {
		if got := Classify(status, nil); got != want {
			t.Errorf("Classify(%d) = %v, want %v", status, got, want)
		}
	}
	if got := Classify(200, errors.New("x")); got != Retry {
		t.Errorf("an error is %v, want Retry", got)
	}
}

func TestSendDoesNotFollowRedirects(t *testing.T) {
	var targetHits atomic.Int32
	target := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		targetHits.Add(1)
	}))
	defer target.Close()
	for _, status := range []int{http.StatusFound, http.StatusTemporaryRedirect, http.StatusPermanentRedirect} {
		redirector := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, target.URL+"/internal", status)
		}))
		res := Send(t.Context(), NewHTTPClient(2*time.Second), redirector.URL, testToken)
		redirector.Close()
		if res.Outcome != GiveUp || res.Status != status {
			t.Errorf("%d: outcome %v status %d, want GiveUp with the redirect's status", status, res.Outcome, res.Status)
		}
	}
	if n := targetHits.Load(); n != 0 {
		t.Errorf("the redirect target was requested %d times", n)
	}
}

func TestSendTransportFailuresAreRetried(t *testing.T) {
	t.Run("timeout", func(t *testing.T) {
		release := make(chan struct{})
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			select { // hang until the client gives up (or the test ends)
			case <-r.Context().Done():
			case <-release:
			}
		}))
		defer srv.Close()
		defer close(release)
		start := time.Now()
		res := Send(t.Context(), NewHTTPClient(150*time.Millisecond), srv.URL, testToken)
		if res.Outcome != Retry || res.Status != 0 {
			t.Fatalf("outcome %v status %d, want Retry without status", res.Outcome, res.Status)
		}
		var ne net.Error
		if !errors.As(res.Err, &ne) || !ne.Timeout() {
			t.Errorf("err %v, want a timeout", res.Err)
		}
		if d := time.Since(start); d > 5*time.Second {
			t.Errorf("took %v despite a 150 ms timeout", d)
		}
	})
	t.Run("closed port", func(t *testing.T) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := ln.Addr().String()
		ln.Close()
		res := Send(t.Context(), NewHTTPClient(2*time.Second), "http://"+addr+"/bcl?key=q-secret", testToken)
		if res.Outcome != Retry || res.Err == nil {
			t.Fatalf("outcome %v err %v, want Retry with an error", res.Outcome, res.Err)
		}
		if strings.Contains(res.Err.Error(), "q-secret") {
			t.Errorf("the error names the URI's query: %v", res.Err)
		}
	})
	t.Run("cancelled", func(t *testing.T) {
		srv, hits := receiver(t, 200)
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		res := Send(ctx, NewHTTPClient(2*time.Second), srv.URL+"?tenant=a", testToken)
		if res.Outcome != Retry || !errors.Is(res.Err, context.Canceled) {
			t.Errorf("outcome %v err %v, want Retry, context.Canceled", res.Outcome, res.Err)
		}
		if hits.Load() != 0 {
			t.Error("sent despite a cancelled context")
		}
	})
}

// countingTransport counts the body bytes the client reads.
type countingTransport struct {
	base http.RoundTripper
	n    *atomic.Int64
}

func (c countingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := c.base.RoundTrip(r)
	if err == nil {
		resp.Body = countingBody{resp.Body, c.n}
	}
	return resp, err
}

type countingBody struct {
	io.ReadCloser
	n *atomic.Int64
}

func (b countingBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	b.n.Add(int64(n))
	return n, err
}

func TestSendReadsAtMostTheCap(t *testing.T) {
	const total = 256 << 20
	written := make(chan int, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusOK)
		chunk := make([]byte, 32<<10)
		n := 0
		for n < total {
			m, err := w.Write(chunk)
			n += m
			if err != nil {
				break // the client hung up, as it should
			}
		}
		written <- n
	}))
	defer srv.Close()
	var read atomic.Int64
	client := NewHTTPClient(10 * time.Second)
	client.Transport = countingTransport{client.Transport, &read}
	res := Send(t.Context(), client, srv.URL, testToken)
	if res.Outcome != Delivered {
		t.Fatalf("outcome %v (%v), want Delivered: the status decides, not the body", res.Outcome, res.Err)
	}
	if n := read.Load(); n > MaxResponseBytes {
		t.Errorf("read %d body bytes, cap %d", n, MaxResponseBytes)
	}
	if n := <-written; n >= total {
		t.Errorf("the server wrote its whole %d-byte body: the client did not hang up", n)
	}
}
