package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// adminToken registers a client_credentials client allowed gatehouse:admin
// and returns a token of it.
func adminToken(t *testing.T, ts *testServer) string {
	t.Helper()
	ops := ts.createClient("--name", "ops", "--grant-types", "client_credentials", "--allowed-scopes", "gatehouse:admin")
	return ccToken(t, ts, ops, "gatehouse:admin")
}

// noSecretFields fails if an answer about a client carries a secret hash
// (or anything else that looks like stored secret material).
func noSecretFields(t *testing.T, what string, body map[string]any) {
	t.Helper()
	for k := range body {
		if strings.Contains(k, "hash") || (strings.Contains(k, "secret") && k != "client_secret" && k != "has_secret") {
			t.Errorf("%s: field %q in %v", what, k, body)
		}
	}
}

// concurrentPatches sends the bodies as PATCHes of path with one ETag at
// once and returns their statuses.
func concurrentPatches(t *testing.T, ts *testServer, tok, path, etag string, bodies ...string) []int {
	statuses := make([]int, len(bodies))
	var wg sync.WaitGroup
	for i, body := range bodies {
		wg.Go(func() { statuses[i] = apiCall(t, ts, tok, "PATCH", path, body, "If-Match", etag).status })
	}
	wg.Wait()
	return statuses
}

func oneWinner(statuses []int) bool {
	return slices.Equal(statuses, []int{200, 412}) || slices.Equal(statuses, []int{412, 200})
}

// TestAdminAPIClients: clients through the admin API, their secrets shown
// once and effective at the token endpoint at once (the provider's client
// cache is told of the change).
func TestAdminAPIClients(t *testing.T) {
	for _, backend := range backends {
		t.Run(backend, func(t *testing.T) {
			ts := startServer(t, backend, nil)
			tok := adminToken(t, ts)

			r := apiCall(t, ts, tok, "POST", "/clients", `{"id":"svc","name":"Service","grant_types":["client_credentials"],"allowed_scopes":["reports:read"]}`)
			secret, _ := r.body["client_secret"].(string)
			if r.status != 201 || secret == "" || r.body["has_secret"] != true || r.header.Get("Location") != "/admin/api/v1/clients/svc" || r.header.Get("ETag") == "" {
				t.Fatalf("create: %d %v %v", r.status, r.header, r.body)
			}
			noSecretFields(t, "create", r.body)
			svc := createdClient{ClientID: "svc", ClientSecret: secret}
			ccToken(t, ts, svc, "reports:read")

			r = apiCall(t, ts, tok, "GET", "/clients/svc", "")
			if r.status != 200 || r.body["client_secret"] != nil || r.body["name"] != "Service" || r.body["auth_method"] != "client_secret_basic" {
				t.Errorf("get: %d %v", r.status, r.body)
			}
			noSecretFields(t, "get", r.body)
			etag := r.header.Get("ETag")
			r = apiCall(t, ts, tok, "GET", "/clients", "")
			items, _ := r.body["items"].([]any)
			var ids []string
			for _, it := range items {
				c := it.(map[string]any)
				ids = append(ids, c["id"].(string))
				noSecretFields(t, "list", c)
				if c["client_secret"] != nil {
					t.Errorf("list shows a secret: %v", c)
				}
			}
			if r.status != 200 || !slices.Contains(ids, "svc") || len(ids) != 2 {
				t.Errorf("list: %d %v", r.status, ids)
			}

			t.Run("create refused", func(t *testing.T) {
				r := apiCall(t, ts, tok, "POST", "/clients", `{"id":"web","redirect_uris":["http://app.example/cb"]}`)
				wantProblem(t, "an http redirect URI off loopback", r, 422, "invalid")
				if r.body["field"] != "redirect_uris" {
					t.Errorf("bad redirect URI: field %v", r.body["field"])
				}
				wantProblem(t, "a taken id", apiCall(t, ts, tok, "POST", "/clients", `{"id":"svc","grant_types":["client_credentials"]}`), 409, "conflict")
				wantProblem(t, "an unknown field", apiCall(t, ts, tok, "POST", "/clients", `{"id":"x","secret_hash":"00"}`), 400, "invalid_json")
				wantProblem(t, "get an unknown client", apiCall(t, ts, tok, "GET", "/clients/nope", ""), 404, "not_found")
			})

			t.Run("public client", func(t *testing.T) {
				r := apiCall(t, ts, tok, "POST", "/clients", `{"id":"spa","type":"spa","public":true,"redirect_uris":["https://spa.example/cb"],"require_mfa":true}`)
				if r.status != 201 || r.body["client_secret"] != nil || r.body["has_secret"] != false || r.body["require_mfa"] != true || r.body["auth_method"] != "none" {
					t.Fatalf("create public: %d %v", r.status, r.body)
				}
				wantProblem(t, "rotate a public client's secret", apiCall(t, ts, tok, "POST", "/clients/spa/secret", "", "If-Match", r.header.Get("ETag")), 409, "conflict")
			})

			t.Run("patch", func(t *testing.T) {
				r := apiCall(t, ts, tok, "POST", "/clients", `{"id":"web","redirect_uris":["https://app.example/cb"]}`)
				if r.status != 201 {
					t.Fatalf("create web: %d %v", r.status, r.body)
				}
				etag := r.header.Get("ETag")
				wantProblem(t, "patch without If-Match", apiCall(t, ts, tok, "PATCH", "/clients/web", `{"name":"Web"}`), 428, "precondition_required")
				r = apiCall(t, ts, tok, "PATCH", "/clients/web", `{"redirect_uris":["https://app.example/cb","http://evil.example/cb"]}`, "If-Match", etag)
				wantProblem(t, "patch with a refused redirect URI", r, 422, "invalid")
				if r.body["field"] != "redirect_uris" {
					t.Errorf("refused redirect URI: field %v", r.body["field"])
				}
				r = apiCall(t, ts, tok, "PATCH", "/clients/web", `{"name":"Web","redirect_uris":["https://app.example/cb","https://app.example/cb2"],"require_consent":true}`, "If-Match", etag)
				uris, _ := r.body["redirect_uris"].([]any)
				if r.status != 200 || r.body["name"] != "Web" || len(uris) != 2 || r.body["require_consent"] != true || r.header.Get("ETag") == etag {
					t.Fatalf("patch: %d %v", r.status, r.body)
				}
				wantProblem(t, "patch with a stale ETag", apiCall(t, ts, tok, "PATCH", "/clients/web", `{"name":"Again"}`, "If-Match", etag), 412, "version_mismatch")

				// Two admins with one ETag: one wins, the other learns.
				etag = r.header.Get("ETag")
				if s := concurrentPatches(t, ts, tok, "/clients/web", etag, `{"name":"One"}`, `{"require_mfa":true}`); !oneWinner(s) {
					t.Errorf("concurrent client patches with one ETag: %v, want one 200 and one 412", s)
				}
				r = apiCall(t, ts, tok, "GET", "/clients/web", "")
				if (r.body["name"] == "One") == (r.body["require_mfa"] == true) {
					t.Errorf("after concurrent patches: %v, want exactly one applied", r.body)
				}
			})

			t.Run("rotate secret", func(t *testing.T) {
				wantProblem(t, "rotate without If-Match", apiCall(t, ts, tok, "POST", "/clients/svc/secret", ""), 428, "precondition_required")
				r := apiCall(t, ts, tok, "POST", "/clients/svc/secret", "", "If-Match", etag)
				fresh, _ := r.body["client_secret"].(string)
				if r.status != 200 || fresh == "" || fresh == secret || r.header.Get("ETag") == etag {
					t.Fatalf("rotate: %d %v", r.status, r.body)
				}
				noSecretFields(t, "rotate", r.body)
				wantProblem(t, "rotate with a stale ETag", apiCall(t, ts, tok, "POST", "/clients/svc/secret", "", "If-Match", etag), 412, "version_mismatch")
				if _, err := ccConfig(ts, svc, "reports:read").Token(context.Background()); !isOAuthError(err, "invalid_client") {
					t.Errorf("the old secret after rotation: %v, want invalid_client", err)
				}
				svc.ClientSecret = fresh
				ccToken(t, ts, svc, "reports:read")
				if r := apiCall(t, ts, tok, "GET", "/clients/svc", ""); r.body["client_secret"] != nil {
					t.Errorf("the secret shown again: %v", r.body)
				}
				etag = r.header.Get("ETag")
			})

			t.Run("delete", func(t *testing.T) {
				wantProblem(t, "delete without If-Match", apiCall(t, ts, tok, "DELETE", "/clients/svc", ""), 428, "precondition_required")
				if r := apiCall(t, ts, tok, "DELETE", "/clients/svc", "", "If-Match", etag); r.status != 204 {
					t.Fatalf("delete: %d %v", r.status, r.body)
				}
				wantProblem(t, "get after delete", apiCall(t, ts, tok, "GET", "/clients/svc", ""), 404, "not_found")
				if _, err := ccConfig(ts, svc, "reports:read").Token(context.Background()); !isOAuthError(err, "invalid_client") {
					t.Errorf("a deleted client at the token endpoint: %v, want invalid_client", err)
				}
			})
		})
	}
}

// TestAdminAPIKeys: the key list shows no key material, and a rotation
// through the API changes the published key set and the kid of newly
// signed ID and access tokens at once.
func TestAdminAPIKeys(t *testing.T) {
	for _, backend := range backends {
		t.Run(backend, func(t *testing.T) {
			ts := startServer(t, backend, nil)
			tok := adminToken(t, ts)
			app := ts.createClient("--name", "App", "--redirect-uri", redirectA)
			ts.createUser("alice@example.com", testPassword)
			r := apiCall(t, ts, tok, "POST", "/clients", `{"id":"jwt-svc","grant_types":["client_credentials"],"access_token":"jwt","allowed_scopes":["reports:read"]}`)
			if r.status != 201 {
				t.Fatalf("create: %d %v", r.status, r.body)
			}
			jwtSvc := createdClient{ClientID: "jwt-svc", ClientSecret: r.body["client_secret"].(string)}

			keys := func() []map[string]any {
				t.Helper()
				r := apiCall(t, ts, tok, "GET", "/keys", "")
				if r.status != 200 {
					t.Fatalf("GET /keys: %d %v", r.status, r.body)
				}
				var out []map[string]any
				for _, it := range r.body["items"].([]any) {
					k := it.(map[string]any)
					for f := range k {
						if !slices.Contains([]string{"kid", "alg", "state", "created_at", "activated_at", "retired_at", "remove_after"}, f) {
							t.Errorf("key field %q: %v", f, k)
						}
					}
					out = append(out, k)
				}
				return out
			}
			before := keys()
			// An active and a next key of each algorithm, the default
			// (RS256) first in each state.
			if len(before) != 6 || before[0]["state"] != "active" || before[0]["alg"] != "RS256" || before[2]["state"] != "active" ||
				before[3]["state"] != "next" || before[3]["alg"] != "RS256" {
				t.Fatalf("keys before: %v", before)
			}
			oldKid := before[0]["kid"].(string)
			jwksBefore := jwksKids(t, ts.issuer)
			rp := newRP(t, ts, app)
			ar, code := rp.signIn(newBrowser(t, ts.issuer), "alice@example.com", testPassword)
			if kid := jwtKid(t, rp.exchange(ar, code).raw); kid != oldKid {
				t.Fatalf("ID token before rotation signed by %s, want the active %s", kid, oldKid)
			}

			r = apiCall(t, ts, tok, "POST", "/keys/rotate", "")
			active, _ := r.body["active_kid"].(string)
			if r.status != 200 || r.body["previous_kid"] != oldKid || active == "" || active == oldKid {
				t.Fatalf("rotate: %d %v", r.status, r.body)
			}
			jwksAfter := jwksKids(t, ts.issuer)
			if !slices.Contains(jwksAfter, active) || !slices.Contains(jwksAfter, oldKid) {
				t.Errorf("JWKS after rotation %v lacks the active %s or the retired %s", jwksAfter, active, oldKid)
			}
			if !slices.ContainsFunc(jwksAfter, func(k string) bool { return !slices.Contains(jwksBefore, k) }) {
				t.Errorf("JWKS unchanged by the rotation: %v", jwksAfter)
			}
			after := keys()
			states := map[string]string{}
			for _, k := range after {
				states[k["kid"].(string)] = k["state"].(string)
			}
			if after[0]["kid"] != active || states[active] != "active" || states[oldKid] != "retired" || len(after) != 9 {
				t.Errorf("keys after rotation: %v", after)
			}
			if algs, _ := r.body["algorithms"].([]any); len(algs) != 3 {
				t.Errorf("rotate: algorithms %v, want one rotation per algorithm", r.body["algorithms"])
			}

			ar, code = rp.signIn(newBrowser(t, ts.issuer), "alice@example.com", testPassword)
			if kid := jwtKid(t, rp.exchange(ar, code).raw); kid != active {
				t.Errorf("ID token after rotation signed by %s, want %s", kid, active)
			}
			if kid := jwtKid(t, ccToken(t, ts, jwtSvc, "reports:read")); kid != active {
				t.Errorf("JWT access token after rotation signed by %s, want %s", kid, active)
			}
		})
	}
}

// TestAdminAPIUserSessions: a user's sessions listed and ended, the
// password set, and a multi-field PATCH applied whole or not at all.
func TestAdminAPIUserSessions(t *testing.T) {
	for _, backend := range backends {
		t.Run(backend, func(t *testing.T) {
			ts := startServer(t, backend, nil)
			tok := adminToken(t, ts)
			app := ts.createClient("--name", "App", "--redirect-uri", redirectA)
			alice := ts.createUser("alice@example.com", testPassword)
			rp := newRP(t, ts, app)
			var refresh []string
			for range 2 {
				ar, code := rp.signIn(newBrowser(t, ts.issuer), "alice@example.com", testPassword)
				refresh = append(refresh, rp.exchange(ar, code).token.RefreshToken)
			}
			path := "/users/" + alice.ID

			r := apiCall(t, ts, tok, "GET", path+"/sessions", "")
			items, _ := r.body["items"].([]any)
			if r.status != 200 || len(items) != 2 {
				t.Fatalf("sessions: %d %v", r.status, r.body)
			}
			first := items[0].(map[string]any)
			apps, _ := first["apps"].([]any)
			if len(apps) != 1 || apps[0].(map[string]any)["client_id"] != app.ClientID || first["device"] == "" || first["expired"] != false {
				t.Errorf("session: %v", first)
			}
			wantProblem(t, "sessions of an unknown user", apiCall(t, ts, tok, "GET", "/users/nobody/sessions", ""), 404, "not_found")

			sid := first["id"].(string)
			r = apiCall(t, ts, tok, "DELETE", path+"/sessions/"+sid, "")
			if r.status != 200 || r.body["sessions_ended"] != float64(1) {
				t.Fatalf("end one session: %d %v", r.status, r.body)
			}
			wantProblem(t, "end it again", apiCall(t, ts, tok, "DELETE", path+"/sessions/"+sid, ""), 404, "not_found")
			if r := apiCall(t, ts, tok, "GET", path+"/sessions", ""); len(r.body["items"].([]any)) != 1 {
				t.Errorf("sessions after ending one: %v", r.body)
			}
			r = apiCall(t, ts, tok, "DELETE", path+"/sessions", "")
			if r.status != 200 || r.body["sessions_ended"] != float64(1) {
				t.Fatalf("sign out everywhere: %d %v", r.status, r.body)
			}
			for i, rt := range refresh {
				if _, err := rp.refresh(rt); err == nil {
					t.Errorf("refresh token %d works after the sessions ended", i)
				}
			}

			t.Run("password", func(t *testing.T) {
				etag := apiCall(t, ts, tok, "GET", path, "").header.Get("ETag")
				wantProblem(t, "password without If-Match", apiCall(t, ts, tok, "POST", path+"/password", `{"password":"An0ther-Passw0rd"}`), 428, "precondition_required")
				r := apiCall(t, ts, tok, "POST", path+"/password", `{"password":"short"}`, "If-Match", etag)
				wantProblem(t, "a password the policy refuses", r, 422, "invalid")
				if r.body["field"] != "password" {
					t.Errorf("weak password: field %v", r.body["field"])
				}
				r = apiCall(t, ts, tok, "POST", path+"/password", `{"password":"An0ther-Passw0rd"}`, "If-Match", etag)
				if r.status != 200 || r.body["id"] != alice.ID || r.header.Get("ETag") == etag {
					t.Fatalf("set password: %d %v", r.status, r.body)
				}
				wantProblem(t, "password with a stale ETag", apiCall(t, ts, tok, "POST", path+"/password", `{"password":"Third-Passw0rd"}`, "If-Match", etag), 412, "version_mismatch")
				ar, code := rp.signIn(newBrowser(t, ts.issuer), "alice@example.com", "An0ther-Passw0rd")
				rp.exchange(ar, code)
			})

			t.Run("patch is atomic", func(t *testing.T) {
				get := func() apiResponse { return apiCall(t, ts, tok, "GET", path, "") }
				stale := get().header.Get("ETag")
				if r := apiCall(t, ts, tok, "PATCH", path, `{"email_verified":false}`, "If-Match", stale); r.status != 200 {
					t.Fatalf("patch: %d %v", r.status, r.body)
				}
				wantProblem(t, "role and disabled with a stale ETag", apiCall(t, ts, tok, "PATCH", path, `{"role":"ADMIN","disabled":true}`, "If-Match", stale), 412, "version_mismatch")
				cur := get()
				wantProblem(t, "a bad role with disabled", apiCall(t, ts, tok, "PATCH", path, `{"disabled":true,"role":"root"}`, "If-Match", cur.header.Get("ETag")), 422, "invalid")
				if cur = get(); cur.body["role"] != "USER" || cur.body["disabled"] != false {
					t.Fatalf("refused patches changed the user: %v", cur.body)
				}
				// Two admins with one ETag, each changing two fields: one
				// wins whole; nothing of the other shows.
				for round := range 3 {
					cur = get()
					s := concurrentPatches(t, ts, tok, path, cur.header.Get("ETag"),
						`{"role":"ADMIN","disabled":true}`, fmt.Sprintf(`{"role":"R%d","email_verified":true}`, round))
					if !oneWinner(s) {
						t.Fatalf("round %d: concurrent patches %v, want one 200 and one 412", round, s)
					}
					u := get().body
					first := u["role"] == "ADMIN" && u["disabled"] == true && u["email_verified"] == false
					second := u["role"] == fmt.Sprintf("R%d", round) && u["disabled"] == false && u["email_verified"] == true
					if s[0] == 200 && !first || s[1] == 200 && !second {
						t.Fatalf("round %d: statuses %v, user %v: not the winner's change whole", round, s, u)
					}
					// Back to the start.
					r := apiCall(t, ts, tok, "PATCH", path, `{"role":"USER","disabled":false,"email_verified":false}`, "If-Match", get().header.Get("ETag"))
					if r.status != 200 {
						t.Fatalf("reset: %d %v", r.status, r.body)
					}
				}
			})
		})
	}
}

// TestAdminAPIRateLimit: bad tokens from one client address are answered
// 429 with Retry-After once over the budget (10 a minute), a good token
// from there too, until the budget refills. The address comes from
// X-Forwarded-For (the test is a trusted proxy), random per run, so runs
// sharing a Redis do not share budgets.
func TestAdminAPIRateLimit(t *testing.T) {
	for _, limiter := range []string{"memory", "redis"} {
		t.Run(limiter, func(t *testing.T) {
			vars := map[string]string{"GATEHOUSE_TRUSTED_PROXIES": "127.0.0.1,::1"}
			if limiter == "redis" {
				vars["REDIS_URL"], _ = requireRedis(t)
			}
			ts := startServer(t, "sqlite", vars)
			tok := adminToken(t, ts)
			ip := fmt.Sprintf("2001:db8:%x:%x::7", rand.Uint32N(1<<16), rand.Uint32N(1<<16))
			from := func(token string) apiResponse {
				return apiCall(t, ts, token, "GET", "/keys", "", "X-Forwarded-For", ip)
			}
			failures, limited := 0, apiResponse{}
			for range 15 {
				r := from("not-a-token")
				if r.status == 429 {
					limited = r
					break
				}
				if r.status != 401 {
					t.Fatalf("bad token: %d %v", r.status, r.body)
				}
				failures++
			}
			// 10 a minute; the 11th failure is refused by the limiter
			// (answered 401, nothing new learnt), the 12th request is
			// not looked at.
			if limited.status != 429 || failures < 10 || failures > 12 {
				t.Fatalf("after %d failures: %d %v, want 429 after 10 or 11", failures, limited.status, limited.body)
			}
			wantProblem(t, "a bad token over the budget", limited, 429, "rate_limited")
			wait, err := strconv.Atoi(limited.header.Get("Retry-After"))
			if err != nil || wait < 1 || wait > 6 {
				t.Errorf("Retry-After %q, want 1–6 seconds (a minute / 10)", limited.header.Get("Retry-After"))
			}
			wantProblem(t, "a good token from the limited address", from(tok), 429, "rate_limited")
			if r := apiCall(t, ts, tok, "GET", "/keys", "", "X-Forwarded-For", "2001:db8:ffff:1::1"); r.status != 200 {
				t.Errorf("a good token from another address: %d %v", r.status, r.body)
			}
			if r := apiCall(t, ts, "", "GET", "/openapi.json", "", "X-Forwarded-For", ip); r.status != 200 {
				t.Errorf("the document from the limited address: %d", r.status)
			}
			if limiter == "redis" {
				return // Redis keeps its own time: the refill is seen with memory only
			}
			ts.clock.advance(time.Duration(wait) * time.Second)
			if r := from(tok); r.status != 200 {
				t.Errorf("a good token after Retry-After: %d %v", r.status, r.body)
			}
		})
	}
}

// TestAdminAPIClientAuthMethod: PATCH /clients/{id} switches a client to
// private_key_jwt and back, like the console: keys replace the secret,
// and a switch back leaves none until the secret is rotated.
func TestAdminAPIClientAuthMethod(t *testing.T) {
	for _, backend := range backends {
		t.Run(backend, func(t *testing.T) {
			ts := startServer(t, backend, nil)
			tok := adminToken(t, ts)
			r := apiCall(t, ts, tok, "POST", "/clients", `{"id":"svc","grant_types":["client_credentials"]}`)
			secret, _ := r.body["client_secret"].(string)
			if r.status != 201 || secret == "" {
				t.Fatalf("create: %d %v", r.status, r.body)
			}
			cc := url.Values{"grant_type": {"client_credentials"}}
			patch := func(body string) apiResponse {
				t.Helper()
				etag := apiCall(t, ts, tok, "GET", "/clients/svc", "").header.Get("ETag")
				return apiCall(t, ts, tok, "PATCH", "/clients/svc", body, "If-Match", etag)
			}

			r = patch(`{"auth_method":"private_key_jwt"}`)
			wantProblem(t, "private_key_jwt without keys", r, 422, "invalid")
			if r.body["field"] != "jwks" {
				t.Errorf("private_key_jwt without keys: field %v", r.body["field"])
			}
			wantProblem(t, "auth method none", patch(`{"auth_method":"none"}`), 422, "invalid")

			k := newEdKey(t, "k1")
			r = patch(`{"auth_method":"private_key_jwt","jwks":` + publicJWKS(t, k) + `}`)
			if r.status != 200 || r.body["auth_method"] != "private_key_jwt" || r.body["has_secret"] != false || r.body["jwks"] == nil {
				t.Fatalf("switch to private_key_jwt: %d %v", r.status, r.body)
			}
			status, _, body := postForm(t, ts.issuer+"/oauth/token", cc, "svc", secret)
			wantOAuthError(t, "the old secret", status, body, http.StatusUnauthorized, "invalid_client")
			if status, _, body := tokenWithAssertion(t, ts, sign(t, k, goodClaims(t, ts, "svc"))); status != http.StatusOK {
				t.Fatalf("an assertion: %d %v", status, body)
			}

			// Back to a secret: the keys go, and there is no secret until
			// it is rotated in.
			r = patch(`{"auth_method":"client_secret_post"}`)
			if r.status != 200 || r.body["auth_method"] != "client_secret_post" || r.body["has_secret"] != false || r.body["jwks"] != nil {
				t.Fatalf("switch to client_secret_post: %d %v", r.status, r.body)
			}
			post := func(secret string) (int, map[string]any) {
				form := url.Values{"grant_type": {"client_credentials"}, "client_id": {"svc"}, "client_secret": {secret}}
				status, _, body := postForm(t, ts.issuer+"/oauth/token", form, "", "")
				return status, body
			}
			status, body = post(secret)
			wantOAuthError(t, "the secret from before private_key_jwt", status, body, http.StatusUnauthorized, "invalid_client")
			r = apiCall(t, ts, tok, "POST", "/clients/svc/secret", "", "If-Match", r.header.Get("ETag"))
			fresh, _ := r.body["client_secret"].(string)
			if r.status != 200 || fresh == "" || r.body["has_secret"] != true {
				t.Fatalf("rotate after the switch: %d %v", r.status, r.body)
			}
			if status, body := post(fresh); status != http.StatusOK {
				t.Fatalf("the rotated secret: %d %v", status, body)
			}
		})
	}
}
