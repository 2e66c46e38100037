package upstream

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"regexp"
	"slices"
	"strings"
)

// DefaultGitHubURL is github.com; its REST API lives at https://api.github.com.
const DefaultGitHubURL = "https://github.com"

// Config is one upstream: an entry of the upstreams file
// (GATEHOUSE_UPSTREAMS_FILE), or the GitHub entry the GATEHOUSE_GITHUB_*
// settings make.
//
//	{"upstreams": [
//	  {"id": "corp", "type": "oidc", "name": "Corp SSO", "issuer": "https://sso.corp.example",
//	   "client_id": "gatehouse", "client_secret_file": "/run/secrets/corp",
//	   "scopes": ["openid", "email", "profile"]},
//	  {"id": "github", "type": "github", "client_id": "Iv1.…", "client_secret_env": "GH_SECRET",
//	   "allowed_orgs": ["acme"]}]}
type Config struct {
	// ID names the upstream in URLs (/upstream/<id>/callback), links and
	// the idp claim: 1–32 of a–z, 0–9, "-" and "_", starting with a letter
	// or digit. It must not change once users have linked accounts.
	ID   string `json:"id"`
	Type string `json:"type"` // TypeGitHub or TypeOIDC
	// Name is shown on the button ("Continue with <Name>"). Default
	// "GitHub" for GitHub, the ID otherwise.
	Name string `json:"name,omitempty"`

	// Issuer is an OIDC upstream's issuer URL (discovery is read from
	// <issuer>/.well-known/openid-configuration).
	Issuer string `json:"issuer,omitempty"`
	// URL is a GitHub upstream's web address: DefaultGitHubURL, or a GitHub
	// Enterprise Server whose API is <URL>/api/v3.
	URL string `json:"url,omitempty"`

	ClientID string `json:"client_id"`
	// The client secret, from exactly one of: the value itself, a file
	// (trailing newline trimmed) or an environment variable.
	ClientSecret     string `json:"client_secret,omitempty"`
	ClientSecretFile string `json:"client_secret_file,omitempty"`
	ClientSecretEnv  string `json:"client_secret_env,omitempty"`

	// Scopes asked of the upstream. OIDC default: openid email profile
	// (openid is required). GitHub default: read:user user:email, plus
	// read:org when AllowedOrgs is set.
	Scopes []string `json:"scopes,omitempty"`
	// AllowedOrgs (GitHub only): when set, only members of one of these
	// organisations may sign in (checked at every sign-in).
	AllowedOrgs []string `json:"allowed_orgs,omitempty"`
	// Signup: whether an unknown identity with a verified email and no
	// account may create one. nil ⇒ the global GATEHOUSE_UPSTREAM_SIGNUP.
	Signup *bool `json:"signup,omitempty"`
}

// APIURL is a GitHub upstream's REST API base.
func (c Config) APIURL() string {
	base := strings.TrimRight(c.URL, "/")
	if base == DefaultGitHubURL {
		return "https://api.github.com"
	}
	return base + "/api/v3"
}

// CallbackURL is the redirect URI to register at the upstream for this
// connector, under issuer (Gatehouse's own issuer URL).
func (c Config) CallbackURL(issuer string) string {
	return strings.TrimRight(issuer, "/") + "/upstream/" + c.ID + "/callback"
}

// SignupAllowed is Signup, or def when the entry does not say.
func (c Config) SignupAllowed(def bool) bool {
	if c.Signup != nil {
		return *c.Signup
	}
	return def
}

// Sources resolves secrets the file refers to; the zero value reads
// nothing (an entry referring to a file or variable is then an error).
type Sources struct {
	Getenv   func(string) string
	ReadFile func(string) ([]byte, error)
}

// fileEntry is Config as written in the file.
type file struct {
	Upstreams []Config `json:"upstreams"`
}

// maxFileBytes bounds the upstreams file.
const maxFileBytes = 1 << 20

// ParseFile decodes an upstreams file, resolves its secrets and validates
// every entry. Errors name the entry and the field.
func ParseFile(b []byte, src Sources) ([]Config, error) {
	if len(b) > maxFileBytes {
		return nil, fmt.Errorf("file larger than %d bytes", maxFileBytes)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	var f file
	if err := dec.Decode(&f); err != nil {
		return nil, fmt.Errorf("invalid JSON: %w", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("unexpected data after the JSON object")
	}
	for i := range f.Upstreams {
		c := &f.Upstreams[i]
		if err := c.resolveSecret(src); err != nil {
			return nil, entryError(i, c.ID, err)
		}
		c.applyDefaults()
	}
	if err := ValidateAll(f.Upstreams); err != nil {
		return nil, err
	}
	return f.Upstreams, nil
}

func entryError(i int, id string, err error) error {
	if id == "" {
		return fmt.Errorf("upstream %d: %w", i+1, err)
	}
	return fmt.Errorf("upstream %q: %w", id, err)
}

type fieldError struct {
	field string
	msg   string
}

func (e *fieldError) Error() string { return fmt.Sprintf("field %q: %s", e.field, e.msg) }

func bad(field, format string, args ...any) error {
	return &fieldError{field: field, msg: fmt.Sprintf(format, args...)}
}

func (c *Config) resolveSecret(src Sources) error {
	n := 0
	for _, s := range []string{c.ClientSecret, c.ClientSecretFile, c.ClientSecretEnv} {
		if s != "" {
			n++
		}
	}
	if n > 1 {
		return bad("client_secret", "give exactly one of client_secret, client_secret_file, client_secret_env")
	}
	switch {
	case c.ClientSecretFile != "":
		if src.ReadFile == nil {
			return bad("client_secret_file", "cannot read files here")
		}
		b, err := src.ReadFile(c.ClientSecretFile)
		if err != nil {
			return bad("client_secret_file", "%v", err)
		}
		c.ClientSecret = strings.TrimRight(string(b), "\r\n")
		if c.ClientSecret == "" {
			return bad("client_secret_file", "%s is empty", c.ClientSecretFile)
		}
	case c.ClientSecretEnv != "":
		if src.Getenv != nil {
			c.ClientSecret = src.Getenv(c.ClientSecretEnv)
		}
		if c.ClientSecret == "" {
			return bad("client_secret_env", "environment variable %s is empty or unset", c.ClientSecretEnv)
		}
	}
	return nil
}

func (c *Config) applyDefaults() {
	switch c.Type {
	case TypeGitHub:
		if c.Name == "" {
			c.Name = "GitHub"
		}
		if c.URL == "" {
			c.URL = DefaultGitHubURL
		}
		c.URL = strings.TrimRight(c.URL, "/")
		if len(c.Scopes) == 0 {
			c.Scopes = []string{"read:user", "user:email"}
			if len(c.AllowedOrgs) > 0 {
				c.Scopes = append(c.Scopes, "read:org")
			}
		}
	case TypeOIDC:
		if c.Name == "" {
			c.Name = c.ID
		}
		if len(c.Scopes) == 0 {
			c.Scopes = []string{"openid", "email", "profile"}
		}
	}
}

// GitHubFromSettings is the upstream the GATEHOUSE_GITHUB_* settings
// describe (id "github"), with defaults applied; orgs is a comma-separated
// list.
func GitHubFromSettings(clientID, clientSecret, baseURL, orgs string) Config {
	c := Config{ID: "github", Type: TypeGitHub, ClientID: clientID, ClientSecret: clientSecret, URL: baseURL}
	for o := range strings.SplitSeq(orgs, ",") {
		if o = strings.TrimSpace(o); o != "" {
			c.AllowedOrgs = append(c.AllowedOrgs, o)
		}
	}
	c.applyDefaults()
	return c
}

var (
	idPattern    = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,31}$`)
	scopePattern = regexp.MustCompile(`^[\x21\x23-\x5b\x5d-\x7e]{1,128}$`) // RFC 6749 scope-token
	orgPattern   = regexp.MustCompile(`^[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})$`)
)

// ValidateAll checks each entry (Validate) and that IDs are unique.
func ValidateAll(cfgs []Config) error {
	seen := map[string]bool{}
	for i, c := range cfgs {
		if err := c.Validate(); err != nil {
			return entryError(i, c.ID, err)
		}
		if seen[c.ID] {
			return entryError(i, c.ID, bad("id", "used by another upstream"))
		}
		seen[c.ID] = true
	}
	return nil
}

// Validate checks one entry (defaults applied).
func (c Config) Validate() error {
	if !idPattern.MatchString(c.ID) {
		return bad("id", "want 1–32 characters of a–z, 0–9, - and _, starting with a letter or digit")
	}
	// The type first: the name (and other) defaults depend on it, so a
	// missing or misspelt type would otherwise be reported as a bad name.
	switch c.Type {
	case TypeOIDC, TypeGitHub:
	case "":
		return bad("type", `required: "github" or "oidc"`)
	default:
		return bad("type", `%q: want "github" or "oidc"`, c.Type)
	}
	if c.Name == "" || len(c.Name) > 64 || strings.ContainsFunc(c.Name, isControl) {
		return bad("name", "want 1–64 printable characters")
	}
	if c.ClientID == "" || len(c.ClientID) > 512 || strings.ContainsFunc(c.ClientID, isControl) {
		return bad("client_id", "required")
	}
	if c.ClientSecret == "" {
		return bad("client_secret", "required (or client_secret_file / client_secret_env)")
	}
	for _, s := range c.Scopes {
		if !scopePattern.MatchString(s) {
			return bad("scopes", "%q is not a valid scope", s)
		}
	}
	switch c.Type {
	case TypeOIDC:
		if err := checkBaseURL(c.Issuer); err != nil {
			return bad("issuer", "%v", err)
		}
		if !slices.Contains(c.Scopes, "openid") {
			return bad("scopes", `must include "openid"`)
		}
		if c.URL != "" {
			return bad("url", "only for GitHub upstreams (an OIDC upstream has an issuer)")
		}
		if len(c.AllowedOrgs) > 0 {
			return bad("allowed_orgs", "only for GitHub upstreams")
		}
	case TypeGitHub:
		if err := checkBaseURL(c.URL); err != nil {
			return bad("url", "%v", err)
		}
		if c.Issuer != "" {
			return bad("issuer", "only for OIDC upstreams (GitHub has a url)")
		}
		for _, o := range c.AllowedOrgs {
			if !orgPattern.MatchString(o) {
				return bad("allowed_orgs", "%q is not a GitHub organisation name", o)
			}
		}
		if len(c.AllowedOrgs) > 0 && !slices.Contains(c.Scopes, "read:org") {
			return bad("scopes", `must include "read:org" when allowed_orgs is set (GitHub hides private memberships without it)`)
		}
	}
	return nil
}

func isControl(r rune) bool { return r < 0x20 || r == 0x7f }

// checkBaseURL accepts an absolute https URL without query, fragment or
// user info; plain http only for a loopback host (local testing).
func checkBaseURL(s string) error {
	if s == "" {
		return errors.New("required")
	}
	u, err := url.Parse(s)
	if err != nil {
		return fmt.Errorf("%q is not a URL", s)
	}
	if u.Host == "" || u.User != nil || u.RawQuery != "" || u.Fragment != "" || u.Opaque != "" {
		return fmt.Errorf("%q: want an absolute URL like https://login.example.com, without query or fragment", s)
	}
	switch u.Scheme {
	case "https":
	case "http":
		if !isLoopback(u.Hostname()) {
			return fmt.Errorf("%q: must be https (plain http only for 127.0.0.1, ::1 or localhost)", s)
		}
	default:
		return fmt.Errorf("%q: must be https", s)
	}
	return nil
}

func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
