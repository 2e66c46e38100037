package adminapi

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"reflect"
	"strconv"
	"strings"

	"github.com/go-chi/chi/v5"

	"github.com/gatehouse-id/gatehouse/internal/admin"
)

// maxBody bounds request bodies: the largest real one is a few hundred bytes.
const maxBody = 64 << 10

// userJSON is a user as the API shows it.
type userJSON struct {
	ID            string `json:"id"`
	Email         string `json:"email"`
	Name          string `json:"name"`
	Role          string `json:"role"`
	EmailVerified bool   `json:"email_verified"`
	Locked        bool   `json:"locked"`
	Disabled      bool   `json:"disabled"`
}

func toUserJSON(u *admin.User) userJSON {
	return userJSON{ID: u.ID, Email: u.Email, Name: u.Name, Role: u.Role, EmailVerified: u.EmailVerified,
		Locked: u.Locked(), Disabled: u.Disabled()}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// writeUser answers with the user and its version as the ETag.
func writeUser(w http.ResponseWriter, status int, u *admin.User) {
	w.Header().Set("ETag", etag(u.Version))
	writeJSON(w, status, toUserJSON(u))
}

func etag(version string) string { return `"` + version + `"` }

// ifMatch is the version an update expects, from If-Match (one strong
// entity tag). It is required: without it two admins could overwrite each
// other silently. It answers 428 or 400 itself when ok is false.
func ifMatch(w http.ResponseWriter, r *http.Request) (version string, ok bool) {
	h := strings.TrimSpace(r.Header.Get("If-Match"))
	if h == "" {
		writeProblem(w, http.StatusPreconditionRequired, "precondition_required", "Precondition required",
			"send If-Match with the ETag of the resource as read")
		return "", false
	}
	if h == "*" {
		// RFC 9110 §13.1.1: "*" matches any current representation, so
		// the change applies whatever the version — the caller's explicit
		// choice to overwrite.
		return "", true
	}
	// An empty tag ("") is refused: to the service an empty version means
	// "no check", which would turn the required precondition off unasked.
	if len(h) < 3 || h[0] != '"' || h[len(h)-1] != '"' || strings.Contains(h[1:len(h)-1], `"`) {
		writeProblemField(w, http.StatusBadRequest, "invalid", "Invalid input", "If-Match must be one ETag as sent", "If-Match")
		return "", false
	}
	return h[1 : len(h)-1], true
}

// decode reads a bounded JSON body into v, refusing unknown fields and
// trailing data. It answers 400 itself when it fails.
func decode(w http.ResponseWriter, r *http.Request, v any) bool {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxBody))
	dec.DisallowUnknownFields()
	err := dec.Decode(v)
	if err == nil && dec.Decode(&struct{}{}) != io.EOF {
		err = errors.New("one JSON object only")
	}
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			writeProblem(w, http.StatusRequestEntityTooLarge, "too_large", "Request too large", "the body must be at most 64 KiB")
			return false
		}
		writeProblem(w, http.StatusBadRequest, "invalid_json", "Invalid JSON", "the body is not the JSON object expected: "+jsonProblem(err))
		return false
	}
	return true
}

// jsonProblem says what is wrong with a body in the API's terms: the
// decoder's own messages name Go types ("struct { Email string … }").
func jsonProblem(err error) string {
	var typ *json.UnmarshalTypeError
	var syn *json.SyntaxError
	switch {
	case errors.As(err, &typ) && typ.Field != "":
		return fmt.Sprintf("%s must be %s, not %s", typ.Field, jsonKind(typ.Type), typ.Value)
	case errors.As(err, &typ):
		return "the body must be a JSON object, not " + typ.Value
	case errors.As(err, &syn):
		return fmt.Sprintf("not valid JSON (at byte %d)", syn.Offset)
	case errors.Is(err, io.EOF):
		return "the body is empty"
	case errors.Is(err, io.ErrUnexpectedEOF):
		return "the JSON ends too early"
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		return "unknown field " + strings.TrimPrefix(err.Error(), "json: unknown field ")
	}
	return err.Error()
}

// jsonKind names a Go type as JSON does.
func jsonKind(t reflect.Type) string {
	switch t.Kind() {
	case reflect.Bool:
		return "true or false"
	case reflect.String:
		return "a string"
	case reflect.Int, reflect.Int64, reflect.Int32, reflect.Uint, reflect.Uint64, reflect.Float64:
		return "a number"
	case reflect.Slice, reflect.Array:
		return "a list"
	case reflect.Pointer:
		return jsonKind(t.Elem())
	}
	return "an object"
}

// listUsers: GET /users?email=&q=&cursor=&limit=
func (a *API) listUsers(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	query := admin.UserQuery{Email: q.Get("email"), Search: q.Get("q"), Cursor: q.Get("cursor")}
	if l := q.Get("limit"); l != "" {
		n, err := strconv.Atoi(l)
		if err != nil {
			writeProblemField(w, http.StatusUnprocessableEntity, string(admin.CodeInvalid), "Invalid input", "limit must be a number", "limit")
			return
		}
		query.Limit = n
		if n == 0 { // 0 would mean the default to the service
			query.Limit = -1
		}
	}
	page, err := a.svc.ListUsers(r.Context(), actorOf(r), query)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	items := make([]userJSON, 0, len(page.Items))
	for i := range page.Items {
		items = append(items, toUserJSON(&page.Items[i]))
	}
	writeJSON(w, http.StatusOK, struct {
		Items      []userJSON `json:"items"`
		NextCursor string     `json:"next_cursor,omitempty"`
	}{items, page.NextCursor})
}

func (a *API) getUser(w http.ResponseWriter, r *http.Request) {
	u, err := a.svc.GetUser(r.Context(), actorOf(r), chi.URLParam(r, "id"))
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	writeUser(w, http.StatusOK, u)
}

// createUser: POST /users {"email","name","role","email_verified","password"}
func (a *API) createUser(w http.ResponseWriter, r *http.Request) {
	var body struct {
		Email         string `json:"email"`
		Name          string `json:"name"`
		Role          string `json:"role"`
		EmailVerified bool   `json:"email_verified"`
		Password      string `json:"password"`
	}
	if !decode(w, r, &body) {
		return
	}
	u, err := a.svc.CreateUser(r.Context(), actorOf(r), admin.NewUser{Email: body.Email, Name: body.Name,
		Role: body.Role, EmailVerified: body.EmailVerified, Password: body.Password})
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	w.Header().Set("Location", Prefix+"/users/"+u.ID)
	writeUser(w, http.StatusCreated, u)
}

// userPatch is the body of PATCH /users/{id}: the fields given change.
type userPatch struct {
	Role          *string `json:"role"`
	EmailVerified *bool   `json:"email_verified"`
	Disabled      *bool   `json:"disabled"`
	Locked        *bool   `json:"locked"`
}

// patchUser applies the fields given in one compare-and-set write of the
// service (UpdateUser): all of them or, on a stale If-Match or an invalid
// field, none. Unlocking is a step of its own after that write, since
// sign-in locks are kept per address, not in the account's row.
func (a *API) patchUser(w http.ResponseWriter, r *http.Request) {
	version, ok := ifMatch(w, r)
	if !ok {
		return
	}
	var p userPatch
	if !decode(w, r, &p) {
		return
	}
	if p == (userPatch{}) {
		writeProblem(w, http.StatusUnprocessableEntity, string(admin.CodeInvalid), "Invalid input", "give at least one of role, email_verified, disabled, locked")
		return
	}
	if p.Locked != nil && *p.Locked {
		writeProblemField(w, http.StatusUnprocessableEntity, string(admin.CodeInvalid), "Invalid input", "an account can only be unlocked (locked: false)", "locked")
		return
	}
	ctx, actor, id := r.Context(), actorOf(r), chi.URLParam(r, "id")
	u, _, err := a.svc.UpdateUser(ctx, actor, id, admin.UserChange{Role: p.Role, EmailVerified: p.EmailVerified, Disabled: p.Disabled}, version)
	if err == nil && p.Locked != nil {
		if err = a.svc.Unlock(ctx, actor, u.Email); err == nil {
			u, err = a.svc.GetUser(ctx, actor, id)
		}
	}
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	writeUser(w, http.StatusOK, u)
}

// deleteUser: DELETE /users/{id} with If-Match.
func (a *API) deleteUser(w http.ResponseWriter, r *http.Request) {
	version, ok := ifMatch(w, r)
	if !ok {
		return
	}
	if err := a.svc.DeleteUser(r.Context(), actorOf(r), chi.URLParam(r, "id"), version); err != nil {
		a.writeError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}
