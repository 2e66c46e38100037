// Package upstream signs people in through other identity providers: GitHub
// (an OAuth 2.0 app plus its REST API) and any OpenID Connect issuer. Each is
// a Connector; a Registry holds the configured ones.
//
// A connector does one leg: it builds the URL that sends the browser to the
// upstream (with state, PKCE S256 and, for OIDC, a nonce) and, when the
// browser comes back, turns the callback into an Identity, checking everything
// the upstream's answer must satisfy. What to do with that identity — which
// Gatehouse account it is, whether one may be created or linked — is the
// sign-in flow's business (package login), following the linking rules in
// docs/design.md: identities are keyed by (upstream, subject), never by email.
//
// Outbound requests go through one bounded HTTP client (NewHTTPClient):
// timeouts, a response size cap and no redirects.
package upstream

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"time"
)

// Connector types, the "type" of an upstreams-file entry.
const (
	TypeGitHub = "github"
	TypeOIDC   = "oidc"
)

// Identity is what an upstream said about the person who signed in there.
type Identity struct {
	// Subject is the upstream's stable identifier of the account: GitHub's
	// numeric user ID, an OIDC issuer's "sub". Links are keyed by it.
	Subject string
	// Email is the address the upstream reports ("" when it reports none);
	// EmailVerified is true only when the upstream says it verified it.
	Email         string
	EmailVerified bool
	Name          string
	// AMR are the authentication methods the upstream reported (OIDC "amr"),
	// sanitised; empty for GitHub.
	AMR []string
}

// Leg is one round trip to the upstream: the values the callback must match.
// The caller generates them (NewLeg) and keeps them bound to the browser.
type Leg struct {
	State    string // the OAuth state parameter
	Nonce    string // the OIDC nonce (unused by GitHub)
	Verifier string // the PKCE code verifier; the challenge is its S256
	// MaxAge, when set, asks for an authentication at the upstream no
	// older than this many seconds (0: a fresh one, as for prompt=login),
	// because the app asked Gatehouse for that. An OIDC upstream gets
	// prompt=login / max_age and its ID token's auth_time is checked
	// against Started; GitHub has no such parameter (README).
	MaxAge  *int64
	Started time.Time
}

// Connector is one configured upstream.
type Connector interface {
	// Config is the connector's validated configuration.
	Config() Config
	// AuthCodeURL is where to send the browser to sign in upstream.
	// redirectURI is this Gatehouse's callback for the connector. It may
	// contact the upstream (OIDC discovery), so it can fail with an
	// *Error of kind Unavailable.
	AuthCodeURL(ctx context.Context, leg Leg, redirectURI string) (string, error)
	// Exchange completes the leg from the callback's query parameters. The
	// caller has already matched the state against leg.State. Every
	// failure is an *Error.
	Exchange(ctx context.Context, leg Leg, redirectURI string, callback url.Values) (*Identity, error)
}

// Kind classifies a failed leg, which decides what the user is told.
type Kind int

const (
	// Denied: the user (or the upstream's policy) refused at the upstream.
	Denied Kind = iota + 1
	// Unavailable: the upstream could not be reached or answered with a
	// server error; trying again later may work.
	Unavailable
	// Invalid: the upstream's answer failed a check (bad ID token, wrong
	// issuer, unusable code, malformed response), or the upstream refused
	// Gatehouse's own credentials (a configuration mistake).
	Invalid
	// NotAllowed: the identity is fine but may not sign in here (not a
	// member of an allowed GitHub organisation).
	NotAllowed
)

func (k Kind) String() string {
	switch k {
	case Denied:
		return "denied"
	case Unavailable:
		return "unavailable"
	case Invalid:
		return "invalid"
	case NotAllowed:
		return "not_allowed"
	}
	return "unknown"
}

// Error is a failed leg. Its message is for the log (never for the user: it
// may quote the upstream); Kind decides the page.
type Error struct {
	Kind     Kind
	Upstream string // the connector's ID
	Op       string // what was being done, e.g. "token exchange"
	Err      error
}

func (e *Error) Error() string {
	return fmt.Sprintf("upstream %s: %s: %s: %v", e.Upstream, e.Op, e.Kind, e.Err)
}

func (e *Error) Unwrap() error { return e.Err }

// KindOf returns err's Kind, or Invalid for an error that is not an *Error.
func KindOf(err error) Kind {
	var e *Error
	if errors.As(err, &e) {
		return e.Kind
	}
	return Invalid
}

// Registry is the set of configured connectors, in configuration order.
type Registry struct {
	list []Connector
	byID map[string]Connector
}

// NewRegistry builds the connectors for cfgs (validated with Validate first).
func NewRegistry(cfgs []Config, opts Options) (*Registry, error) {
	if err := ValidateAll(cfgs); err != nil {
		return nil, err
	}
	opts = opts.withDefaults()
	r := &Registry{byID: map[string]Connector{}}
	for _, c := range cfgs {
		var conn Connector
		switch c.Type {
		case TypeGitHub:
			conn = newGitHub(c, opts)
		case TypeOIDC:
			conn = newOIDC(c, opts)
		}
		r.list = append(r.list, conn)
		r.byID[c.ID] = conn
	}
	return r, nil
}

// Get returns the connector with id, or nil. A nil Registry has none.
func (r *Registry) Get(id string) Connector {
	if r == nil {
		return nil
	}
	return r.byID[id]
}

// List returns the connectors in configuration order.
func (r *Registry) List() []Connector {
	if r == nil {
		return nil
	}
	return slices.Clone(r.list)
}

// Name is the display name of upstream id, or id itself when no connector
// has that ID (an upstream removed from the configuration whose links
// remain).
func (r *Registry) Name(id string) string {
	if c := r.Get(id); c != nil {
		return c.Config().Name
	}
	return id
}
