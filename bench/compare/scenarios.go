package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strings"
)

// scenario is one row of the table.
type scenario struct {
	id    string
	title string // {c}, {flows}, {browsers} and {rate} are replaced by the settings
	unit  string // of the rate: req/s, flows/s, sign-ins/s
	// latency rows show the p99 of a paced load, not a rate.
	latency bool
	// hashedOnly rows compare a system's sign-ins with its own password
	// hashing, which the peers' dev logins do not have.
	hashedOnly bool
	// prepare sets the target up for the scenario (not measured) and
	// returns what to measure; an error wrapping errSkipped says why the
	// scenario does not apply.
	prepare func(ctx context.Context, l *lab, t *target) (*prepared, error)
}

// prepared is a scenario ready to run on a target.
type prepared struct {
	t    *target // the process measured (the ES256 instance, when there is one)
	main load
	bg   *load // runs during the measurement; its rate is reported too
}

func skip(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{errSkipped}, args...)...)
}

var scenarios = []scenario{
	{id: "discovery", title: "discovery, {c} connections", unit: "req/s", prepare: prepareGet(func(t *target) string {
		return strings.TrimRight(t.disc.Issuer, "/") + "/.well-known/openid-configuration"
	})},
	{id: "jwks", title: "JWKS, {c} connections", unit: "req/s", prepare: prepareGet(func(t *target) string { return t.disc.JWKSURI })},
	{id: "cc-opaque", title: "client_credentials, opaque token, {c} connections", unit: "req/s", prepare: prepareCC(false)},
	{id: "cc-jwt", title: "client_credentials, RS256 JWT, {c} connections", unit: "req/s", prepare: prepareCC(true)},
	{id: "refresh-rs256", title: "refresh rotation, RS256 ID token, {c} chains", unit: "req/s", prepare: prepareRefresh("RS256")},
	{id: "refresh-es256", title: "refresh rotation, ES256 ID token, {c} chains", unit: "req/s", prepare: prepareRefresh("ES256")},
	{id: "flow-rs256", title: "code flow on an SSO session, RS256, {flows} browsers", unit: "flows/s", prepare: prepareFlow("RS256")},
	{id: "flow-es256", title: "code flow on an SSO session, ES256, {flows} browsers", unit: "flows/s", prepare: prepareFlow("ES256")},
	// Idle before any sign-in: the memory the hashes leave behind is not
	// yet being returned to the system.
	{id: "cc-idle", title: "client_credentials at {rate}/s, idle", latency: true, prepare: prepareLatency(false)},
	{id: "signin", title: "password sign-ins through the form, {browsers} browsers", unit: "sign-ins/s", hashedOnly: true, prepare: prepareSignIn},
	{id: "cc-flood", title: "client_credentials at {rate}/s while {browsers} browsers sign in", latency: true, prepare: prepareLatency(true)},
}

func (s scenario) label(cfg config) string {
	return strings.NewReplacer(
		"{c}", fmt.Sprint(cfg.conc), "{flows}", fmt.Sprint(cfg.flows),
		"{browsers}", fmt.Sprint(cfg.browsers), "{rate}", fmt.Sprint(cfg.floodRate),
	).Replace(s.title)
}

func prepareGet(u func(*target) string) func(context.Context, *lab, *target) (*prepared, error) {
	return func(ctx context.Context, l *lab, t *target) (*prepared, error) {
		target := u(t)
		if _, err := t.get(ctx, target); err != nil {
			return nil, err
		}
		return &prepared{t: t, main: load{workers: l.cfg.conc, op: func(ctx context.Context, _ int) (int, error) {
			_, err := t.get(ctx, target)
			return 1, err
		}}}, nil
	}
}

// ccOp is one client_credentials request.
func ccOp(t *target, cc *ccRequest) func(context.Context, int) (int, error) {
	return func(ctx context.Context, _ int) (int, error) {
		body, err := t.post(ctx, t.disc.TokenEndpoint, cc.app, cc.form)
		if err == nil && !bytes.Contains(body, []byte(`"access_token"`)) {
			err = fmt.Errorf("no access_token in %.200s", body)
		}
		return 1, err
	}
}

func prepareCC(jwt bool) func(context.Context, *lab, *target) (*prepared, error) {
	return func(ctx context.Context, l *lab, t *target) (*prepared, error) {
		cc, want := t.ccOpaque, ""
		if jwt {
			cc, want = t.ccJWT, "RS256"
		}
		if cc == nil {
			return nil, skip("not supported")
		}
		tok, err := t.token(ctx, cc.app, cc.form)
		if err != nil {
			return nil, err
		}
		if got := jwtAlg(tok.AccessToken); got != want {
			return nil, fmt.Errorf("client_credentials: access token alg %q, want %q (empty: opaque)", got, want)
		}
		return &prepared{t: t, main: load{workers: l.cfg.conc, op: ccOp(t, cc)}}, nil
	}
}

// variant returns the target and app whose ID tokens are signed with alg.
func variant(ctx context.Context, t *target, alg string) (*target, client, error) {
	if alg == "RS256" {
		return t, t.app, nil
	}
	if t.es256 == nil {
		return nil, client{}, skip("RS256 is the comparison")
	}
	return t.es256(ctx)
}

// signInOnce runs one code flow with a sign-in form allowed, and checks the
// ID token's algorithm.
func signInOnce(ctx context.Context, br *browser, f codeFlow, alg string) (tokens, error) {
	tok, _, err := f.run(ctx, br)
	if err != nil {
		return tokens{}, err
	}
	if got := jwtAlg(tok.IDToken); got != alg {
		return tokens{}, fmt.Errorf("ID token alg %q, want %s", got, alg)
	}
	return tok, nil
}

// prepareRefresh signs in once per worker (riding an SSO session where
// there is one) with offline_access and gives each worker a refresh token
// to rotate: every request presents the token the previous one returned,
// and every answer carries a new ID token (one signature).
func prepareRefresh(alg string) func(context.Context, *lab, *target) (*prepared, error) {
	return func(ctx context.Context, l *lab, t *target) (*prepared, error) {
		vt, app, err := variant(ctx, t, alg)
		if err != nil {
			return nil, err
		}
		br := newBrowser(vt.tr)
		flow := codeFlow{t: vt, app: app, scope: "openid offline_access", extra: vt.refreshExtra, signIn: &vt.users[0]}
		chains := make([]string, l.cfg.conc)
		for i := range chains {
			tok, err := signInOnce(ctx, br, flow, alg)
			if err != nil {
				return nil, fmt.Errorf("sign-in %d for a refresh token: %w", i+1, err)
			}
			if tok.RefreshToken == "" {
				return nil, errors.New("no refresh token after a sign-in with offline_access")
			}
			chains[i] = tok.RefreshToken
		}
		rotate := func(ctx context.Context, w int) (int, error) {
			body, err := vt.post(ctx, vt.disc.TokenEndpoint, app, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {chains[w]}})
			if err != nil {
				return 1, fmt.Errorf("%w: %w", errStopWorker, err)
			}
			var tok tokens
			if err := json.Unmarshal(body, &tok); err != nil || tok.RefreshToken == "" || tok.RefreshToken == chains[w] || tok.IDToken == "" {
				return 1, fmt.Errorf("%w: the refresh token did not rotate, or no ID token: %.200s", errStopWorker, body)
			}
			chains[w] = tok.RefreshToken
			return 1, nil
		}
		// One rotation checked in full: a new ID token signed with alg.
		body, err := vt.post(ctx, vt.disc.TokenEndpoint, app, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {chains[0]}})
		if err != nil {
			return nil, err
		}
		var tok tokens
		if err := json.Unmarshal(body, &tok); err != nil || tok.RefreshToken == "" || jwtAlg(tok.IDToken) != alg {
			return nil, fmt.Errorf("refresh: want a new refresh token and a %s ID token, got %.300s", alg, body)
		}
		chains[0] = tok.RefreshToken
		return &prepared{t: vt, main: load{workers: l.cfg.conc, op: rotate}}, nil
	}
}

// prepareFlow signs one browser per worker in through the form; each
// operation is then a whole code flow on that browser's SSO session:
// authorization request, whatever pages the system puts in between (none
// may be a form), the redirect to the app, the code exchange.
func prepareFlow(alg string) func(context.Context, *lab, *target) (*prepared, error) {
	return func(ctx context.Context, l *lab, t *target) (*prepared, error) {
		if !t.sso {
			return nil, skip("no SSO session: its sign-in page comes up on every authorization request")
		}
		vt, app, err := variant(ctx, t, alg)
		if err != nil {
			return nil, err
		}
		browsers := make([]*browser, l.cfg.flows)
		for i := range browsers {
			browsers[i] = newBrowser(vt.tr)
			acct := &vt.users[i%len(vt.users)]
			if _, err := signInOnce(ctx, browsers[i], codeFlow{t: vt, app: app, scope: "openid", signIn: acct}, alg); err != nil {
				return nil, fmt.Errorf("sign-in of browser %d: %w", i+1, err)
			}
		}
		sso := codeFlow{t: vt, app: app, scope: "openid"}
		// A flow on the session, checked in full before the clock starts.
		if _, err := signInOnce(ctx, browsers[0], sso, alg); err != nil {
			return nil, fmt.Errorf("code flow on the SSO session: %w", err)
		}
		return &prepared{t: vt, main: load{workers: l.cfg.flows, op: func(ctx context.Context, w int) (int, error) {
			_, n, err := sso.run(ctx, browsers[w])
			return n, err
		}}}, nil
	}
}

// signInOp is a whole code flow in a new browser: the sign-in form, the
// redirect to the app, the code exchange.
func signInOp(t *target) func(context.Context, int) (int, error) {
	return func(ctx context.Context, w int) (int, error) {
		f := codeFlow{t: t, app: t.app, scope: "openid", signIn: &t.users[w%len(t.users)]}
		_, n, err := f.run(ctx, newBrowser(t.tr))
		return n, err
	}
}

func prepareSignIn(ctx context.Context, l *lab, t *target) (*prepared, error) {
	if _, err := signInOnce(ctx, newBrowser(t.tr), codeFlow{t: t, app: t.app, scope: "openid", signIn: &t.users[0]}, "RS256"); err != nil {
		return nil, err
	}
	return &prepared{t: t, main: load{workers: l.cfg.browsers, op: signInOp(t)}}, nil
}

// prepareLatency is client_credentials (opaque) at a steady rate, alone or
// while browsers sign in with passwords as fast as they can: does password
// hashing starve the token endpoint?
func prepareLatency(flood bool) func(context.Context, *lab, *target) (*prepared, error) {
	return func(ctx context.Context, l *lab, t *target) (*prepared, error) {
		if !t.hashes {
			return nil, skip("no password hashing in its sign-in")
		}
		if _, err := t.token(ctx, t.ccOpaque.app, t.ccOpaque.form); err != nil {
			return nil, err
		}
		p := &prepared{t: t, main: load{workers: 64, rate: float64(l.cfg.floodRate), op: ccOp(t, t.ccOpaque)}}
		if flood {
			p.bg = &load{workers: l.cfg.browsers, op: signInOp(t)}
		}
		return p, nil
	}
}
