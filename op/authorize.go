package op

import (
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
// iss (RFC 6749 §4.1.2.1, RFC 9207).
func (p *Provider) authorize(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	if len(r.URL.RawQuery) > maxAuthorizeQuery {
		p.errorPage(w, r, http.StatusBadRequest, "The sign-in request is too long.", "")
		return
	}
	req, err := zop.ParseAuthorizeRequest(r, p.zp.Decoder())
	if err != nil {
		p.errorPage(w, r, http.StatusBadRequest, "The sign-in request is malformed.", "")
		return
	}
	if len(r.PostForm.Encode()) > maxAuthorizeQuery {
		p.errorPage(w, r, http.StatusBadRequest, "The sign-in request is too long.", "")
		return
	}
	repeated := repeatedParam(r.Form)
	if repeated == "client_id" || repeated == "redirect_uri" {
		// Which application, and where to send the answer, is in doubt.
		p.errorPage(w, r, http.StatusBadRequest, "The sign-in request names its "+repeated+" more than once.", "")
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
	if req.RedirectURI == "" {
		p.errorPage(w, r, http.StatusBadRequest, "The sign-in request has no redirect_uri.", "")
		return
	}
	if err := validateRedirectURI(c, req.RedirectURI); err != nil {
		p.errorPage(w, r, http.StatusBadRequest, "The redirect_uri is not registered for this application.", "")
		return
	}

	// From here on the redirect_uri is trusted.
	state := req.State
	badChars := badCharsParam(r.Form)
	if repeated == "state" || len(state) > maxState || badChars == "state" {
		state = "" // not echoed: which one, or so much of it
	}
	fail := func(code, desc string) {
		mode := req.ResponseMode
		if mode != oidc.ResponseModeFormPost || repeated == "response_mode" {
			mode = oidc.ResponseModeQuery
		}
		p.respond(w, r, req.RedirectURI, mode, errorParams(code, desc, state))
	}
	if repeated != "" {
		fail("invalid_request", "the parameter "+repeated+" is repeated")
		return
	}
	if badChars != "" {
		fail("invalid_request", badChars+" holds invalid UTF-8 or a control character")
		return
	}
	if name, limit := oversizedParam(r.Form); name != "" {
		fail("invalid_request", fmt.Sprintf("%s is longer than %d bytes", name, limit))
		return
	}
	switch req.ResponseMode {
	case "", oidc.ResponseModeQuery, oidc.ResponseModeFormPost:
	default:
		fail("invalid_request", "unsupported response_mode")
		return
	}
	if req.RequestParam != "" || r.Form.Get("request_uri") != "" {
		fail("request_not_supported", "request objects are not supported")
		return
	}
	if req.ResponseType != oidc.ResponseTypeCode {
		if req.ResponseType == "" {
			fail("invalid_request", "response_type is missing")
		} else {
			fail("unsupported_response_type", "only response_type=code is supported")
		}
		return
	}
	if !c.hasGrant(oidc.GrantTypeCode) {
		fail("unauthorized_client", "this client may not use the authorization code grant")
		return
	}
	maxAge, err := zop.ValidateAuthReqPrompt(req.Prompt, req.MaxAge)
	if err != nil {
		failWith(fail, err)
		return
	}
	req.MaxAge = maxAge
	if !slices.Contains(req.Scopes, oidc.ScopeOpenID) {
		fail("invalid_scope", "the openid scope is required")
		return
	}
	scopes, err := zop.ValidateAuthReqScopes(c, req.Scopes)
	if err != nil {
		failWith(fail, err)
		return
	}
	if !c.hasGrant(oidc.GrantTypeRefreshToken) {
		// A client that may not refresh gets no refresh token; drop the scope
		// rather than fail the sign-in.
		scopes = slices.DeleteFunc(scopes, func(s string) bool { return s == oidc.ScopeOfflineAccess })
	}
	req.Scopes = scopes
	switch {
	case req.CodeChallenge == "" && req.CodeChallengeMethod != "":
		fail("invalid_request", "code_challenge_method without code_challenge")
		return
	case req.CodeChallenge == "" && c.AuthMethod() == oidc.AuthMethodNone:
		fail("invalid_request", "PKCE with code_challenge_method=S256 is required for public clients")
		return
	case req.CodeChallenge != "" && req.CodeChallengeMethod != oidc.CodeChallengeMethodS256:
		// An absent method means plain (RFC 7636 §4.3): refused like plain itself.
		fail("invalid_request", "code_challenge_method must be S256")
		return
	case req.CodeChallenge != "" && !pkceChallenge.MatchString(req.CodeChallenge):
		fail("invalid_request", "code_challenge is malformed")
		return
	}
	hintSubject, err := zop.ValidateAuthReqIDTokenHint(ctx, req.IDTokenHint, p.zp.IDTokenHintVerifier(ctx))
	if err != nil {
		failWith(fail, err)
		return
	}
	for _, res := range r.Form["resource"] { // RFC 8707: each must be registered for the client
		if !slices.Contains(c.c.Resources, res) {
			e := errInvalidTarget(res)
			fail(string(e.ErrorType), e.Description)
			return
		}
	}
	jkt := r.Form.Get("dpop_jkt")
	if jkt != "" && !validJKT(jkt) {
		fail("invalid_request", "dpop_jkt must be the base64url SHA-256 thumbprint of a JWK (RFC 7638)")
		return
	}
	ar := p.newAuthRequest(req, hintSubject)
	ar.Resources = r.Form["resource"]
	ar.DPoPJKT = jkt // binds the code to the key (RFC 9449 §10)
	handle, err := p.sealRequest(ar)
	if err != nil {
		_, e := p.failure(ctx, "authorize: seal request", err)
		fail(string(e.ErrorType), e.Description)
		return
	}
	p.setBinding(w, ar.ID)
	http.Redirect(w, r, c.LoginURL(handle), http.StatusFound)
}

func failWith(fail func(code, desc string), err error) {
	var oe *oidc.Error
	if errors.As(err, &oe) {
		fail(string(oe.ErrorType), oe.Description)
		return
	}
	fail("server_error", "")
}

// callback issues the authorization code once login has completed the request.
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

// CallbackURL implements login.Flow.
func (p *Provider) CallbackURL(authRequestID string) string {
	return p.cfg.Issuer + pathCallback + "?id=" + url.QueryEscape(authRequestID)
}

// Fail implements login.Flow: it sends the browser back to the client of the
// request with an OAuth error.
func (p *Provider) Fail(w http.ResponseWriter, r *http.Request, ar *storage.AuthRequest, errorCode, description string) {
	p.clearBinding(w, ar.ID) // the request is answered: its cookie has done its job
	p.respond(w, r, ar.RedirectURI, oidc.ResponseMode(ar.ResponseMode), errorParams(errorCode, description, ar.State))
}
