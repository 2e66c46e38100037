// Package githubtest is a fake GitHub for tests of Gatehouse's "Continue with
// GitHub" connector: one OAuth app plus the few REST endpoints a sign-in needs,
// laid out like GitHub Enterprise Server (web flow at the root, REST API under
// /api/v3), listening on 127.0.0.1 and closed when the test ends.
//
//	gh := githubtest.New(t, "client-id", "client-secret")
//	gh.AddUser(githubtest.User{ID: 1, Login: "ada", Emails: ...})
//	gh.SetApprover("ada") // or "" for a chooser page a browser can click
//	// point GATEHOUSE_GITHUB_URL at gh.URL and run the flow under test
//
// It follows GitHub's documented behaviour where it matters to a client:
// token errors come back as HTTP 200 with an "error" member, codes are single
// use, expire after ten minutes and are bound to the client and redirect_uri,
// PKCE is S256 only, /user/emails needs the user:email (or user) scope, and
// /user/orgs without read:org lists only public memberships. Faults (failing,
// hanging and oversized responses) can be switched on per test.
package githubtest

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"html/template"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

const (
	apiPrefix = "/api/v3"
	// codeTTL is GitHub's lifetime for an authorization code.
	codeTTL = 10 * time.Minute
	// OversizeBytes is how much padding an Oversize response carries before
	// its real body: more than the 1 MiB (upstream.DefaultMaxBodyBytes) Gatehouse
	// allows itself to read.
	OversizeBytes = 3 << 20
	tokenDocs     = "https://docs.github.com/apps/managing-oauth-apps/troubleshooting-oauth-app-access-token-request-errors/"
)

// User is an account on the fake GitHub.
type User struct {
	ID          int64 // GitHub's stable numeric ID; 0 means "assign one"
	Login       string
	Name        string // "" is served as null
	PublicEmail string // the profile's public email; "" is served as null
	Emails      []Email
	Orgs        []Org
}

// Email is one address of a user as /user/emails lists it.
type Email struct {
	Email      string
	Primary    bool
	Verified   bool
	Visibility string // "public", "private" or "" (served as null)
}

// Org is a user's membership of an organization.
type Org struct {
	Login  string
	ID     int64 // 0 means "assign one"
	Public bool  // the user publicized the membership: listed even without read:org
}

// Request is one request the server received, for assertions. Secrets in
// Values (client_secret, code_verifier) are replaced by "[redacted]" so their
// presence can be checked without the value ending up in test logs.
type Request struct {
	Method     string
	Path       string
	Values     url.Values // query and form values
	Accept     string
	AuthScheme string // scheme of the Authorization header ("Bearer", "token", "Basic") or ""
	UserAgent  string
}

// Server is the fake. Its methods are safe for concurrent use.
type Server struct {
	URL string // base URL, e.g. http://127.0.0.1:12345; the API is URL+"/api/v3"

	clientID, clientSecret string
	mux                    *http.ServeMux
	closing                chan struct{} // closed at cleanup, releases hanging handlers

	mu        sync.Mutex
	users     map[string]User
	order     []string // logins in AddUser order, for the chooser page
	nextID    int64
	approver  string
	deny      bool
	skew      time.Duration // added to the wall clock by Advance
	codes     map[string]grant
	tokens    map[string]grant
	log       []Request
	tokenReqs int
	tokenFail int
	tokenHang bool
	apiFail   map[string]int
	apiHang   bool
	oversize  map[string]bool
}

// grant is what an authorization code, and later its access token, carries.
type grant struct {
	login, clientID, redirectURI, challenge string
	scopes                                  []string
	expires                                 time.Time
}

// New starts a fake GitHub with one OAuth app on 127.0.0.1; it is closed when
// the test ends.
func New(t testing.TB, clientID, clientSecret string) *Server {
	t.Helper()
	s := &Server{
		clientID: clientID, clientSecret: clientSecret,
		mux:     http.NewServeMux(),
		closing: make(chan struct{}),
		users:   map[string]User{}, nextID: 1000,
		codes: map[string]grant{}, tokens: map[string]grant{},
		apiFail: map[string]int{}, oversize: map[string]bool{},
	}
	s.mux.HandleFunc("GET /login/oauth/authorize", s.authorize)
	s.mux.HandleFunc("POST /login/oauth/authorize/approve", s.approve)
	s.mux.HandleFunc("POST /login/oauth/access_token", s.token)
	s.mux.HandleFunc("GET "+apiPrefix+"/user", s.apiUser)
	s.mux.HandleFunc("GET "+apiPrefix+"/user/emails", s.apiEmails)
	s.mux.HandleFunc("GET "+apiPrefix+"/user/orgs", s.apiOrgs)
	s.mux.HandleFunc(apiPrefix+"/", func(w http.ResponseWriter, r *http.Request) {
		s.writeJSON(w, r, http.StatusNotFound, apiMessage("Not Found"))
	})

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("githubtest: listen: %v", err)
	}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(s.serve))
	srv.Listener.Close()
	srv.Listener = ln
	srv.Start()
	s.URL = srv.URL
	t.Cleanup(func() {
		close(s.closing)
		srv.Close()
	})
	return s
}

// AddUser adds (or replaces, by login) an account. Zero IDs are assigned.
func (s *Server) AddUser(u User) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if u.ID == 0 {
		u.ID = s.newID()
	}
	u.Emails = slices.Clone(u.Emails)
	u.Orgs = slices.Clone(u.Orgs)
	for i := range u.Orgs {
		if u.Orgs[i].ID == 0 {
			u.Orgs[i].ID = s.newID()
		}
	}
	if _, ok := s.users[u.Login]; !ok {
		s.order = append(s.order, u.Login)
	}
	s.users[u.Login] = u
}

func (s *Server) newID() int64 { s.nextID++; return s.nextID }

// SetApprover makes /login/oauth/authorize approve at once as login (who must
// have been added). "" serves the chooser page instead.
func (s *Server) SetApprover(login string) { s.mu.Lock(); s.approver = login; s.mu.Unlock() }

// Deny makes /login/oauth/authorize redirect back with access_denied, as
// when the user clicks Cancel.
func (s *Server) Deny(deny bool) { s.mu.Lock(); s.deny = deny; s.mu.Unlock() }

// Advance moves the server's clock forward, to expire codes without sleeping.
func (s *Server) Advance(d time.Duration) { s.mu.Lock(); s.skew += d; s.mu.Unlock() }

// FailToken makes every token request fail before the code is looked at (so
// the code stays usable): 200 answers GitHub-style with an "error" member,
// any other status answers with that status and an HTML page. 0 switches it off.
func (s *Server) FailToken(status int) { s.mu.Lock(); s.tokenFail = status; s.mu.Unlock() }

// HangToken makes token requests block until the client gives up.
func (s *Server) HangToken() { s.mu.Lock(); s.tokenHang = true; s.mu.Unlock() }

// FailAPI makes the API path ("/user" or "/api/v3/user") answer status with a
// JSON message. 0 switches it off.
func (s *Server) FailAPI(path string, status int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if status == 0 {
		delete(s.apiFail, fullPath(path))
	} else {
		s.apiFail[fullPath(path)] = status
	}
}

// HangAPI makes every API request block until the client gives up (its
// context ends), to test Gatehouse's client timeout.
func (s *Server) HangAPI() { s.mu.Lock(); s.apiHang = true; s.mu.Unlock() }

// Oversize makes the JSON responses of path ("/user", "/api/v3/user/orgs",
// "/login/oauth/access_token") start with OversizeBytes of white space: still
// valid JSON of the right shape, rejected only by a size limit.
func (s *Server) Oversize(path string) { s.mu.Lock(); s.oversize[fullPath(path)] = true; s.mu.Unlock() }

// fullPath accepts API paths with or without the /api/v3 prefix.
func fullPath(p string) string {
	if strings.HasPrefix(p, "/login/") || strings.HasPrefix(p, apiPrefix+"/") {
		return p
	}
	return apiPrefix + p
}

// Requests returns a copy of the log of received requests, oldest first.
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Request, len(s.log))
	for i, r := range s.log {
		r.Values = cloneValues(r.Values)
		out[i] = r
	}
	return out
}

// TokenRequests counts the requests to the token endpoint, failed ones included.
func (s *Server) TokenRequests() int { s.mu.Lock(); defer s.mu.Unlock(); return s.tokenReqs }

// IssueToken mints an access token for login with scopes, for tests that only
// exercise the API.
func (s *Server) IssueToken(login string, scopes ...string) string {
	tok := "gho_" + randomHex(18)
	s.mu.Lock()
	s.tokens[tok] = grant{login: login, clientID: s.clientID, scopes: scopes}
	s.mu.Unlock()
	return tok
}

func cloneValues(v url.Values) url.Values {
	out := make(url.Values, len(v))
	for k, vs := range v {
		out[k] = slices.Clone(vs)
	}
	return out
}

// serve logs the request and applies API faults before routing it.
func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		http.Error(w, "githubtest: bad form: "+err.Error(), http.StatusBadRequest)
		return
	}
	rec := Request{Method: r.Method, Path: r.URL.Path, Values: cloneValues(r.Form),
		Accept: r.Header.Get("Accept"), UserAgent: r.UserAgent()}
	for _, k := range []string{"client_secret", "code_verifier"} {
		for i := range rec.Values[k] {
			rec.Values[k][i] = "[redacted]"
		}
	}
	rec.AuthScheme, _, _ = strings.Cut(r.Header.Get("Authorization"), " ")
	api := strings.HasPrefix(r.URL.Path, apiPrefix+"/")

	s.mu.Lock()
	s.log = append(s.log, rec)
	fail, hang := s.apiFail[r.URL.Path], s.apiHang
	s.mu.Unlock()

	switch {
	case !api:
	case hang:
		s.block(r)
		return
	case fail != 0:
		s.writeJSON(w, r, fail, apiMessage(http.StatusText(fail)))
		return
	case r.UserAgent() == "":
		// GitHub refuses API requests without a User-Agent.
		http.Error(w, "Request forbidden by administrative rules. Please make sure your request has a User-Agent header.", http.StatusForbidden)
		return
	}
	s.mux.ServeHTTP(w, r)
}

// block waits for the client to give up, or for the test to end.
func (s *Server) block(r *http.Request) {
	select {
	case <-r.Context().Done():
	case <-s.closing:
	}
}

func (s *Server) now() time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	return time.Now().Add(s.skew)
}

// ---- web flow ----

// authRequest is a validated authorization request.
type authRequest struct {
	state, challenge string
	redirect         *url.URL
	scopes           []string
}

// parseAuthorize validates the parameters of an authorization request (the
// query, or the hidden fields of the chooser's forms). On failure it has
// written the response and returns false.
func (s *Server) parseAuthorize(w http.ResponseWriter, r *http.Request) (authRequest, bool) {
	if r.Form.Get("client_id") != s.clientID {
		page(w, http.StatusNotFound, "Not Found", "No OAuth app with this client_id.")
		return authRequest{}, false
	}
	// A real app has a registered callback that stands in for a missing
	// redirect_uri; the fake has none, so redirect_uri is required.
	redirect, err := url.Parse(r.Form.Get("redirect_uri"))
	if err != nil || !redirect.IsAbs() {
		page(w, http.StatusBadRequest, "Bad request", "githubtest needs an absolute redirect_uri.")
		return authRequest{}, false
	}
	ar := authRequest{state: r.Form.Get("state"), challenge: r.Form.Get("code_challenge"), redirect: redirect}
	for _, sc := range strings.FieldsFunc(r.Form.Get("scope"), func(c rune) bool { return c == ' ' || c == ',' }) {
		if !slices.Contains(ar.scopes, sc) {
			ar.scopes = append(ar.scopes, sc)
		}
	}
	if ar.challenge != "" && r.Form.Get("code_challenge_method") != "S256" {
		// GitHub accepts only S256; the exact error it sends is a guess.
		redirectBack(w, r, redirect, url.Values{"error": {"invalid_request"},
			"error_description": {"Only the S256 code_challenge_method is supported."}, "state": {ar.state}})
		return authRequest{}, false
	}
	return ar, true
}

func (s *Server) authorize(w http.ResponseWriter, r *http.Request) {
	ar, ok := s.parseAuthorize(w, r)
	if !ok {
		return
	}
	s.mu.Lock()
	deny, approver, logins := s.deny, s.approver, slices.Clone(s.order)
	s.mu.Unlock()
	switch {
	case deny:
		denied(w, r, ar)
	case approver != "":
		s.issueCode(w, r, ar, approver)
	default:
		hidden := map[string]string{}
		for _, k := range []string{"client_id", "redirect_uri", "scope", "state", "code_challenge", "code_challenge_method"} {
			if v := r.Form.Get(k); v != "" {
				hidden[k] = v
			}
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		if err := chooser.Execute(w, map[string]any{"Hidden": hidden, "Logins": logins}); err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
		}
	}
}

// approve is where the chooser page's forms post.
func (s *Server) approve(w http.ResponseWriter, r *http.Request) {
	ar, ok := s.parseAuthorize(w, r)
	if !ok {
		return
	}
	if r.Form.Get("deny") != "" {
		denied(w, r, ar)
		return
	}
	s.issueCode(w, r, ar, r.Form.Get("login"))
}

// issueCode records a code for login and redirects back to the client.
func (s *Server) issueCode(w http.ResponseWriter, r *http.Request, ar authRequest, login string) {
	code := randomHex(10) // GitHub's codes are 20 hex digits
	expires := s.now().Add(codeTTL)
	s.mu.Lock()
	_, known := s.users[login]
	if known {
		s.codes[code] = grant{login: login, clientID: s.clientID, redirectURI: ar.redirect.String(),
			challenge: ar.challenge, scopes: ar.scopes, expires: expires}
	}
	s.mu.Unlock()
	if !known {
		page(w, http.StatusBadRequest, "Bad request", "githubtest has no user "+login+".")
		return
	}
	redirectBack(w, r, ar.redirect, url.Values{"code": {code}, "state": {ar.state}})
}

func denied(w http.ResponseWriter, r *http.Request, ar authRequest) {
	redirectBack(w, r, ar.redirect, url.Values{
		"error":             {"access_denied"},
		"error_description": {"The user has denied your application access."},
		"error_uri":         {"https://docs.github.com/apps/managing-oauth-apps/troubleshooting-authorization-request-errors/#access-denied"},
		"state":             {ar.state},
	})
}

// redirectBack redirects to the client's redirect_uri with params added to
// its query.
func redirectBack(w http.ResponseWriter, r *http.Request, to *url.URL, params url.Values) {
	u := *to
	q := u.Query()
	for k, v := range params {
		if v[0] != "" || k != "state" {
			q[k] = v
		}
	}
	u.RawQuery = q.Encode()
	http.Redirect(w, r, u.String(), http.StatusFound)
}

var chooser = template.Must(template.New("chooser").Parse(`<!doctype html>
<html><head><meta charset="utf-8"><title>Authorize application</title></head>
<body><h1>Authorize application</h1>
{{range .Logins}}<form method="post" action="/login/oauth/authorize/approve">
{{range $k, $v := $.Hidden}}<input type="hidden" name="{{$k}}" value="{{$v}}">
{{end}}<input type="hidden" name="login" value="{{.}}">
<button type="submit" id="approve-{{.}}">Sign in as {{.}}</button></form>
{{end}}<form method="post" action="/login/oauth/authorize/approve">
{{range $k, $v := .Hidden}}<input type="hidden" name="{{$k}}" value="{{$v}}">
{{end}}<input type="hidden" name="deny" value="1">
<button type="submit" id="deny">Cancel</button></form>
</body></html>
`))

func page(w http.ResponseWriter, status int, title, msg string) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	fmt.Fprintf(w, "<!doctype html><title>%s</title><h1>%s</h1><p>%s</p>\n",
		template.HTMLEscapeString(title), template.HTMLEscapeString(title), template.HTMLEscapeString(msg))
}

// ---- token endpoint ----

func (s *Server) token(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	s.tokenReqs++
	fail, hang := s.tokenFail, s.tokenHang
	s.mu.Unlock()
	switch {
	case hang:
		s.block(r)
		return
	case fail == http.StatusOK:
		s.tokenError(w, r, "server_error", "githubtest: injected failure", "")
		return
	case fail != 0:
		page(w, fail, http.StatusText(fail), "githubtest: injected failure")
		return
	}

	id, secret, basic := r.BasicAuth()
	if !basic {
		id, secret = r.Form.Get("client_id"), r.Form.Get("client_secret")
	}
	idOK := subtle.ConstantTimeCompare([]byte(id), []byte(s.clientID))
	secretOK := subtle.ConstantTimeCompare([]byte(secret), []byte(s.clientSecret))
	if idOK&secretOK != 1 {
		s.tokenError(w, r, "incorrect_client_credentials", "The client_id and/or client_secret passed are incorrect.", "incorrect-client-credentials")
		return
	}

	// A code is spent by any redemption attempt past client authentication,
	// failed ones included: the client never has a reason to retry one.
	now := s.now()
	s.mu.Lock()
	g, found := s.codes[r.Form.Get("code")]
	delete(s.codes, r.Form.Get("code"))
	s.mu.Unlock()
	if !found || g.clientID != id || now.After(g.expires) {
		s.tokenError(w, r, "bad_verification_code", "The code passed is incorrect or expired.", "bad-verification-code")
		return
	}
	// Real GitHub treats a missing redirect_uri here as "the registered
	// callback"; the fake insists on the one the code was issued for.
	if r.Form.Get("redirect_uri") != g.redirectURI {
		s.tokenError(w, r, "redirect_uri_mismatch", "The redirect_uri MUST match the registered callback URL for this application.", "redirect-uri-mismatch2")
		return
	}
	if g.challenge != "" {
		sum := sha256.Sum256([]byte(r.Form.Get("code_verifier")))
		want := base64.RawURLEncoding.EncodeToString(sum[:])
		if subtle.ConstantTimeCompare([]byte(want), []byte(g.challenge)) != 1 {
			// GitHub's wording for a PKCE failure is not documented; a bad
			// verifier makes the code unusable, so this is the closest.
			s.tokenError(w, r, "bad_verification_code", "The code passed is incorrect or expired.", "bad-verification-code")
			return
		}
	}

	tok := "gho_" + randomHex(18)
	s.mu.Lock()
	s.tokens[tok] = g
	s.mu.Unlock()
	s.tokenReply(w, r, [][2]string{{"access_token", tok}, {"token_type", "bearer"}, {"scope", strings.Join(g.scopes, ",")}})
}

// tokenError answers like GitHub: HTTP 200 with error members.
func (s *Server) tokenError(w http.ResponseWriter, r *http.Request, code, desc, anchor string) {
	uri := tokenDocs
	if anchor != "" {
		uri += "#" + anchor
	}
	s.tokenReply(w, r, [][2]string{{"error", code}, {"error_description", desc}, {"error_uri", uri}})
}

// tokenReply writes members as JSON if the client asked for it, else
// form-encoded (GitHub's default).
func (s *Server) tokenReply(w http.ResponseWriter, r *http.Request, members [][2]string) {
	if strings.Contains(r.Header.Get("Accept"), "application/json") {
		m := map[string]string{}
		for _, kv := range members {
			m[kv[0]] = kv[1]
		}
		s.writeJSON(w, r, http.StatusOK, m)
		return
	}
	v := url.Values{}
	for _, kv := range members {
		v.Set(kv[0], kv[1])
	}
	w.Header().Set("Content-Type", "application/x-www-form-urlencoded; charset=utf-8")
	_, _ = w.Write([]byte(v.Encode()))
}

// ---- REST API ----

func apiMessage(msg string) map[string]string {
	return map[string]string{"message": msg, "documentation_url": "https://docs.github.com/rest"}
}

// authed resolves the access token of an API request, answering 401 if
// there is none or it is unknown.
func (s *Server) authed(w http.ResponseWriter, r *http.Request) (grant, User, bool) {
	scheme, cred, _ := strings.Cut(r.Header.Get("Authorization"), " ")
	s.mu.Lock()
	g, ok := s.tokens[strings.TrimSpace(cred)]
	u, uok := s.users[g.login]
	s.mu.Unlock()
	if !(strings.EqualFold(scheme, "Bearer") || strings.EqualFold(scheme, "token")) || !ok || !uok {
		s.writeJSON(w, r, http.StatusUnauthorized, apiMessage("Bad credentials"))
		return grant{}, User{}, false
	}
	w.Header().Set("X-OAuth-Scopes", strings.Join(g.scopes, ", "))
	return g, u, true
}

// hasScope reports whether the token carries one of scopes.
func (g grant) hasScope(scopes ...string) bool {
	return slices.ContainsFunc(scopes, func(s string) bool { return slices.Contains(g.scopes, s) })
}

func nullable(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

func (s *Server) apiUser(w http.ResponseWriter, r *http.Request) {
	_, u, ok := s.authed(w, r)
	if !ok {
		return
	}
	s.writeJSON(w, r, http.StatusOK, map[string]any{
		"login": u.Login, "id": u.ID, "node_id": fmt.Sprintf("U_%d", u.ID), "type": "User", "site_admin": false,
		"avatar_url": fmt.Sprintf("%s/avatars/u/%d", s.URL, u.ID), "html_url": s.URL + "/" + u.Login,
		"name": nullable(u.Name), "email": nullable(u.PublicEmail),
	})
}

func (s *Server) apiEmails(w http.ResponseWriter, r *http.Request) {
	g, u, ok := s.authed(w, r)
	if !ok {
		return
	}
	if !g.hasScope("user:email", "user") {
		s.writeJSON(w, r, http.StatusNotFound, apiMessage("Not Found"))
		return
	}
	type email struct {
		Email      string  `json:"email"`
		Primary    bool    `json:"primary"`
		Verified   bool    `json:"verified"`
		Visibility *string `json:"visibility"`
	}
	out := []email{}
	for _, e := range u.Emails {
		out = append(out, email{e.Email, e.Primary, e.Verified, nullable(e.Visibility)})
	}
	s.writeJSON(w, r, http.StatusOK, paginate(w, r, s.URL, out))
}

func (s *Server) apiOrgs(w http.ResponseWriter, r *http.Request) {
	g, u, ok := s.authed(w, r)
	if !ok {
		return
	}
	// Private memberships need a scope that lets the app act on the org.
	all := g.hasScope("read:org", "write:org", "admin:org", "user")
	type org struct {
		Login string `json:"login"`
		ID    int64  `json:"id"`
		URL   string `json:"url"`
	}
	out := []org{}
	for _, o := range u.Orgs {
		if all || o.Public {
			out = append(out, org{o.Login, o.ID, s.URL + apiPrefix + "/orgs/" + o.Login})
		}
	}
	s.writeJSON(w, r, http.StatusOK, paginate(w, r, s.URL, out))
}

// paginate returns the page of items that per_page and page select (GitHub's
// defaults: 30 per page, at most 100; a page past the end is empty) and sets
// GitHub's Link header when there is more than one page.
func paginate[T any](w http.ResponseWriter, r *http.Request, base string, items []T) []T {
	per, err := strconv.Atoi(r.Form.Get("per_page"))
	if err != nil || per < 1 {
		per = 30
	}
	per = min(per, 100)
	pg, err := strconv.Atoi(r.Form.Get("page"))
	if err != nil || pg < 1 {
		pg = 1
	}
	last := max(1, (len(items)+per-1)/per)
	if last > 1 {
		link := func(n int, rel string) string {
			q := cloneValues(r.URL.Query())
			q.Set("page", strconv.Itoa(n))
			q.Set("per_page", strconv.Itoa(per))
			return fmt.Sprintf("<%s%s?%s>; rel=%q", base, r.URL.Path, q.Encode(), rel)
		}
		var links []string
		if pg > 1 {
			links = append(links, link(min(pg-1, last), "prev"))
		}
		if pg < last {
			links = append(links, link(pg+1, "next"), link(last, "last"))
		}
		if pg > 1 {
			links = append(links, link(1, "first"))
		}
		w.Header().Set("Link", strings.Join(links, ", "))
	}
	start := min((pg-1)*per, len(items))
	return items[start:min(start+per, len(items))]
}

// writeJSON writes v as JSON with status, after the Oversize padding if the
// path has it switched on.
func (s *Server) writeJSON(w http.ResponseWriter, r *http.Request, status int, v any) {
	body, err := json.Marshal(v)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	s.mu.Lock()
	big := s.oversize[r.URL.Path]
	s.mu.Unlock()
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	if big {
		// Streamed in chunks without a Content-Length: the client cannot
		// refuse it up front and must stop reading by itself.
		chunk := []byte(strings.Repeat(" ", 32<<10))
		for n := 0; n < OversizeBytes; n += len(chunk) {
			if _, err := w.Write(chunk); err != nil {
				return
			}
		}
	}
	_, _ = w.Write(body)
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // crypto/rand.Read never fails
	return hex.EncodeToString(b)
}
