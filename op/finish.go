package op

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"

	"github.com/zitadel/oidc/v3/pkg/oidc"
	zop "github.com/zitadel/oidc/v3/pkg/op"

	"github.com/gatehouse-id/gatehouse/storage"
)

// SilentSignIn is the sign-in UI's decision (package login) on a request
// arriving with an SSO session: the session when the browser's user may
// have a code at once (signed in, no prompt, max_age or id_token_hint
// that asks otherwise, second factor and consent already settled), nil
// when the sign-in pages must run. The UI owns these rules; op only asks,
// so the one-request path and the pages cannot disagree.
type SilentSignIn interface {
	SilentSignIn(r *http.Request, ar *storage.AuthRequest, client *storage.Client) (*storage.Session, error)
}

// SetSilentSignIn hands the provider the sign-in UI's SilentSignIn, set
// once after both exist (as SetPages). Without it every request goes
// through the sign-in pages.
func (p *Provider) SetSilentSignIn(s SilentSignIn) { p.silent = s }

// answerSilently gives a browser whose SSO session settles ar its code in
// the response to /authorize itself: one request instead of the four of
// /authorize → /login → /authorize/callback → the app, and one write (the
// completed request with its code). It reports whether it answered; when
// it did not, the caller sends the browser to the sign-in pages, which
// then decide as before (and answer prompt=none's errors).
func (p *Provider) answerSilently(w http.ResponseWriter, r *http.Request, ar *storage.AuthRequest, c *client) bool {
	if p.silent == nil {
		return false
	}
	sess, err := p.silent.SilentSignIn(r, ar, c.c)
	if err != nil {
		// The pages will meet the same failure and explain it; a request
		// that cannot be answered at once is never refused for that.
		p.log.WarnContext(r.Context(), "authorize: SSO session check failed; sending to the sign-in page", "err", err)
		return false
	}
	if sess == nil {
		return false
	}
	if err := p.Finish(w, r, ar, sess); err != nil {
		// A fresh request ID cannot have been completed before, so this is
		// the store failing.
		_, e := p.failure(r.Context(), "authorize: finish with SSO session", err)
		p.respond(w, r, ar.RedirectURI, oidc.ResponseMode(ar.ResponseMode), errorParams(string(e.ErrorType), e.Description, ar.State))
	}
	return true
}

// Finish implements login.Flow: it stores pending as signed in by the
// session's user together with its authorization code — one write — and
// answers the browser with the code (redirect or form_post, with state
// and iss). A second completion of the same request (another tab, a
// replayed form) is storage.ErrConflict and writes nothing to w, so a
// request yields at most one code.
func (p *Provider) Finish(w http.ResponseWriter, r *http.Request, pending *storage.AuthRequest, sess *storage.Session) error {
	ar := *pending
	ar.Done, ar.UserID, ar.SessionID, ar.AuthTime, ar.AMR, ar.IDP = true, sess.UserID, sess.ID, sess.AuthTime, sess.AMR, sess.IDP
	code, err := zop.BuildAuthRequestCode(authRequest{r: &ar}, p.zp.Crypto())
	if err != nil {
		return fmt.Errorf("build authorization code: %w", err)
	}
	ar.CodeHash, ar.CodeExpiresAt = sha256Bytes(code), p.now().Add(p.cfg.CodeTTL)
	if err := p.store.CreateAuthRequest(r.Context(), &ar); err != nil {
		if errors.Is(err, storage.ErrConflict) {
			return err
		}
		return fmt.Errorf("complete auth request: %w", err)
	}
	p.clearBinding(w, ar.ID) // the request is answered: its cookie has done its job
	params := url.Values{"code": {code}}
	if ar.State != "" {
		params.Set("state", ar.State)
	}
	p.respond(w, r, ar.RedirectURI, oidc.ResponseMode(ar.ResponseMode), params)
	return nil
}
