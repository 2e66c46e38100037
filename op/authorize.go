package op

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"slices"

	"github.com/zitadel/oidc/v3/pkg/oidc"
	zop "github.com/zitadel/oidc/v3/pkg/op"

	"github.com/gatehouse-id/gatehouse/internal/httpobs"
	"github.com/gatehouse-id/gatehouse/storage"
)

// pkceChallenge is an S256 code challenge: base64url of a SHA-256, 43 characters.
var pkceChallenge = regexp.MustCompile(`^[A-Za-z0-9_-]{43}$`)

// authorize serves the authorization endpoint. It validates in the order that
// decides where an error may go: until the client and its redirect_uri are
// known to match, errors are shown as a page and never redirected (an open
// redirector otherwise); after that they go back to the client with state and
// iss (RFC 6749 §4.1.2.1, RFC 9207). A request carrying a request_uri from
// the PAR endpoint (par.go) is replaced by the request that was pushed, which
// is then validated like any other.
func (p *Provider) authorize(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	if len(r.URL.RawQuery) > maxAuthorizeQuery {
		p.errorPage(w, r, http.StatusBadRequest, "The sign-in request is too long.", "")
		return
	}
	if err := r.ParseForm(); err != nil {
		p.errorPage(w, r, http.StatusBadRequest, "The sign-in request is malformed.", "")
		return
	}
	if len(r.PostForm.Encode()) > maxAuthorizeQuery {
		p.errorPage(w, r, http.StatusBadRequest, "The sign-in request is too long.", "")
		return
	}
	req, err := p.decodeAuthorization(r.Form)
	if err != nil {
		p.errorPage(w, r, http.StatusBadRequest, "The sign-in request is malformed.", "")
		return
	}
	if repeatedParam(r.Form) == "client_id" {
		// Which application is in doubt.
		p.errorPage(w, r, http.StatusBadRequest, "The sign-in request names its client_id more than once.", "")
		return
	}
	if req.ClientID == "" {
		p.errorPage(w, r, http.StatusBadRequest, "The sign-in request names no application (client_id is missing).", "")
		return
	}
	c, err := p.client(ctx, req.ClientID)
	if err != nil {
		if errors.Is(err, storage.ErrNotFound) {
			p.errorPage(w, r, http.StatusBadRequest, "The application that sent you here is not registered (unknown client_id).", "")
			return
		}
		p.failurePage(w, r, "authorize: load client", err)
		return
	}
	httpobs.SetClientID(ctx, req.ClientID) // registered: fit for the access log
	form, pushed := r.Form, false
	if _, ok := r.Form["request_uri"]; ok {
		if form, ok = p.redeemPushed(w, r, req, c); !ok {
			return
		}
		if req, err = p.decodeAuthorization(form); err != nil { // it decoded when pushed
			p.failurePage(w, r, "authorize: decode pushed request", err)
			return
		}
		pushed = true
	}
	ar, problem := p.checkAuthorization(ctx, form, req, c, pushed)
	if problem != nil {
		if problem.page != "" {
			p.errorPage(w, r, http.StatusBadRequest, problem.page, "")
			return
		}
		p.respond(w, r, problem.redirectURI, problem.mode, errorParams(problem.code, problem.desc, problem.state))
		return
	}
	if p.answerSilently(w, r, ar, c) {
		return
	}
	handle, err := p.sealRequest(ar)
	if err != nil {
		_, e := p.failure(ctx, "authorize: seal request", err)
		p.respond(w, r, ar.RedirectURI, oidc.ResponseMode(ar.ResponseMode), errorParams(string(e.ErrorType), e.Description, ar.State))
		return
	}
	p.setBinding(w, ar.ID)
	http.Redirect(w, r, c.LoginURL(handle), http.StatusFound)
}

// decodeAuthorization reads an authorization request's parameters the way
// zitadel does (names matched case-insensitively).
func (p *Provider) decodeAuthorization(form url.Values) (*oidc.AuthRequest, error) {
	req := new(oidc.AuthRequest)
	if err := p.zp.Decoder().Decode(req, form); err != nil {
		return nil, fmt.Errorf("decode authorization request: %w", err)
	}
	return req, nil
}

// authzProblem is why an authorization request was refused, and where the
// answer may go.
type authzProblem struct {
	// page, when set, is the message for a person: the redirect_uri is in
	// doubt, so the error must not be sent there.
	page string
	// code and desc are the OAuth error: sent to the redirect_uri by
	// /authorize, answered as JSON by the PAR endpoint.
	code, desc string
	// Where and how /authorize sends a redirectable error.
	redirectURI, state string
	mode               oidc.ResponseMode
}

// checkAuthorization validates the authorization request req (decoded from
// form) of client c: the one set of rules for /authorize and the PAR
// endpoint. pushed says the request came through the PAR endpoint (or is
// being pushed), which a client or server that requires PAR insists on. It
// returns the pending request to seal.
func (p *Provider) checkAuthorization(ctx context.Context, form url.Values, req *oidc.AuthRequest, c *client, pushed bool) (*storage.AuthRequest, *authzProblem) {
	untrusted := func(page, desc string) (*storage.AuthRequest, *authzProblem) {
		return nil, &authzProblem{page: page, code: "invalid_request", desc: desc}
	}
	repeated := repeatedParam(form)
	switch {
	case repeated == "client_id" || repeated == "redirect_uri":
		// Which application, and where to send the answer, is in doubt.
		return untrusted("The sign-in request names its "+repeated+" more than once.", "the parameter "+repeated+" is repeated")
	case req.ClientID != c.GetID():
		return untrusted("The sign-in request names another application.", "client_id does not match the client")
	case req.RedirectURI == "":
		return untrusted("The sign-in request has no redirect_uri.", "redirect_uri is missing")
	case validateRedirectURI(c, req.RedirectURI) != nil:
		return untrusted("The redirect_uri is not registered for this application.", "redirect_uri is not registered for this client")
	}

	// From here on the redirect_uri is trusted.
	state := req.State
	badChars := badCharsParam(form)
	if repeated == "state" || len(state) > maxState || badChars == "state" {
		state = "" // not echoed: which one, or so much of it
	}
	mode := req.ResponseMode
	if mode != oidc.ResponseModeFormPost || repeated == "response_mode" {
		mode = oidc.ResponseModeQuery
	}
	fail := func(code, desc string) (*storage.AuthRequest, *authzProblem) {
		return nil, &authzProblem{code: code, desc: desc, redirectURI: req.RedirectURI, state: state, mode: mode}
	}
	failWith := func(err error) (*storage.AuthRequest, *authzProblem) {
		var oe *oidc.Error
		if errors.As(err, &oe) {
			return fail(string(oe.ErrorType), oe.Description)
		}
		return fail("server_error", "")
	}
	if !pushed && (p.cfg.RequirePAR || c.c.RequirePAR) {
		return fail("invalid_request", "pushed authorization request required")
	}
	if repeated != "" {
		return fail("invalid_request", "the parameter "+repeated+" is repeated")
	}
	if badChars != "" {
		return fail("invalid_request", badChars+" holds invalid UTF-8 or a control character")
	}
	if name, limit := oversizedParam(form); name != "" {
		return fail("invalid_request", fmt.Sprintf("%s is longer than %d bytes", name, limit))
	}
	switch req.ResponseMode {
	case "", oidc.ResponseModeQuery, oidc.ResponseModeFormPost:
	default:
		return fail("invalid_request", "unsupported response_mode")
	}
	if req.RequestParam != "" || form.Get("request_uri") != "" {
		return fail("request_not_supported", "request objects are not supported")
	}
	if req.ResponseType != oidc.ResponseTypeCode {
		if req.ResponseType == "" {
			return fail("invalid_request", "response_type is missing")
		}
		return fail("unsupported_response_type", "only response_type=code is supported")
	}
	if !c.hasGrant(oidc.GrantTypeCode) {
		return fail("unauthorized_client", "this client may not use the authorization code grant")
	}
	maxAge, err := zop.ValidateAuthReqPrompt(req.Prompt, req.MaxAge)
	if err != nil {
		return failWith(err)
	}
	req.MaxAge = maxAge
	if !slices.Contains(req.Scopes, oidc.ScopeOpenID) {
		return fail("invalid_scope", "the openid scope is required")
	}
	scopes, err := zop.ValidateAuthReqScopes(c, req.Scopes)
	if err != nil {
		return failWith(err)
	}
	if !c.hasGrant(oidc.GrantTypeRefreshToken) {
		// A client that may not refresh gets no refresh token; drop the scope
		// rather than fail the sign-in.
		scopes = slices.DeleteFunc(scopes, func(s string) bool { return s == oidc.ScopeOfflineAccess })
	}
	req.Scopes = scopes
	switch {
	case req.CodeChallenge == "" && req.CodeChallengeMethod != "":
		return fail("invalid_request", "code_challenge_method without code_challenge")
	case req.CodeChallenge == "" && c.AuthMethod() == oidc.AuthMethodNone:
		return fail("invalid_request", "PKCE with code_challenge_method=S256 is required for public clients")
	case req.CodeChallenge == "" && p.cfg.RequirePKCE:
		return fail("invalid_request", "PKCE with code_challenge_method=S256 is required")
	case req.CodeChallenge != "" && req.CodeChallengeMethod != oidc.CodeChallengeMethodS256:
		// An absent method means plain (RFC 7636 §4.3): refused like plain itself.
		return fail("invalid_request", "code_challenge_method must be S256")
	case req.CodeChallenge != "" && !pkceChallenge.MatchString(req.CodeChallenge):
		return fail("invalid_request", "code_challenge is malformed")
	}
	hintSubject, err := zop.ValidateAuthReqIDTokenHint(ctx, req.IDTokenHint, p.zp.IDTokenHintVerifier(ctx))
	if err != nil {
		return failWith(err)
	}
	for _, res := range form["resource"] { // RFC 8707: each must be registered for the client
		if !slices.Contains(c.c.Resources, res) {
			e := errInvalidTarget(res)
			return fail(string(e.ErrorType), e.Description)
		}
	}
	jkt := form.Get("dpop_jkt")
	if jkt != "" && !validJKT(jkt) {
		return fail("invalid_request", "dpop_jkt must be the base64url SHA-256 thumbprint of a JWK (RFC 7638)")
	}
	ar := p.newAuthRequest(req, hintSubject)
	ar.Resources = form["resource"]
	ar.DPoPJKT = jkt // binds the code to the key (RFC 9449 §10)
	return ar, nil
}

// callback issues the authorization code of a request the sign-in pages
// completed without one. Finish now stores the code with the completion and
// answers the browser itself, so this serves only requests completed by an
// older instance during a rolling upgrade (its pages redirect here).
func (p *Provider) callback(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	id := r.URL.Query().Get("id")
	ar, err := p.store.GetAuthRequest(ctx, id)
	if err != nil {
		if errors.Is(err, storage.ErrNotFound) {
			p.errorPage(w, r, http.StatusBadRequest, "This sign-in request is unknown or has expired. Please go back to the application and start again.", "")
			return
		}
		p.failurePage(w, r, "callback: load auth request", err)
		return
	}
	if !p.now().Before(ar.ExpiresAt) || !ar.CodeExpiresAt.IsZero() {
		p.errorPage(w, r, http.StatusBadRequest, "This sign-in request has expired or was already used. Please go back to the application and start again.", "")
		return
	}
	if !p.StartedHere(r, ar.ID) {
		p.errorPage(w, r, http.StatusBadRequest, "This sign-in was started in another browser or app. Please go back to the application and sign in from here.", "")
		return
	}
	p.clearBinding(w, ar.ID)
	mode := oidc.ResponseMode(ar.ResponseMode)
	if !ar.Done {
		p.respond(w, r, ar.RedirectURI, mode, errorParams("interaction_required", "the user has not signed in", ar.State))
		return
	}
	code, err := zop.CreateAuthRequestCode(ctx, authRequest{r: ar}, opStorage{p}, p.zp.Crypto())
	if errors.Is(err, storage.ErrConflict) { // a concurrent callback issued the code first
		p.errorPage(w, r, http.StatusBadRequest, "This sign-in request has expired or was already used. Please go back to the application and start again.", "")
		return
	}
	if err != nil {
		p.log.ErrorContext(ctx, "callback: create code", "err", err)
		p.respond(w, r, ar.RedirectURI, mode, errorParams("server_error", "", ar.State))
		return
	}
	params := url.Values{"code": {code}}
	if ar.State != "" {
		params.Set("state", ar.State)
	}
	p.respond(w, r, ar.RedirectURI, mode, params)
}

func errorParams(code, desc, state string) url.Values {
	v := url.Values{"error": {code}}
	if desc != "" {
		v.Set("error_description", desc)
	}
	if state != "" {
		v.Set("state", state)
	}
	return v
}

// respond sends an authorization response (success or error) to the client,
// always with iss (RFC 9207), by redirect or by form_post.
func (p *Provider) respond(w http.ResponseWriter, r *http.Request, redirectURI string, mode oidc.ResponseMode, params url.Values) {
	params.Set("iss", p.cfg.Issuer)
	if mode == oidc.ResponseModeFormPost {
		p.formPost(w, redirectURI, params)
		return
	}
	u, err := url.Parse(redirectURI)
	if err != nil {
		p.errorPage(w, r, http.StatusBadRequest, "The redirect_uri is invalid.", "")
		return
	}
	q := u.Query()
	for k, vs := range params {
		q[k] = vs
	}
	u.RawQuery = q.Encode()
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Referrer-Policy", "no-referrer")
	http.Redirect(w, r, u.String(), http.StatusFound)
}

// Fail implements login.Flow: it sends the browser back to the client of the
// request with an OAuth error.
func (p *Provider) Fail(w http.ResponseWriter, r *http.Request, ar *storage.AuthRequest, errorCode, description string) {
	p.clearBinding(w, ar.ID) // the request is answered: its cookie has done its job
	p.respond(w, r, ar.RedirectURI, oidc.ResponseMode(ar.ResponseMode), errorParams(errorCode, description, ar.State))
}
