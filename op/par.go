package op

import (
	"errors"
	"math"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/zitadel/oidc/v3/pkg/oidc"
	zop "github.com/zitadel/oidc/v3/pkg/op"

	"github.com/gatehouse-id/gatehouse/internal/ratelimit"
	"github.com/gatehouse-id/gatehouse/storage"
)

// Pushed authorization requests (RFC 9126). A client posts the parameters
// of an authorization request to the PAR endpoint, authenticated as at the
// token endpoint, and gets a request_uri for the browser to bring to
// /authorize. Unlike a plain /authorize request, which travels sealed in the
// browser and costs no storage (pending.go), a pushed request is stored: it
// must be usable once only. The store keeps the SHA-256 of the request_uri,
// the pushing client and the parameters; /authorize deletes the row as it
// reads it and validates the parameters again with the same code
// (checkAuthorization), so a client changed in the meantime is judged by
// its current registration.

const (
	// parTTL is how long a request_uri may wait for the browser: it only has
	// to cover a redirect (RFC 9126 §2.2 suggests 5 to 600 seconds).
	parTTL = 60 * time.Second
	// requestURIPrefix is RFC 9126 §2.2's URN form of a request_uri.
	requestURIPrefix = "urn:ietf:params:oauth:request_uri:"
)

// clientAuthParams are the PAR request's client authentication: they
// authenticate the push and are not part of the authorization request
// (RFC 9126 §2.1), so they are never stored.
var clientAuthParams = map[string]bool{"client_secret": true, "client_assertion": true, "client_assertion_type": true}

type parResponse struct {
	RequestURI string `json:"request_uri"`
	ExpiresIn  int    `json:"expires_in"`
}

// pushAuthorization serves the PAR endpoint. The wrapping middleware (routes.go)
// has refused repeated parameters and parameters in the URL, as at the token
// endpoint.
func (p *Provider) pushAuthorization(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	if len(r.PostForm.Encode()) > maxAuthorizeQuery {
		writeJSON(w, http.StatusRequestEntityTooLarge, oauthError{"invalid_request", "the request is longer than " + strconv.Itoa(maxAuthorizeQuery) + " bytes"})
		return
	}
	if _, ok := r.PostForm["request_uri"]; ok {
		writeJSON(w, http.StatusBadRequest, oauthError{"invalid_request", "request_uri must not be pushed"})
		return
	}
	c, err := p.authenticateRequestClient(ctx, r.Header, r.PostForm)
	if err != nil {
		zop.WriteError(w, r, p.publicError(ctx, "par: authenticate client", err), p.log)
		return
	}
	if !p.parAllowed(w, r, c) {
		return
	}
	form := url.Values{}
	for k, vs := range r.PostForm {
		if !clientAuthParams[strings.ToLower(k)] {
			form[k] = vs
		}
	}
	req, err := p.decodeAuthorization(form)
	if err != nil {
		writeJSON(w, http.StatusBadRequest, oauthError{"invalid_request", "malformed authorization request"})
		return
	}
	if req.ClientID == "" { // RFC 9126 §2.1 requires it; client authentication has named the client
		req.ClientID = c.GetID()
		form.Set("client_id", req.ClientID)
	}
	// RFC 9449 §10.1: a DPoP proof at the PAR endpoint binds the code to
	// its key, as dpop_jkt would; with both, they must name the same key.
	p.setDPoPNonce(w)
	proof, err := p.parseDPoP(r, p.cfg.Issuer+pathPAR, "")
	if err != nil {
		var de *dpopError
		errors.As(err, &de)
		writeJSON(w, http.StatusBadRequest, oauthError{de.code, de.desc})
		return
	}
	if proof != nil {
		if jkt := form.Get("dpop_jkt"); jkt != "" && jkt != proof.jkt {
			writeJSON(w, http.StatusBadRequest, oauthError{errInvalidDPoPProof, "dpop_jkt is not the thumbprint of the DPoP proof's key"})
			return
		}
		form.Set("dpop_jkt", proof.jkt)
	}
	if _, problem := p.checkAuthorization(ctx, form, req, c, true); problem != nil {
		status := http.StatusBadRequest
		if problem.code == string(oidc.ServerError) {
			status = http.StatusInternalServerError
		}
		writeJSON(w, status, oauthError{problem.code, problem.desc})
		return
	}
	if proof != nil { // spent only for a request that is otherwise good
		if err := p.spendDPoP(ctx, proof); err != nil {
			var de *dpopError
			if errors.As(err, &de) {
				writeJSON(w, http.StatusBadRequest, oauthError{de.code, de.desc})
			} else {
				p.writeFailure(w, r, "par: spend DPoP proof", err)
			}
			return
		}
	}
	uri := requestURIPrefix + randomToken(32)
	now := p.now()
	err = p.store.CreatePushedRequest(ctx, &storage.PushedRequest{
		Hash: sha256Bytes(uri), ClientID: c.GetID(), Params: form.Encode(), CreatedAt: now, ExpiresAt: now.Add(parTTL),
	})
	if err != nil {
		p.writeFailure(w, r, "par: store pushed request", err)
		return
	}
	writeJSON(w, http.StatusCreated, parResponse{RequestURI: uri, ExpiresIn: int(parTTL / time.Second)})
}

// parRule bounds the requests one client pushes: far above what sign-ins
// need (one push each), low enough that a client with a leaked secret
// cannot fill the store (each push is a row for 60 s).
var parRule = ratelimit.Rule{Name: "par-client", Limit: 300, Period: time.Minute}

// parAllowed applies the per-client rate limit of the PAR endpoint. It runs
// after authentication, so nobody but a confidential client can spend its
// budget; a public client's budget is per address (clientBudgetKey). A
// limiter that cannot decide refuses (fail closed, as package ratelimit
// says).
func (p *Provider) parAllowed(w http.ResponseWriter, r *http.Request, c *client) bool {
	if p.cfg.Limiter == nil {
		return true
	}
	ok, wait, err := p.cfg.Limiter.Allow(r.Context(), parRule, p.clientBudgetKey(c, r))
	if err != nil {
		p.writeFailure(w, r, "par: rate limiter", errors.Join(err, storage.ErrUnavailable))
		return false
	}
	if !ok {
		p.log.InfoContext(r.Context(), "rate limited", "rule", parRule.Name)
		w.Header().Set("Retry-After", strconv.Itoa(max(int(math.Ceil(wait.Seconds())), 1)))
		writeJSON(w, http.StatusTooManyRequests, oauthError{"invalid_request", "too many pushed authorization requests; retry later"})
		return false
	}
	return true
}

// clientBudgetKey is the rate-limit key of a client's own budget at an
// endpoint it calls after authenticating. A public client proves nothing
// by naming its client_id, which anyone can read, so its budget is per
// client and address (an IPv6 /64, as ratelimit.AddrKey): otherwise
// anyone could spend it and lock out the app's real users.
func (p *Provider) clientBudgetKey(c *client, r *http.Request) string {
	if c.AuthMethod() == oidc.AuthMethodNone {
		return c.c.ID + "|" + ratelimit.AddrKey(p.clientIP(r))
	}
	return c.c.ID
}

// redeemPushed answers /authorize's request_uri: it uses up the request
// client c pushed under that request_uri and returns its parameters, which
// replace whatever else the browser brought (RFC 9126 §4 builds on RFC 9101
// §6.3: only the pushed parameters count). An unknown, expired, used or
// another client's request_uri is invalid_request_uri (RFC 9101 §7): sent to
// the redirect_uri of the front-channel request when that is registered for
// the client, else shown as a page, as any /authorize error before the
// redirect_uri is trusted. ok is false when the response is written.
func (p *Provider) redeemPushed(w http.ResponseWriter, r *http.Request, front *oidc.AuthRequest, c *client) (url.Values, bool) {
	ctx := r.Context()
	repeated := repeatedParam(r.Form)
	if repeated == "request_uri" {
		p.errorPage(w, r, http.StatusBadRequest, "The sign-in request names its request_uri more than once.", "")
		return nil, false
	}
	pr, err := p.store.ConsumePushedRequest(ctx, sha256Bytes(r.Form.Get("request_uri")), c.GetID(), p.now())
	switch {
	case errors.Is(err, storage.ErrNotFound):
		const desc = "the request_uri is unknown, expired or already used"
		if front.RedirectURI != "" && repeated != "redirect_uri" && validateRedirectURI(c, front.RedirectURI) == nil {
			state := front.State
			if repeated == "state" || len(state) > maxState || badCharsParam(url.Values{"state": {state}}) != "" {
				state = ""
			}
			p.respond(w, r, front.RedirectURI, oidc.ResponseModeQuery, errorParams("invalid_request_uri", desc, state))
			return nil, false
		}
		p.errorPage(w, r, http.StatusBadRequest, "This sign-in request has expired or was already used. Please go back to the application and start again.", "")
		return nil, false
	case err != nil:
		p.failurePage(w, r, "authorize: use pushed request", err)
		return nil, false
	}
	form, err := url.ParseQuery(pr.Params)
	if err != nil { // stored by pushAuthorization from a parsed form: ours to fix
		p.failurePage(w, r, "authorize: parse pushed request", err)
		return nil, false
	}
	return form, true
}
