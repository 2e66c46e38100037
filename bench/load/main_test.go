package main

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func TestPercentile(t *testing.T) {
	var lat []time.Duration
	for i := 1; i <= 100; i++ {
		lat = append(lat, time.Duration(i)*time.Millisecond)
	}
	for p, want := range map[float64]time.Duration{50: 50 * time.Millisecond, 90: 90 * time.Millisecond, 99: 99 * time.Millisecond, 100: 100 * time.Millisecond} {
		if got := percentile(lat, p); got != want {
			t.Errorf("p%v = %v, want %v", p, got, want)
		}
	}
	if got := percentile(nil, 50); got != 0 {
		t.Errorf("p50 of nothing = %v", got)
	}
}

func TestCheck(t *testing.T) {
	o := options{issuer: "http://127.0.0.1:1/", target: "jwks", workers: 1, duration: 2 * time.Minute}
	if err := o.check(); err != nil {
		t.Fatal(err)
	}
	if o.duration != maxDuration || o.issuer != "http://127.0.0.1:1" {
		t.Errorf("after check: duration %v issuer %q", o.duration, o.issuer)
	}
	for _, bad := range []options{
		{target: "jwks", workers: 1, duration: time.Second},
		{issuer: "http://127.0.0.1:1", target: "authorize", workers: 1, duration: time.Second},
		{issuer: "http://127.0.0.1:1", target: "client_credentials", workers: 1, duration: time.Second},
		{issuer: "http://127.0.0.1:1", target: "jwks", workers: 0, duration: time.Second},
	} {
		if err := bad.check(); err == nil {
			t.Errorf("check(%+v) accepted", bad)
		}
	}
}

// TestRunIntrospect drives a fake token and introspection endpoint briefly.
func TestRunIntrospect(t *testing.T) {
	var introspected atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if id, secret, ok := r.BasicAuth(); !ok || id != "svc" || secret != "s3cret" {
			http.Error(w, `{"error":"invalid_client"}`, http.StatusUnauthorized)
			return
		}
		switch r.URL.Path {
		case "/oauth/token":
			_ = json.NewEncoder(w).Encode(map[string]string{"access_token": "tok", "token_type": "Bearer"})
		case "/oauth/introspect":
			if r.FormValue("token") != "tok" {
				http.Error(w, "wrong token", http.StatusBadRequest)
				return
			}
			introspected.Add(1)
			_, _ = w.Write([]byte(`{"active":true}`))
		default:
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()
	var out bytes.Buffer
	o := options{issuer: srv.URL, target: "introspect", clientID: "svc", clientSecret: "s3cret",
		workers: 2, duration: 200 * time.Millisecond, row: true}
	if err := run(o, &out); err != nil {
		t.Fatal(err)
	}
	if introspected.Load() == 0 || !strings.HasPrefix(out.String(), "| introspect | 2 | 200ms | ") || !strings.HasSuffix(out.String(), " | 0 |\n") {
		t.Errorf("%d introspections, output %q", introspected.Load(), out.String())
	}
}
