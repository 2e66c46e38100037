package adminapi

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// TestDecodeProblems: a body the API cannot use is explained in JSON's
// terms, never with the decoder's Go types.
func TestDecodeProblems(t *testing.T) {
	type body struct {
		Role     *string `json:"role"`
		Disabled *bool   `json:"disabled"`
	}
	for _, c := range []struct{ in, want string }{
		{`{"disabled":"yes"}`, "disabled must be true or false, not string"},
		{`{"role":7}`, "role must be a string, not number"},
		{`[1,2]`, "the body must be a JSON object, not array"},
		{`{"role":`, "the JSON ends too early"},
		{`{"role" "x"}`, "not valid JSON (at byte 9)"},
		{``, "the body is empty"},
		{`{"admin":true}`, `unknown field \"admin\"`},
		{`{} {}`, "one JSON object only"},
	} {
		w := httptest.NewRecorder()
		r := httptest.NewRequest(http.MethodPatch, "/", strings.NewReader(c.in))
		var b body
		if decode(w, r, &b) {
			t.Errorf("%s: decoded", c.in)
			continue
		}
		got := w.Body.String()
		if w.Code != http.StatusBadRequest || !strings.Contains(got, c.want) || strings.Contains(got, "struct") || strings.Contains(got, "*bool") {
			t.Errorf("%s: %d %s, want %q", c.in, w.Code, got, c.want)
		}
	}
}

// TestIfMatch: one strong tag, or "*" (any version: the caller's choice to
// overwrite); an empty tag, a list or a weak tag is refused.
func TestIfMatch(t *testing.T) {
	for _, c := range []struct {
		header, version string
		ok              bool
		status          int
	}{
		{`"7"`, "7", true, 0},
		{`*`, "", true, 0},
		{``, "", false, http.StatusPreconditionRequired},
		{`""`, "", false, http.StatusBadRequest},
		{`W/"7"`, "", false, http.StatusBadRequest},
		{`"7", "8"`, "", false, http.StatusBadRequest},
	} {
		w := httptest.NewRecorder()
		r := httptest.NewRequest(http.MethodPatch, "/", nil)
		if c.header != "" {
			r.Header.Set("If-Match", c.header)
		}
		v, ok := ifMatch(w, r)
		if v != c.version || ok != c.ok || (!ok && w.Code != c.status) {
			t.Errorf("If-Match %s: %q %v status %d", c.header, v, ok, w.Code)
		}
	}
}
