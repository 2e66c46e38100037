package main

import (
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"
)

// apiResponse is an admin API answer: status, headers and the decoded body.
type apiResponse struct {
	status int
	header http.Header
	body   map[string]any
}

// apiCall sends method path (under /admin/api/v1) with the bearer token
// (none if ""), body as JSON (none if ""), and extra headers in pairs.
func apiCall(t *testing.T, ts *testServer, token, method, path, body string, headers ...string) apiResponse {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, ts.issuer+"/admin/api/v1"+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	out := apiResponse{status: resp.StatusCode, header: resp.Header}
	if len(raw) > 0 {
		if err := json.Unmarshal(raw, &out.body); err != nil {
			t.Fatalf("%s %s: %d %q is not a JSON object: %v", method, path, resp.StatusCode, raw, err)
		}
	}
	return out
}

// wantProblem checks an RFC 9457 problem answer with status and code.
func wantProblem(t *testing.T, what string, r apiResponse, status int, code string) {
	t.Helper()
	if r.status != status || r.body["code"] != code || r.header.Get("Content-Type") != "application/problem+json" ||
		r.body["status"] != float64(status) || r.body["type"] == nil || r.body["title"] == nil {
		t.Errorf("%s: %d %s %v, want %d problem with code %s", what, r.status, r.header.Get("Content-Type"), r.body, status, code)
	}
}

// TestAdminAPI drives the admin API over HTTP on every backend, with
// tokens from the server's own token endpoint.
func TestAdminAPI(t *testing.T) {
	for _, backend := range backends {
		t.Run(backend, func(t *testing.T) {
			ts := startServer(t, backend, nil)
			ops := ts.createClient("--name", "ops", "--grant-types", "client_credentials", "--allowed-scopes", "gatehouse:admin")
			other := ts.createClient("--name", "other", "--grant-types", "client_credentials")
			app := ts.createClient("--name", "App", "--redirect-uri", redirectA)
			tok := ccToken(t, ts, ops, "gatehouse:admin")
			alice := ts.createUser("alice@example.com", testPassword)

			t.Run("authorization", func(t *testing.T) {
				r := apiCall(t, ts, "", "GET", "/users", "")
				wantProblem(t, "no token", r, 401, "invalid_token")
				if !strings.Contains(r.header.Get("WWW-Authenticate"), `error="invalid_token"`) {
					t.Errorf("no token: WWW-Authenticate %q", r.header.Get("WWW-Authenticate"))
				}
				wantProblem(t, "a forged token", apiCall(t, ts, "not-a-token", "GET", "/users", ""), 401, "invalid_token")
				wantProblem(t, "a token without the scope", apiCall(t, ts, ccToken(t, ts, other, "api"), "GET", "/users", ""), 403, "insufficient_scope")
				// A revoked token (the deny-list) stops at once.
				revoked := ccToken(t, ts, ops, "gatehouse:admin")
				if r := apiCall(t, ts, revoked, "GET", "/users", ""); r.status != 200 {
					t.Fatalf("a fresh admin token: %d %v", r.status, r.body)
				}
				if status, _, _ := postForm(t, ts.issuer+"/revoke", url.Values{"token": {revoked}}, ops.ClientID, ops.ClientSecret); status != 200 {
					t.Fatalf("revoke: %d", status)
				}
				wantProblem(t, "a revoked token", apiCall(t, ts, revoked, "GET", "/users", ""), 401, "invalid_token")
			})

			t.Run("list and get", func(t *testing.T) {
				r := apiCall(t, ts, tok, "GET", "/users?email=alice@example.com", "")
				items, _ := r.body["items"].([]any)
				if r.status != 200 || len(items) != 1 {
					t.Fatalf("list by email: %d %v", r.status, r.body)
				}
				if u := items[0].(map[string]any); u["id"] != alice.ID || u["role"] != "USER" || u["locked"] != false || u["disabled"] != false {
					t.Errorf("list by email: %v", u)
				}
				r = apiCall(t, ts, tok, "GET", "/users?limit=1", "")
				if r.status != 200 || len(r.body["items"].([]any)) != 1 {
					t.Errorf("list with limit 1: %d %v", r.status, r.body)
				}
				wantProblem(t, "limit too large", apiCall(t, ts, tok, "GET", "/users?limit=1000", ""), 422, "invalid")
				r = apiCall(t, ts, tok, "GET", "/users/"+alice.ID, "")
				if r.status != 200 || r.body["email"] != "alice@example.com" || r.header.Get("ETag") == "" {
					t.Errorf("get: %d %v ETag %q", r.status, r.body, r.header.Get("ETag"))
				}
				wantProblem(t, "get an unknown user", apiCall(t, ts, tok, "GET", "/users/nobody", ""), 404, "not_found")
			})

			t.Run("patch with If-Match", func(t *testing.T) {
				etag := apiCall(t, ts, tok, "GET", "/users/"+alice.ID, "").header.Get("ETag")
				wantProblem(t, "patch without If-Match", apiCall(t, ts, tok, "PATCH", "/users/"+alice.ID, `{"role":"ADMIN"}`), 428, "precondition_required")
				wantProblem(t, "unknown field", apiCall(t, ts, tok, "PATCH", "/users/"+alice.ID, `{"rol":"ADMIN"}`, "If-Match", etag), 400, "invalid_json")
				wantProblem(t, "bad role", apiCall(t, ts, tok, "PATCH", "/users/"+alice.ID, `{"role":"root"}`, "If-Match", etag), 422, "invalid")
				wantProblem(t, "huge body", apiCall(t, ts, tok, "PATCH", "/users/"+alice.ID, `{"role":"`+strings.Repeat("A", 70<<10)+`"}`, "If-Match", etag), 413, "too_large")
				r := apiCall(t, ts, tok, "PATCH", "/users/"+alice.ID, `{"role":"ADMIN"}`, "If-Match", etag)
				if r.status != 200 || r.body["role"] != "ADMIN" || r.header.Get("ETag") == etag {
					t.Fatalf("patch role: %d %v ETag %q (was %q)", r.status, r.body, r.header.Get("ETag"), etag)
				}
				wantProblem(t, "patch with a stale ETag", apiCall(t, ts, tok, "PATCH", "/users/"+alice.ID, `{"email_verified":false}`, "If-Match", etag), 412, "version_mismatch")

				// Two admins with the same ETag: one wins, the other learns.
				etag = r.header.Get("ETag")
				var wg sync.WaitGroup
				statuses := make([]int, 2)
				for i, body := range []string{`{"email_verified":false}`, `{"disabled":true}`} {
					wg.Go(func() { statuses[i] = apiCall(t, ts, tok, "PATCH", "/users/"+alice.ID, body, "If-Match", etag).status })
				}
				wg.Wait()
				if !(statuses[0] == 200 && statuses[1] == 412 || statuses[0] == 412 && statuses[1] == 200) {
					t.Errorf("concurrent patches with one ETag: %v, want one 200 and one 412", statuses)
				}
				// Back to a verified, enabled account for the sign-in below.
				r = apiCall(t, ts, tok, "GET", "/users/"+alice.ID, "")
				r = apiCall(t, ts, tok, "PATCH", "/users/"+alice.ID, `{"email_verified":true,"disabled":false,"locked":false}`, "If-Match", r.header.Get("ETag"))
				if r.status != 200 || r.body["email_verified"] != true || r.body["disabled"] != false {
					t.Errorf("patch several fields: %d %v", r.status, r.body)
				}
			})

			t.Run("role shows in the next ID token", func(t *testing.T) {
				rp := newRP(t, ts, app)
				ar, code := rp.signIn(newBrowser(t, ts.issuer), "alice@example.com", testPassword)
				if role := rp.exchange(ar, code).claims["role"]; role != "ADMIN" {
					t.Errorf("role in the ID token after the patch: %v, want ADMIN", role)
				}
			})

			t.Run("create and delete", func(t *testing.T) {
				r := apiCall(t, ts, tok, "POST", "/users", `{"email":"bob@example.com","name":"Bob","email_verified":true}`)
				if r.status != 201 || r.body["email"] != "bob@example.com" || r.body["role"] != "USER" || r.header.Get("Location") == "" {
					t.Fatalf("create: %d %v", r.status, r.body)
				}
				id, etag := r.body["id"].(string), r.header.Get("ETag")
				wantProblem(t, "create a taken email", apiCall(t, ts, tok, "POST", "/users", `{"email":"bob@example.com","name":"Bob"}`), 409, "conflict")
				wantProblem(t, "create with a bad email", apiCall(t, ts, tok, "POST", "/users", `{"email":"bob","name":"Bob"}`), 422, "invalid")
				wantProblem(t, "delete without If-Match", apiCall(t, ts, tok, "DELETE", "/users/"+id, ""), 428, "precondition_required")
				if r := apiCall(t, ts, tok, "DELETE", "/users/"+id, "", "If-Match", etag); r.status != 204 {
					t.Fatalf("delete: %d %v", r.status, r.body)
				}
				wantProblem(t, "get after delete", apiCall(t, ts, tok, "GET", "/users/"+id, ""), 404, "not_found")
			})

			t.Run("openapi document", func(t *testing.T) {
				r := apiCall(t, ts, "", "GET", "/openapi.json", "")
				if r.status != 200 || r.body["openapi"] != "3.1.0" {
					t.Errorf("openapi.json: %d %v", r.status, r.body["openapi"])
				}
			})

			t.Run("expired token", func(t *testing.T) {
				ts.clock.advance(61 * time.Minute) // past the default access token lifetime (1h)
				wantProblem(t, "an expired token", apiCall(t, ts, tok, "GET", "/users", ""), 401, "invalid_token")
			})
		})
	}
}
