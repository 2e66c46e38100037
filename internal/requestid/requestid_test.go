package requestid

import (
	"bytes"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestMiddlewareAndLogHandler(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(LogHandler(slog.NewTextHandler(&buf, nil))).With("component", "test")
	var seen string
	h := Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen = From(r.Context())
		log.InfoContext(r.Context(), "handled")
	}))
	req := httptest.NewRequest(http.MethodGet, "/", nil)
	req.Header.Set(Header, "forged-by-the-client")
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)

	id := rec.Header().Get(Header)
	if id == "" || id != seen || id == "forged-by-the-client" || len(id) != 16 {
		t.Fatalf("response ID %q, context ID %q: want one fresh 16-character ID", id, seen)
	}
	if line := buf.String(); !strings.Contains(line, "request_id="+id) || !strings.Contains(line, "component=test") {
		t.Fatalf("log line %q lacks the request ID or the logger's attributes", line)
	}
	rec2 := httptest.NewRecorder()
	h.ServeHTTP(rec2, httptest.NewRequest(http.MethodGet, "/", nil))
	if rec2.Header().Get(Header) == id {
		t.Fatal("two requests got the same ID")
	}
	buf.Reset()
	log.Info("no request")
	if strings.Contains(buf.String(), "request_id") {
		t.Fatalf("a line logged outside a request has a request ID: %q", buf.String())
	}
}

func TestNewMiddlewareTrust(t *testing.T) {
	trusted := func(r *http.Request) bool { return r.RemoteAddr == "10.0.0.1:1234" }
	h := NewMiddleware(trusted)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if From(r.Context()) != w.Header().Get(Header) {
			t.Errorf("context ID %q differs from the response header %q", From(r.Context()), w.Header().Get(Header))
		}
	}))
	for _, tc := range []struct {
		peer, id string
		kept     bool
	}{
		{"10.0.0.1:1234", "proxy-ID_1.2", true},
		{"10.0.0.1:1234", strings.Repeat("a", 64), true},
		{"10.0.0.1:1234", strings.Repeat("a", 65), false},
		{"10.0.0.1:1234", "has space", false},
		{"10.0.0.1:1234", "new\nline", false},
		{"10.0.0.1:1234", "", false},
		{"192.0.2.9:1234", "proxy-ID_1.2", false}, // not a trusted proxy
	} {
		req := httptest.NewRequest(http.MethodGet, "/", nil)
		req.RemoteAddr = tc.peer
		if tc.id != "" {
			req.Header.Set(Header, tc.id)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		got := rec.Header().Get(Header)
		if tc.kept && got != tc.id {
			t.Errorf("peer %s, ID %q: got %q, want it kept", tc.peer, tc.id, got)
		}
		if !tc.kept && (got == tc.id || len(got) != 16) {
			t.Errorf("peer %s, ID %q: got %q, want a fresh ID", tc.peer, tc.id, got)
		}
	}
}
