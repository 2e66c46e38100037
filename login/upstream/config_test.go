package upstream

import (
	"errors"
	"io/fs"
	"slices"
	"strings"
	"testing"
)

// fakeSources serves secrets from maps instead of the environment and disk.
func fakeSources(env, files map[string]string) Sources {
	return Sources{
		Getenv: func(k string) string { return env[k] },
		ReadFile: func(p string) ([]byte, error) {
			b, ok := files[p]
			if !ok {
				return nil, &fs.PathError{Op: "open", Path: p, Err: fs.ErrNotExist}
			}
			return []byte(b), nil
		},
	}
}

func TestParseFileGood(t *testing.T) {
	src := fakeSources(map[string]string{"GH_SECRET": "gh-secret"}, map[string]string{"/run/corp": "corp-secret\n"})
	cfgs, err := ParseFile([]byte(`{"upstreams": [
	  {"id": "corp", "type": "oidc", "issuer": "https://sso.corp.example/realms/x",
	   "client_id": "gatehouse", "client_secret_file": "/run/corp"},
	  {"id": "named", "type": "oidc", "name": "Named SSO", "issuer": "http://127.0.0.1:8080",
	   "client_id": "c", "client_secret": "s", "scopes": ["openid"], "signup": false},
	  {"id": "github", "type": "github", "client_id": "Iv1.x", "client_secret_env": "GH_SECRET",
	   "allowed_orgs": ["acme"]},
	  {"id": "ghes", "type": "github", "url": "https://ghe.corp.example/", "client_id": "Iv1.y", "client_secret": "z"}
	]}
	`), src)
	if err != nil {
		t.Fatalf("ParseFile: %v", err)
	}
	if len(cfgs) != 4 {
		t.Fatalf("got %d entries, want 4", len(cfgs))
	}
	corp, named, gh, ghes := cfgs[0], cfgs[1], cfgs[2], cfgs[3]

	if corp.Name != "corp" {
		t.Errorf("oidc name default = %q, want the id", corp.Name)
	}
	if want := []string{"openid", "email", "profile"}; !slices.Equal(corp.Scopes, want) {
		t.Errorf("oidc scopes default = %q, want %q", corp.Scopes, want)
	}
	if corp.ClientSecret != "corp-secret" {
		t.Errorf("secret from file = %q, want the trailing newline trimmed", corp.ClientSecret)
	}
	if corp.SignupAllowed(true) != true || corp.SignupAllowed(false) != false {
		t.Error("no signup in the entry: SignupAllowed should follow the default")
	}

	if named.Name != "Named SSO" || !slices.Equal(named.Scopes, []string{"openid"}) {
		t.Errorf("explicit name/scopes changed: %q %q", named.Name, named.Scopes)
	}
	if named.SignupAllowed(true) {
		t.Error(`"signup": false ignored`)
	}

	if gh.Name != "GitHub" || gh.URL != DefaultGitHubURL {
		t.Errorf("github defaults: name %q url %q", gh.Name, gh.URL)
	}
	if want := []string{"read:user", "user:email", "read:org"}; !slices.Equal(gh.Scopes, want) {
		t.Errorf("github scopes with allowed_orgs = %q, want %q", gh.Scopes, want)
	}
	if gh.ClientSecret != "gh-secret" {
		t.Errorf("secret from env = %q", gh.ClientSecret)
	}
	if gh.APIURL() != "https://api.github.com" {
		t.Errorf("github.com API URL = %q", gh.APIURL())
	}

	if want := []string{"read:user", "user:email"}; !slices.Equal(ghes.Scopes, want) {
		t.Errorf("github scopes without allowed_orgs = %q, want %q", ghes.Scopes, want)
	}
	if ghes.URL != "https://ghe.corp.example" {
		t.Errorf("GHES url = %q, want the trailing slash trimmed", ghes.URL)
	}
	if ghes.APIURL() != "https://ghe.corp.example/api/v3" {
		t.Errorf("GHES API URL = %q", ghes.APIURL())
	}
}

func TestParseFileEmpty(t *testing.T) {
	cfgs, err := ParseFile([]byte(`{"upstreams": []}`), Sources{})
	if err != nil || len(cfgs) != 0 {
		t.Fatalf("empty list: %v, %v", cfgs, err)
	}
}

func TestParseFileErrors(t *testing.T) {
	const good = `"client_id": "c", "client_secret": "s"`
	env := map[string]string{"SET": "from-env"}
	files := map[string]string{"/secret": "file-secret\r\n", "/empty": "\n"}
	cases := []struct {
		name string
		json string
		want []string // substrings of the error
	}{
		{"bad id", `{"upstreams": [{"id": "Corp!", "type": "oidc", "issuer": "https://a.example", ` + good + `}]}`,
			[]string{`upstream "Corp!"`, `field "id"`}},
		{"id starting with dash", `{"upstreams": [{"id": "-x", "type": "oidc", "issuer": "https://a.example", ` + good + `}]}`,
			[]string{`field "id"`}},
		{"id too long", `{"upstreams": [{"id": "` + strings.Repeat("a", 33) + `", "type": "oidc", "issuer": "https://a.example", ` + good + `}]}`,
			[]string{`field "id"`}},
		{"missing id", `{"upstreams": [{"type": "oidc", "issuer": "https://a.example", ` + good + `}]}`,
			[]string{`upstream 1:`, `field "id"`}},
		{"missing id second entry", `{"upstreams": [{"id": "a", "type": "oidc", "issuer": "https://a.example", ` + good + `},
			{"type": "oidc", "issuer": "https://a.example", ` + good + `}]}`,
			[]string{`upstream 2:`, `field "id"`}},
		{"duplicate id", `{"upstreams": [{"id": "corp", "type": "oidc", "issuer": "https://a.example", ` + good + `},
			{"id": "corp", "type": "github", ` + good + `}]}`,
			[]string{`upstream "corp"`, `field "id"`, "another upstream"}},
		{"missing type", `{"upstreams": [{"id": "corp", "issuer": "https://a.example", ` + good + `}]}`,
			[]string{`upstream "corp"`, `field "type"`}},
		{"unknown type", `{"upstreams": [{"id": "corp", "type": "saml", "issuer": "https://a.example", ` + good + `}]}`,
			[]string{`upstream "corp"`, `field "type"`, "saml"}},
		{"missing client_id", `{"upstreams": [{"id": "corp", "type": "oidc", "issuer": "https://a.example", "client_secret": "s"}]}`,
			[]string{`upstream "corp"`, `field "client_id"`}},
		{"missing secret", `{"upstreams": [{"id": "corp", "type": "oidc", "issuer": "https://a.example", "client_id": "c"}]}`,
			[]string{`upstream "corp"`, `field "client_secret"`}},
		{"two secret sources", `{"upstreams": [{"id": "corp", "type": "oidc", "issuer": "https://a.example", "client_id": "c",
			"client_secret": "s", "client_secret_env": "SET"}]}`,
			[]string{`upstream "corp"`, `field "client_secret"`, "exactly one"}},
		{"secret file missing", `{"upstreams": [{"id": "corp", "type": "oidc", "issuer": "https://a.example", "client_id": "c",
			"client_secret_file": "/nope"}]}`,
			[]string{`upstream "corp"`, `field "client_secret_file"`, "/nope"}},
		{"secret file empty", `{"upstreams": [{"id": "corp", "type": "oidc", "issuer": "https://a.example", "client_id": "c",
			"client_secret_file": "/empty"}]}`,
			[]string{`upstream "corp"`, `field "client_secret_file"`, "empty"}},
		{"secret env unset", `{"upstreams": [{"id": "corp", "type": "oidc", "issuer": "https://a.example", "client_id": "c",
			"client_secret_env": "UNSET"}]}`,
			[]string{`upstream "corp"`, `field "client_secret_env"`, "UNSET"}},
		{"missing issuer", `{"upstreams": [{"id": "corp", "type": "oidc", ` + good + `}]}`,
			[]string{`upstream "corp"`, `field "issuer"`}},
		{"http issuer", `{"upstreams": [{"id": "corp", "type": "oidc", "issuer": "http://sso.corp.example", ` + good + `}]}`,
			[]string{`upstream "corp"`, `field "issuer"`, "https"}},
		{"http issuer lookalike", `{"upstreams": [{"id": "corp", "type": "oidc", "issuer": "http://localhost.evil.example", ` + good + `}]}`,
			[]string{`field "issuer"`}},
		{"issuer with query", `{"upstreams": [{"id": "corp", "type": "oidc", "issuer": "https://a.example/?tenant=x", ` + good + `}]}`,
			[]string{`upstream "corp"`, `field "issuer"`}},
		{"issuer with fragment", `{"upstreams": [{"id": "corp", "type": "oidc", "issuer": "https://a.example/#x", ` + good + `}]}`,
			[]string{`field "issuer"`}},
		{"issuer with user info", `{"upstreams": [{"id": "corp", "type": "oidc", "issuer": "https://u:p@a.example", ` + good + `}]}`,
			[]string{`field "issuer"`}},
		{"relative issuer", `{"upstreams": [{"id": "corp", "type": "oidc", "issuer": "a.example", ` + good + `}]}`,
			[]string{`field "issuer"`}},
		{"ftp issuer", `{"upstreams": [{"id": "corp", "type": "oidc", "issuer": "ftp://a.example", ` + good + `}]}`,
			[]string{`field "issuer"`}},
		{"oidc without openid", `{"upstreams": [{"id": "corp", "type": "oidc", "issuer": "https://a.example", "scopes": ["email"], ` + good + `}]}`,
			[]string{`upstream "corp"`, `field "scopes"`, "openid"}},
		{"bad scope", `{"upstreams": [{"id": "corp", "type": "oidc", "issuer": "https://a.example", "scopes": ["openid", "a b"], ` + good + `}]}`,
			[]string{`upstream "corp"`, `field "scopes"`}},
		{"allowed_orgs on oidc", `{"upstreams": [{"id": "corp", "type": "oidc", "issuer": "https://a.example", "allowed_orgs": ["acme"], ` + good + `}]}`,
			[]string{`upstream "corp"`, `field "allowed_orgs"`}},
		{"url on oidc", `{"upstreams": [{"id": "corp", "type": "oidc", "issuer": "https://a.example", "url": "https://github.com", ` + good + `}]}`,
			[]string{`upstream "corp"`, `field "url"`}},
		{"issuer on github", `{"upstreams": [{"id": "gh", "type": "github", "issuer": "https://a.example", ` + good + `}]}`,
			[]string{`upstream "gh"`, `field "issuer"`}},
		{"http github url", `{"upstreams": [{"id": "gh", "type": "github", "url": "http://ghe.example", ` + good + `}]}`,
			[]string{`upstream "gh"`, `field "url"`}},
		{"allowed_orgs without read:org", `{"upstreams": [{"id": "gh", "type": "github", "allowed_orgs": ["acme"],
			"scopes": ["read:user", "user:email"], ` + good + `}]}`,
			[]string{`upstream "gh"`, `field "scopes"`, "read:org"}},
		{"bad org name", `{"upstreams": [{"id": "gh", "type": "github", "allowed_orgs": ["acme/evil"], ` + good + `}]}`,
			[]string{`upstream "gh"`, `field "allowed_orgs"`}},
		{"name with control character", `{"upstreams": [{"id": "gh", "type": "github", "name": "Git\u0007Hub", ` + good + `}]}`,
			[]string{`upstream "gh"`, `field "name"`}},
		{"unknown field", `{"upstreams": [{"id": "corp", "type": "oidc", "issuer": "https://a.example", "client_sercet": "s", "client_id": "c"}]}`,
			[]string{"client_sercet"}},
		{"unknown top-level field", `{"upstream": []}`, []string{"upstream"}},
		{"trailing data", `{"upstreams": []} {"upstreams": []}`, []string{"after the JSON"}},
		{"trailing garbage", `{"upstreams": []} x`, []string{"after the JSON"}},
		{"not JSON", `upstreams:`, []string{"invalid JSON"}},
		{"empty", ``, []string{"invalid JSON"}},
		{"too large", `{"upstreams": []}` + strings.Repeat(" ", maxFileBytes), []string{"larger than"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfgs, err := ParseFile([]byte(tc.json), fakeSources(env, files))
			if err == nil {
				t.Fatalf("accepted: %+v", cfgs)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
			if strings.Contains(err.Error(), "file-secret") || strings.Contains(err.Error(), "from-env") {
				t.Errorf("error %q quotes a secret", err)
			}
		})
	}
}

func TestParseFileSecretSources(t *testing.T) {
	entry := func(secret string) []byte {
		return []byte(`{"upstreams": [{"id": "corp", "type": "oidc", "issuer": "https://a.example", "client_id": "c", ` + secret + `}]}`)
	}
	src := fakeSources(map[string]string{"SET": "from-env"}, map[string]string{"/crlf": "file-secret\r\n", "/inner": "a\nb\n"})
	for _, tc := range []struct{ secret, want string }{
		{`"client_secret": "inline"`, "inline"},
		{`"client_secret_env": "SET"`, "from-env"},
		{`"client_secret_file": "/crlf"`, "file-secret"},
		{`"client_secret_file": "/inner"`, "a\nb"},
	} {
		cfgs, err := ParseFile(entry(tc.secret), src)
		if err != nil {
			t.Errorf("%s: %v", tc.secret, err)
			continue
		}
		if cfgs[0].ClientSecret != tc.want {
			t.Errorf("%s: secret %q, want %q", tc.secret, cfgs[0].ClientSecret, tc.want)
		}
	}

	// The zero Sources reads nothing: a reference is an error, not "".
	for _, secret := range []string{`"client_secret_env": "SET"`, `"client_secret_file": "/crlf"`} {
		if _, err := ParseFile(entry(secret), Sources{}); err == nil {
			t.Errorf("%s with zero Sources accepted", secret)
		}
	}
}

func TestLoopbackHTTPIssuer(t *testing.T) {
	for _, iss := range []string{"http://127.0.0.1:5556", "http://localhost:5556/dex", "http://LOCALHOST", "http://[::1]:8080", "http://127.0.0.2"} {
		c := Config{ID: "dev", Type: TypeOIDC, Issuer: iss, ClientID: "c", ClientSecret: "s"}
		c.applyDefaults()
		if err := c.Validate(); err != nil {
			t.Errorf("issuer %s refused: %v", iss, err)
		}
	}
	for _, iss := range []string{"http://10.0.0.1", "http://sso.example", "http://127.0.0.1.nip.io"} {
		c := Config{ID: "dev", Type: TypeOIDC, Issuer: iss, ClientID: "c", ClientSecret: "s"}
		c.applyDefaults()
		if err := c.Validate(); err == nil || !strings.Contains(err.Error(), `field "issuer"`) {
			t.Errorf("issuer %s: err %v, want a refusal naming the issuer", iss, err)
		}
	}
}

func TestValidateFieldError(t *testing.T) {
	// Validate's errors are typed so callers (and ValidateAll) can add the entry.
	err := Config{ID: "x", Type: TypeOIDC}.Validate()
	var fe *fieldError
	if !errors.As(err, &fe) {
		t.Fatalf("Validate error %T %v is not a field error", err, err)
	}
}

func TestGitHubFromSettings(t *testing.T) {
	c := GitHubFromSettings("Iv1.abc", "secret", "", " acme, , other-org ,")
	if c.ID != "github" || c.Type != TypeGitHub || c.Name != "GitHub" || c.URL != DefaultGitHubURL {
		t.Errorf("defaults: %+v", c)
	}
	if !slices.Equal(c.AllowedOrgs, []string{"acme", "other-org"}) {
		t.Errorf("orgs = %q", c.AllowedOrgs)
	}
	if !slices.Contains(c.Scopes, "read:org") {
		t.Errorf("scopes %q lack read:org with allowed orgs", c.Scopes)
	}
	if err := c.Validate(); err != nil {
		t.Errorf("Validate: %v", err)
	}

	c = GitHubFromSettings("Iv1.abc", "secret", "https://ghe.example/", "")
	if c.AllowedOrgs != nil || slices.Contains(c.Scopes, "read:org") {
		t.Errorf("no orgs: orgs %q scopes %q", c.AllowedOrgs, c.Scopes)
	}
	if c.APIURL() != "https://ghe.example/api/v3" {
		t.Errorf("GHES API = %q", c.APIURL())
	}
	if err := c.Validate(); err != nil {
		t.Errorf("Validate: %v", err)
	}

	if err := GitHubFromSettings("Iv1.abc", "secret", "", "bad org").Validate(); err == nil {
		t.Error("bad org name accepted")
	}
}

func TestAPIURL(t *testing.T) {
	for _, tc := range []struct{ url, want string }{
		{"https://github.com", "https://api.github.com"},
		{"https://github.com/", "https://api.github.com"},
		{"https://ghe.example", "https://ghe.example/api/v3"},
		{"https://ghe.example/", "https://ghe.example/api/v3"},
		{"http://127.0.0.1:4000", "http://127.0.0.1:4000/api/v3"},
	} {
		if got := (Config{URL: tc.url}).APIURL(); got != tc.want {
			t.Errorf("APIURL(%s) = %q, want %q", tc.url, got, tc.want)
		}
	}
}

func TestCallbackURL(t *testing.T) {
	c := Config{ID: "corp"}
	for _, iss := range []string{"https://login.example", "https://login.example/"} {
		if got := c.CallbackURL(iss); got != "https://login.example/upstream/corp/callback" {
			t.Errorf("CallbackURL(%s) = %q", iss, got)
		}
	}
	if got := c.CallbackURL("https://example.com/auth"); got != "https://example.com/auth/upstream/corp/callback" {
		t.Errorf("issuer with path: %q", got)
	}
}

func TestRegistry(t *testing.T) {
	gh := GitHubFromSettings("Iv1.abc", "secret", "", "")
	corp := Config{ID: "corp", Type: TypeOIDC, Issuer: "https://sso.example", ClientID: "c", ClientSecret: "s"}
	corp.applyDefaults()
	r, err := NewRegistry([]Config{corp, gh}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if l := r.List(); len(l) != 2 || l[0].Config().ID != "corp" || l[1].Config().ID != "github" {
		t.Errorf("List out of configuration order")
	}
	if r.Get("github") == nil || r.Get("nope") != nil {
		t.Error("Get")
	}
	if r.Name("github") != "GitHub" || r.Name("gone") != "gone" {
		t.Errorf("Name: %q %q", r.Name("github"), r.Name("gone"))
	}
	var nilReg *Registry
	if nilReg.Get("github") != nil || nilReg.List() != nil || nilReg.Name("x") != "x" {
		t.Error("nil registry")
	}
	if _, err := NewRegistry([]Config{gh, gh}, Options{}); err == nil {
		t.Error("duplicate IDs accepted by NewRegistry")
	}
	bad := gh
	bad.ClientSecret = ""
	if _, err := NewRegistry([]Config{bad}, Options{}); err == nil {
		t.Error("invalid entry accepted by NewRegistry")
	}
}

func TestKind(t *testing.T) {
	if KindOf(errors.New("x")) != Invalid {
		t.Error("plain error should be Invalid")
	}
	e := &Error{Kind: Unavailable, Upstream: "corp", Op: "discovery", Err: errors.New("boom")}
	wrapped := errors.Join(errors.New("ctx"), e)
	if KindOf(wrapped) != Unavailable {
		t.Error("KindOf does not see through wrapping")
	}
	if s := e.Error(); !strings.Contains(s, "corp") || !strings.Contains(s, "discovery") || !strings.Contains(s, "unavailable") || !strings.Contains(s, "boom") {
		t.Errorf("Error() = %q", s)
	}
	for k, want := range map[Kind]string{Denied: "denied", Unavailable: "unavailable", Invalid: "invalid", NotAllowed: "not_allowed", 0: "unknown"} {
		if k.String() != want {
			t.Errorf("%d.String() = %q", k, k.String())
		}
	}
}
