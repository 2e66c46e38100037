package upstream

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"
)

// oidcConn signs in through any OpenID Connect issuer: discovery, the code
// flow with PKCE S256, state and nonce, and an ID token checked by go-oidc
// (signature against the issuer's JWKS, iss, aud, exp) plus the nonce here.
// coreos/go-oidc is the library the Go OIDC ecosystem (Dex, oauth2-proxy,
// Kubernetes) verifies ID tokens with; Gatehouse does not hand-roll JOSE.
type oidcConn struct {
	cfg    Config
	client *http.Client
	log    *slog.Logger
	now    func() time.Time
	retry  time.Duration

	mu       sync.Mutex
	disc     *discovered
	failedAt time.Time // last failed discovery, remembered for retry
	failErr  error
}

// discovered is the upstream's metadata, fetched once and kept.
type discovered struct {
	provider *oidc.Provider
	verifier *oidc.IDTokenVerifier
	oauth    oauth2.Config
	// issParam: the upstream says it sends RFC 9207's iss with every
	// authorization response, so a response without it is refused.
	issParam bool
}

func newOIDC(c Config, o Options) *oidcConn {
	return &oidcConn{cfg: c, client: o.HTTPClient, log: o.Logger.With("upstream", c.ID), now: o.Now, retry: o.DiscoveryRetry}
}

func (o *oidcConn) Config() Config { return o.cfg }

func (o *oidcConn) fail(kind Kind, op, format string, args ...any) *Error {
	return &Error{Kind: kind, Upstream: o.cfg.ID, Op: op, Err: fmt.Errorf(format, args...)}
}

// discover reads the issuer's metadata on first use (Gatehouse starts even
// when an upstream is down). A failure is remembered for a short while so a
// dead upstream is not asked again on every click.
func (o *oidcConn) discover(ctx context.Context) (*discovered, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.disc != nil {
		return o.disc, nil
	}
	if !o.failedAt.IsZero() && o.now().Sub(o.failedAt) < o.retry {
		return nil, o.failErr
	}
	d, err := o.discoverOnce(ctx)
	if err != nil {
		// A request given up by its own caller (the browser went away)
		// says nothing about the upstream: not remembered, or one
		// impatient visitor would lock everyone out for the retry window.
		if ctx.Err() == nil {
			o.failedAt, o.failErr = o.now(), err
		}
		return nil, err
	}
	o.disc, o.failedAt, o.failErr = d, time.Time{}, nil
	return d, nil
}

func (o *oidcConn) discoverOnce(ctx context.Context) (*discovered, error) {
	const op = "discovery"
	p, err := oidc.NewProvider(oidc.ClientContext(ctx, o.client), o.cfg.Issuer)
	if err != nil {
		// go-oidc reports an issuer mismatch or a malformed document as
		// a plain error too; both need the admin, and retrying later is
		// the right behaviour either way.
		return nil, &Error{Kind: Unavailable, Upstream: o.cfg.ID, Op: op, Err: err}
	}
	var meta struct {
		IssParam    bool     `json:"authorization_response_iss_parameter_supported"`
		AuthMethods []string `json:"token_endpoint_auth_methods_supported"`
		PKCE        []string `json:"code_challenge_methods_supported"`
	}
	if err := p.Claims(&meta); err != nil {
		return nil, o.fail(Unavailable, op, "decode metadata: %v", err)
	}
	if len(meta.PKCE) > 0 && !slices.Contains(meta.PKCE, "S256") {
		o.log.WarnContext(ctx, "upstream does not list PKCE S256; sending it anyway", "code_challenge_methods_supported", meta.PKCE)
	}
	ep := p.Endpoint()
	// RFC 8414: no list means client_secret_basic.
	ep.AuthStyle = oauth2.AuthStyleInHeader
	if len(meta.AuthMethods) > 0 && !slices.Contains(meta.AuthMethods, "client_secret_basic") &&
		slices.Contains(meta.AuthMethods, "client_secret_post") {
		ep.AuthStyle = oauth2.AuthStyleInParams
	}
	return &discovered{
		provider: p,
		verifier: p.Verifier(&oidc.Config{ClientID: o.cfg.ClientID, Now: o.now}),
		oauth: oauth2.Config{
			ClientID:     o.cfg.ClientID,
			ClientSecret: o.cfg.ClientSecret,
			Endpoint:     ep,
			Scopes:       o.cfg.Scopes,
		},
		issParam: meta.IssParam,
	}, nil
}

func (o *oidcConn) AuthCodeURL(ctx context.Context, leg Leg, redirectURI string) (string, error) {
	d, err := o.discover(ctx)
	if err != nil {
		return "", err
	}
	c := d.oauth
	c.RedirectURL = redirectURI
	opts := []oauth2.AuthCodeOption{oauth2.S256ChallengeOption(leg.Verifier), oidc.Nonce(leg.Nonce)}
	if leg.MaxAge != nil {
		// The app asked Gatehouse for a fresh (or recent) sign-in: pass
		// that on, or a silent upstream session would satisfy it.
		if *leg.MaxAge <= 0 {
			opts = append(opts, oauth2.SetAuthURLParam("prompt", "login"))
		}
		opts = append(opts, oauth2.SetAuthURLParam("max_age", strconv.FormatInt(max(*leg.MaxAge, 0), 10)))
	}
	return c.AuthCodeURL(leg.State, opts...), nil
}

// Callback errors that mean the user did not (or could not) agree at the
// upstream, as opposed to a protocol failure.
var deniedErrors = []string{"access_denied", "consent_required", "interaction_required", "login_required", "account_selection_required"}

// Callback errors that are the upstream's outage (RFC 6749 4.1.2.1):
// trying again later may work.
var outageErrors = []string{"server_error", "temporarily_unavailable"}

func (o *oidcConn) Exchange(ctx context.Context, leg Leg, redirectURI string, cb url.Values) (*Identity, error) {
	d, err := o.discover(ctx)
	if err != nil {
		return nil, err
	}
	// RFC 9207: an iss in the response must be this upstream's; when the
	// upstream promises to send it, it must be there. This stops a
	// response from another upstream (mix-up) being taken for this one's.
	if iss, ok := cb["iss"]; ok {
		// go-oidc refused a discovery document naming another issuer, so
		// the configured issuer is the upstream's.
		if len(iss) != 1 || iss[0] != o.cfg.Issuer {
			return nil, o.fail(Invalid, "authorization", "iss %q in the response is not this upstream's issuer %q", cb.Get("iss"), o.cfg.Issuer)
		}
	} else if d.issParam {
		return nil, o.fail(Invalid, "authorization", "the upstream promises RFC 9207 iss but the response has none")
	}
	if e := cb.Get("error"); e != "" {
		kind := Invalid
		switch {
		case slices.Contains(deniedErrors, e):
			kind = Denied
		case slices.Contains(outageErrors, e):
			kind = Unavailable
		}
		return nil, o.fail(kind, "authorization", "upstream answered error=%q: %q", e, cb.Get("error_description"))
	}
	code := cb.Get("code")
	if code == "" {
		return nil, o.fail(Invalid, "authorization", "callback without code")
	}

	hctx := context.WithValue(ctx, oauth2.HTTPClient, o.client)
	c := d.oauth
	c.RedirectURL = redirectURI
	tok, err := c.Exchange(hctx, code, oauth2.VerifierOption(leg.Verifier))
	if err != nil {
		return nil, o.exchangeError(ctx, err)
	}
	raw, _ := tok.Extra("id_token").(string)
	if raw == "" {
		return nil, o.fail(Invalid, "token exchange", "no id_token in the token response")
	}
	idt, err := d.verifier.Verify(oidc.ClientContext(ctx, o.client), raw)
	if err != nil {
		return nil, o.verifyError(err)
	}
	if subtle.ConstantTimeCompare([]byte(idt.Nonce), []byte(leg.Nonce)) != 1 {
		return nil, o.fail(Invalid, "ID token", "nonce does not match this sign-in")
	}
	var claims userClaims
	if err := idt.Claims(&claims); err != nil {
		return nil, o.fail(Invalid, "ID token", "decode claims: %v", err)
	}
	if leg.MaxAge != nil {
		// OIDC Core 3.1.2.1: with max_age the ID token must carry
		// auth_time; it must be within the age asked for, counted from
		// when this leg started (a minute of clock skew allowed).
		if claims.AuthTime == nil {
			return nil, o.fail(Invalid, "ID token", "no auth_time although a fresh sign-in was asked for")
		}
		oldest := leg.Started.Add(-time.Duration(max(*leg.MaxAge, 0))*time.Second - time.Minute)
		if time.Unix(*claims.AuthTime, 0).Before(oldest) {
			return nil, o.fail(Invalid, "ID token", "auth_time %d is older than the sign-in asked for", *claims.AuthTime)
		}
	}
	// OIDC Core 2: with several audiences, azp must name this client.
	if len(idt.Audience) > 1 && claims.AZP != o.cfg.ClientID {
		return nil, o.fail(Invalid, "ID token", "several audiences and azp %q is not this client", claims.AZP)
	}
	if idt.Subject == "" || len(idt.Subject) > 255 {
		return nil, o.fail(Invalid, "ID token", "sub missing or longer than 255 characters")
	}
	id := &Identity{Subject: idt.Subject, AMR: sanitizeAMR(claims.AMR)}
	claims.apply(id)

	if id.Email == "" && d.provider.UserInfoEndpoint() != "" {
		ui, err := d.provider.UserInfo(oidc.ClientContext(ctx, o.client), oauth2.StaticTokenSource(tok))
		if err != nil {
			return nil, o.userinfoError(err)
		}
		// OIDC Core 5.3.4: userinfo's sub must be the ID token's, or the
		// answer is about someone else and must not be used.
		if ui.Subject != idt.Subject {
			return nil, o.fail(Invalid, "userinfo", "sub %q differs from the ID token's", ui.Subject)
		}
		var uc userClaims
		if err := ui.Claims(&uc); err != nil {
			return nil, o.fail(Invalid, "userinfo", "decode claims: %v", err)
		}
		uc.apply(id)
	}
	return id, nil
}

func (o *oidcConn) exchangeError(ctx context.Context, err error) error {
	const op = "token exchange"
	var re *oauth2.RetrieveError
	if errors.As(err, &re) && re.Response != nil {
		if re.Response.StatusCode >= 500 || re.Response.StatusCode == http.StatusTooManyRequests {
			return o.fail(Unavailable, op, "HTTP status %d", re.Response.StatusCode)
		}
		if re.ErrorCode == "invalid_client" || re.ErrorCode == "unauthorized_client" {
			o.log.ErrorContext(ctx, "the upstream refused Gatehouse's client credentials; check client_id and the secret",
				"error", re.ErrorCode)
		}
		return o.fail(Invalid, op, "HTTP status %d, error=%q: %q", re.Response.StatusCode, re.ErrorCode, re.ErrorDescription)
	}
	// oauth2 reports a 2xx answer it cannot use (not JSON, no
	// access_token) with plain errors: a malformed answer. Anything else
	// (network, timeout, size cap) is the upstream's outage.
	if msg := err.Error(); strings.HasPrefix(msg, "oauth2: cannot parse") || strings.HasPrefix(msg, "oauth2: server response missing access_token") {
		return &Error{Kind: Invalid, Upstream: o.cfg.ID, Op: op, Err: err}
	}
	return &Error{Kind: Unavailable, Upstream: o.cfg.ID, Op: op, Err: err}
}

// verifyError: a key set that cannot be fetched is the upstream's outage;
// anything else about the token is a failed check.
func (o *oidcConn) verifyError(err error) error {
	if strings.Contains(err.Error(), "fetching keys") {
		return &Error{Kind: Unavailable, Upstream: o.cfg.ID, Op: "ID token", Err: err}
	}
	return &Error{Kind: Invalid, Upstream: o.cfg.ID, Op: "ID token", Err: err}
}

// userinfoError classifies go-oidc's userinfo errors: a transport failure
// or a 5xx/429 answer is the upstream being unavailable; any other status,
// a body it cannot decode (email_verified: "yes") or a bad signature is an
// answer that failed a check — never "try again later".
func (o *oidcConn) userinfoError(err error) error {
	const op = "userinfo"
	msg := err.Error()
	// go-oidc formats non-200 answers as "<code> <reason>: <body>": the
	// status decides, as for every other endpoint (429 and 5xx are an
	// outage).
	if code, cerr := strconv.Atoi(msg[:min(3, len(msg))]); cerr == nil && len(msg) > 3 && msg[3] == ' ' {
		return &Error{Kind: classify(o.cfg.ID, op, code, nil).Kind, Upstream: o.cfg.ID, Op: op, Err: err}
	}
	// A transport failure is an outage; an answer it cannot decode or
	// whose signature fails is a failed check.
	var ue *url.Error
	if errors.As(err, &ue) || errors.Is(err, ErrBodyTooLarge) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, context.DeadlineExceeded) {
		return &Error{Kind: Unavailable, Upstream: o.cfg.ID, Op: op, Err: err}
	}
	return &Error{Kind: Invalid, Upstream: o.cfg.ID, Op: op, Err: err}
}

// userClaims are the claims read from the ID token and userinfo.
type userClaims struct {
	Email             string          `json:"email"`
	EmailVerified     json.RawMessage `json:"email_verified"`
	Name              string          `json:"name"`
	PreferredUsername string          `json:"preferred_username"`
	AZP               string          `json:"azp"`
	AuthTime          *int64          `json:"auth_time"`
	AMR               json.RawMessage `json:"amr"`
}

// apply fills id's email and name from c where c has them.
func (c userClaims) apply(id *Identity) {
	if e := strings.TrimSpace(c.Email); e != "" {
		id.Email = e
		// Only an explicit true counts (some issuers send the string
		// "true"); false, absent or anything else is unverified.
		v := strings.TrimSpace(string(c.EmailVerified))
		id.EmailVerified = v == "true" || v == `"true"`
	}
	if id.Name == "" {
		id.Name = strings.TrimSpace(c.Name)
		if id.Name == "" {
			id.Name = strings.TrimSpace(c.PreferredUsername)
		}
	}
}

var amrValue = regexp.MustCompile(`^[A-Za-z0-9_.:-]{1,32}$`)

// sanitizeAMR keeps up to 8 well-formed, distinct amr values from raw (a
// JSON array of strings; anything else yields none). They end up in
// Gatehouse's own ID tokens, so nothing odd passes.
func sanitizeAMR(raw json.RawMessage) []string {
	var vals []string
	if len(raw) == 0 || json.Unmarshal(raw, &vals) != nil {
		return nil
	}
	var out []string
	for _, v := range vals {
		if amrValue.MatchString(v) && !slices.Contains(out, v) && len(out) < 8 {
			out = append(out, v)
		}
	}
	return out
}
