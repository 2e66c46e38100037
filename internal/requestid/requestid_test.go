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
