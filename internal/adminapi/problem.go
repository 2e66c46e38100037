package adminapi

import (
	"encoding/json"
	"errors"
	"net/http"

	"github.com/gatehouse-id/gatehouse/internal/admin"
	"github.com/gatehouse-id/gatehouse/login/password"
)

// problem is an RFC 9457 problem detail. Code is stable: an admin.Error
// code or one of this package's (invalid_token, insufficient_scope, …).
type problem struct {
	Type   string `json:"type"`
	Title  string `json:"title"`
	Status int    `json:"status"`
	Detail string `json:"detail,omitempty"`
	Code   string `json:"code"`
	Field  string `json:"field,omitempty"`
}

// problemType is the problem's type URI: relative to the API, one per code.
func problemType(code string) string { return Prefix + "/problems/" + code }

func writeProblem(w http.ResponseWriter, status int, code, title, detail string) {
	writeProblemField(w, status, code, title, detail, "")
}

func writeProblemField(w http.ResponseWriter, status int, code, title, detail, field string) {
	w.Header().Set("Content-Type", "application/problem+json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(problem{Type: problemType(code), Title: title, Status: status, Detail: detail, Code: code, Field: field})
}

// adminStatus maps the service's codes to statuses: the one place it is
// decided.
var adminStatus = map[admin.Code]struct {
	status int
	title  string
}{
	admin.CodeNotFound:        {http.StatusNotFound, "Not found"},
	admin.CodeInvalid:         {http.StatusUnprocessableEntity, "Invalid input"},
	admin.CodeConflict:        {http.StatusConflict, "Conflict"},
	admin.CodeVersionMismatch: {http.StatusPreconditionFailed, "Precondition failed"},
}

// writeError answers err from the service: a caller's mistake as its
// problem, anything else logged and answered 500 without detail.
func (a *API) writeError(w http.ResponseWriter, r *http.Request, err error) {
	var ae *admin.Error
	if errors.As(err, &ae) {
		if s, ok := adminStatus[ae.Code]; ok {
			writeProblemField(w, s.status, string(ae.Code), s.title, ae.Message, ae.Field)
			return
		}
	}
	if errors.Is(err, password.ErrBusy) {
		// A sign-in flood has the password hasher's queue full: the
		// server's state, worth a retry.
		w.Header().Set("Retry-After", "5")
		writeProblem(w, http.StatusServiceUnavailable, "unavailable", "Service unavailable", "the password hasher is busy; retry shortly")
		return
	}
	if r.Context().Err() == nil {
		a.log.ErrorContext(r.Context(), "admin api", "method", r.Method, "path", r.URL.Path, "err", err)
	}
	writeProblem(w, http.StatusInternalServerError, "internal", "Internal error", "the request failed; see the server log")
}
