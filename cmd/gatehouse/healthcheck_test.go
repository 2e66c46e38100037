package main

import (
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestHealthcheck runs `gatehouse healthcheck` the way the image's HEALTHCHECK
// does: against a real server, with settings that would stop any command that
// opens the store, to show it reads only the address.
func TestHealthcheck(t *testing.T) {
	ts := startServer(t, "sqlite", nil)
	addr := strings.TrimPrefix(ts.issuer, "http://")
	_, port, _ := net.SplitHostPort(addr)
	missingDir := filepath.Join(t.TempDir(), "no-such-dir")
	env := map[string]string{
		"GATEHOUSE_ADDR":      ":" + port, // the wildcard form the image uses
		"GATEHOUSE_DATA_DIR":  missingDir,
		"DATABASE_URL":        "postgres://nobody@127.0.0.1:1/none", // without a secret: loadConfig refuses this
		"GATEHOUSE_LOG_LEVEL": "nonsense",
	}
	getenv := func(k string) string { return env[k] }

	t.Run("ready", func(t *testing.T) {
		out, errOut, code := runCLI(getenv, "", "healthcheck")
		if code != 0 || out != "" || errOut != "" {
			t.Fatalf("healthcheck: exit %d, stdout %q, stderr %q; want 0 and silence", code, out, errOut)
		}
		if _, err := os.Stat(missingDir); !os.IsNotExist(err) {
			t.Errorf("healthcheck touched the data dir: %v", err)
		}
	})
	t.Run("url flag", func(t *testing.T) {
		if _, errOut, code := runCLI(getenv, "", "healthcheck", "--url", ts.issuer+"/readyz"); code != 0 {
			t.Fatalf("healthcheck --url: exit %d: %s", code, errOut)
		}
	})
	t.Run("addr flag", func(t *testing.T) {
		if _, errOut, code := runCLI(func(string) string { return "" }, "", "--addr", addr, "healthcheck"); code != 0 {
			t.Fatalf("healthcheck --addr: exit %d: %s", code, errOut)
		}
	})
	t.Run("closed port", func(t *testing.T) {
		ln := listenLoopback(t)
		closed := ln.Addr().String()
		ln.Close()
		_, errOut, code := runCLI(func(k string) string {
			if k == "GATEHOUSE_ADDR" {
				return closed
			}
			return ""
		}, "", "healthcheck")
		assertOneLineFailure(t, code, errOut, closed)
	})
	t.Run("not ready", func(t *testing.T) {
		// What /readyz answers while the database is down (op/failure.go).
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = w.Write([]byte(`{"status":"unavailable","failed":"store","request_id":"x"}`))
		}))
		defer srv.Close()
		_, errOut, code := runCLI(getenv, "", "healthcheck", "--url", srv.URL+"/readyz")
		assertOneLineFailure(t, code, errOut, "503")
		if !strings.Contains(errOut, "failed: store") {
			t.Errorf("stderr %q does not say which check failed", errOut)
		}
	})
	t.Run("bad addr", func(t *testing.T) {
		_, errOut, code := runCLI(func(k string) string {
			if k == "GATEHOUSE_ADDR" {
				return "8080"
			}
			return ""
		}, "", "healthcheck")
		assertOneLineFailure(t, code, errOut, "GATEHOUSE_ADDR")
	})
}

func assertOneLineFailure(t *testing.T, code int, stderr, want string) {
	t.Helper()
	if code == 0 {
		t.Fatalf("exit 0, want non-zero (stderr %q)", stderr)
	}
	if strings.Count(stderr, "\n") != 1 || !strings.HasPrefix(stderr, "gatehouse: ") || !strings.Contains(stderr, want) {
		t.Errorf("stderr %q: want one line starting with \"gatehouse: \" naming %q", stderr, want)
	}
}

func TestLocalReadyURL(t *testing.T) {
	for _, c := range []struct {
		addr string
		tls  bool
		want string
	}{
		{":8080", false, "http://127.0.0.1:8080/readyz"},
		{"0.0.0.0:9000", false, "http://127.0.0.1:9000/readyz"},
		{"[::]:8080", true, "https://[::1]:8080/readyz"},
		{"127.0.0.2:8080", false, "http://127.0.0.2:8080/readyz"},
		{"gatehouse.internal:443", true, "https://gatehouse.internal:443/readyz"},
	} {
		got, err := localReadyURL(c.addr, c.tls)
		if err != nil || got != c.want {
			t.Errorf("localReadyURL(%q, %v) = %q, %v; want %q", c.addr, c.tls, got, err, c.want)
		}
	}
	if _, err := localReadyURL("localhost", false); err == nil {
		t.Error("localReadyURL accepted an address without a port")
	}
}

// TestHealthcheckTLS: with GATEHOUSE_TLS_CERT set the server speaks only TLS,
// so the probe must too, with a certificate it cannot verify (self-signed
// here; in production it names the public host, not loopback).
func TestHealthcheckTLS(t *testing.T) {
	certFile, keyFile, _ := selfSignedCert(t)
	ts := startServer(t, "sqlite", map[string]string{"GATEHOUSE_TLS_CERT": certFile, "GATEHOUSE_TLS_KEY": keyFile})
	addr := strings.TrimPrefix(ts.issuer, "http://")
	env := map[string]string{"GATEHOUSE_ADDR": addr, "GATEHOUSE_TLS_CERT": certFile}
	if _, errOut, code := runCLI(func(k string) string { return env[k] }, "", "healthcheck"); code != 0 {
		t.Fatalf("healthcheck over TLS: exit %d: %s", code, errOut)
	}
	// Plain HTTP to the TLS port is refused (400), not mistaken for ready.
	delete(env, "GATEHOUSE_TLS_CERT")
	_, errOut, code := runCLI(func(k string) string { return env[k] }, "", "healthcheck")
	assertOneLineFailure(t, code, errOut, "400")
}
