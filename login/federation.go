package login

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"
	"unicode"

	"github.com/go-chi/chi/v5"
	"github.com/google/uuid"

	"github.com/gatehouse-id/gatehouse/internal/authn"
	"github.com/gatehouse-id/gatehouse/login/policy"
	"github.com/gatehouse-id/gatehouse/login/upstream"
	"github.com/gatehouse-id/gatehouse/storage"
)

// Sign-in through upstream identity providers (GitHub, OIDC issuers). The
// connectors in package upstream do the protocol; this file is the flow and
// the linking rules (docs/design.md, "Upstream sign-in"):
//
//   - a link is found by (upstream, subject) only, never by email;
//   - an unknown identity creates an account only when the upstream
//     verified its email, no account has that email, and sign-up through
//     upstreams is on;
//   - an unknown identity whose verified email belongs to an account is
//     linked only after that account's password sign-in (or from the account
//     page while signed in), never silently;
//   - an unverified upstream email neither creates nor links anything.
//
// The leg to the upstream is bound to this browser by a sealed cookie
// holding state, nonce and PKCE verifier (single use, upstreamLegTTL), and to
// the pending authorization request by its handle inside that cookie.

const (
	// UpstreamCookie holds the sealed leg while the user is at the
	// upstream; PendingLinkCookie the identity waiting for a password
	// sign-in to be linked.
	UpstreamCookie    = "gatehouse_upstream"
	PendingLinkCookie = "gatehouse_link"

	upstreamLegTTL  = 10 * time.Minute
	pendingLinkTTL  = 10 * time.Minute
	sealLeg         = "upstream-leg"
	sealPendingLink = "pending-link"
	// maxCookieBytes keeps a sealed cookie under browsers' 4 KiB limit.
	maxCookieBytes = 3900
)

// upstreamLeg is the sealed content of UpstreamCookie.
type upstreamLeg struct {
	Upstream string `json:"u"`
	State    string `json:"s"`
	Nonce    string `json:"n"`
	Verifier string `json:"v"`
	// Where to continue: a pending authorization request, or a page.
	AuthRequestID string `json:"a,omitempty"`
	Return        string `json:"r,omitempty"`
	// LinkUser is set when a signed-in user connects an upstream from the
	// account page: the identity is linked to this user, nobody signs in.
	LinkUser string `json:"l,omitempty"`
	// MaxAge and Started: see upstream.Leg.
	MaxAge  *int64 `json:"m,omitempty"`
	Started int64  `json:"t"`
}

func (l upstreamLeg) connectorLeg() upstream.Leg {
	return upstream.Leg{State: l.State, Nonce: l.Nonce, Verifier: l.Verifier, MaxAge: l.MaxAge, Started: time.Unix(l.Started, 0)}
}

// pendingLink is the sealed content of PendingLinkCookie.
type pendingLink struct {
	Upstream string `json:"u"`
	Subject  string `json:"s"`
	Email    string `json:"e"`
	UserID   string `json:"uid"`
}

// upstreamButton is a "Continue with …" link on the sign-in and
// registration pages, or a "Connect …" link on the account page.
type upstreamButton struct {
	ID   string
	Name string
	Href string
}

// linkedView is a linked identity on the account page.
type linkedView struct {
	Upstream string
	Name     string
	Email    string
	LastUsed string
}

// upstreamButtons are the links that start an upstream sign-in continuing n.
// They are plain GET links: a form would need every upstream's origin in
// form-action (CSP applies it to the redirect), and starting a leg changes
// nothing a forged request could abuse — the callback needs this browser's
// leg cookie.
func (h *Handler) upstreamButtons(n next) []upstreamButton {
	var out []upstreamButton
	for _, c := range h.cfg.Upstreams.List() {
		cfg := c.Config()
		out = append(out, upstreamButton{ID: cfg.ID, Name: cfg.Name, Href: n.url("/upstream/" + cfg.ID + "/start")})
	}
	return out
}

func (h *Handler) upstreamCallbackURL(id string) string {
	return h.issuer + "/upstream/" + id + "/callback"
}

// getUpstreamStart sends the browser to the upstream. With mode=link (from
// the account page, carrying the CSRF token since it acts for a signed-in
// user) the identity will be connected to the current account.
func (h *Handler) getUpstreamStart(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	conn := h.cfg.Upstreams.Get(chi.URLParam(r, "upstream"))
	if conn == nil {
		h.renderError(w, r, http.StatusNotFound, "Page not found", "There is nothing at this address.", "")
		return
	}
	cfg := conn.Config()
	q := r.URL.Query()
	leg := upstreamLeg{
		Upstream: cfg.ID,
		State:    randomToken(32),
		Nonce:    randomToken(32),
		Verifier: randomToken(48),
	}
	var fc *flowContext
	if q.Get("mode") == "link" {
		if !h.validCSRFQuery(r) {
			h.renderError(w, r, http.StatusForbidden, "Request refused",
				"This link was not opened from your account page. Go to your account page and try again.", defaultReturn)
			return
		}
		sess, user, ok := h.accountUser(w, r)
		if !ok {
			return
		}
		if !h.mayConnect(w, r, user, cfg) {
			return
		}
		// A new way in is a security change: like adding a factor it
		// needs a recent authentication, so a stolen session cannot add
		// a door that outlives a password change.
		if !h.needRecent(w, r, sess, "/account") {
			return
		}
		leg.LinkUser, leg.Return = user.ID, defaultReturn
	} else {
		var ok bool
		if fc, ok = h.loadFlow(w, r, q, true); !ok {
			return
		}
		leg.AuthRequestID, leg.Return = fc.next.AuthRequestID, fc.next.Return
		if ar := fc.ar; ar != nil {
			// The app wants a fresh or recent sign-in: the upstream must
			// not satisfy it with a session it already had.
			if slices.Contains(ar.Prompt, "login") {
				zero := int64(0)
				leg.MaxAge = &zero
			} else if ar.MaxAge != nil {
				leg.MaxAge = ar.MaxAge
			}
		}
	}
	leg.Started = h.now().Unix()
	target, err := conn.AuthCodeURL(ctx, leg.connectorLeg(), h.upstreamCallbackURL(cfg.ID))
	if err != nil {
		h.log.WarnContext(ctx, "upstream sign-in could not start", "upstream", cfg.ID, "err", err)
		// Anyone can ask for a start: like a refused callback, a failed
		// one is audited within the per-IP sign-in limit only.
		ok, _ := h.allow(ctx, limitKey{h.rules.signInIP, h.clientIP(r)})
		h.upstreamFailed(w, r, fc, leg, cfg, err, ok)
		return
	}
	sealed, err := h.sealer.seal(sealLeg, leg, h.now().Add(upstreamLegTTL))
	if err != nil {
		h.internalError(w, r, "seal upstream leg", err)
		return
	}
	if len(sealed) > maxCookieBytes {
		// Only an authorization request near every parameter cap gets here.
		h.log.WarnContext(ctx, "upstream sign-in refused: the pending request is too large for a cookie", "upstream", cfg.ID, "bytes", len(sealed))
		h.renderError(w, r, http.StatusBadRequest, "Cannot continue with "+cfg.Name,
			"This sign-in request is too large to continue with "+cfg.Name+". Sign in with your password, or ask the application to send a shorter request.", "")
		return
	}
	h.setCookie(w, UpstreamCookie, sealed, upstreamLegTTL)
	http.Redirect(w, r, target, http.StatusSeeOther)
}

// linkTokenPurpose keys the token of the account page's "Connect" links:
// not the form token, which must not appear in URLs.
const linkTokenPurpose = "upstream-link"

// validCSRFQuery checks a GET link's csrf parameter like checkForm checks
// a form, and refuses a cross-site request outright.
func (h *Handler) validCSRFQuery(r *http.Request) bool {
	if s := r.Header.Get("Sec-Fetch-Site"); s != "" && s != "same-origin" && s != "none" {
		return false
	}
	v, ok := h.validCSRFCookie(r)
	if !ok {
		return false
	}
	return subtle.ConstantTimeCompare([]byte(r.URL.Query().Get(csrfField)), []byte(h.mac(linkTokenPurpose, v))) == 1
}

// setCookie sets a short-lived, HttpOnly, SameSite=Lax cookie for path /
// (Lax: the upstream's redirect back is a cross-site top-level GET, which
// Lax cookies accompany).
func (h *Handler) setCookie(w http.ResponseWriter, name, value string, ttl time.Duration) {
	c := &http.Cookie{
		Name: h.cookieName(name), Value: value, Path: "/", HttpOnly: true,
		Secure: h.secure, SameSite: http.SameSiteLaxMode, MaxAge: int(ttl / time.Second),
	}
	if value == "" {
		c.MaxAge = -1
	}
	http.SetCookie(w, c)
}

// getUpstreamCallback is where the upstream sends the browser back.
func (h *Handler) getUpstreamCallback(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	id := chi.URLParam(r, "upstream")
	conn := h.cfg.Upstreams.Get(id)
	if conn == nil {
		h.renderError(w, r, http.StatusNotFound, "Page not found", "There is nothing at this address.", "")
		return
	}
	cfg := conn.Config()
	q := r.URL.Query()

	// 1. The leg this browser started: single use, whatever happens next.
	var leg upstreamLeg
	c, cerr := r.Cookie(h.cookieName(UpstreamCookie))
	h.setCookie(w, UpstreamCookie, "", 0)
	if cerr != nil || h.sealer.open(sealLeg, c.Value, h.now(), &leg) != nil {
		h.log.InfoContext(ctx, "upstream callback without a valid leg cookie (expired, replayed or another browser)", "upstream", id)
		h.upstreamRefused(r, id, "no_leg")
		h.renderError(w, r, http.StatusBadRequest, "Sign-in expired",
			"This sign-in with "+cfg.Name+" has expired or was started in another browser. Go back to the application and try again.", "")
		return
	}
	if leg.Upstream != id {
		// A response meant for one upstream arriving at another's
		// callback: the mix-up attack (RFC 9207 §1). Never exchange it.
		h.log.WarnContext(ctx, "upstream callback for another upstream refused (mix-up)", "upstream", id, "started_with", leg.Upstream)
		h.upstreamRefused(r, id, "mix_up")
		h.renderError(w, r, http.StatusBadRequest, "Sign-in refused",
			"This answer did not come from the provider you chose. Go back to the application and try again.", "")
		return
	}
	if subtle.ConstantTimeCompare([]byte(q.Get("state")), []byte(leg.State)) != 1 {
		h.log.WarnContext(ctx, "upstream callback with a wrong state refused", "upstream", id)
		h.upstreamRefused(r, id, "state_mismatch")
		h.renderError(w, r, http.StatusBadRequest, "Sign-in refused",
			"This answer does not belong to the sign-in started in this browser. Go back to the application and try again.", "")
		return
	}
	// The cookie is cleared above, but a copy of it could be replayed: the
	// store remembers every state used until the leg could have expired.
	sum := sha256.Sum256([]byte(leg.State))
	switch err := h.store.MarkUsed(ctx, "upstream-state:"+hex.EncodeToString(sum[:]), h.now().Add(upstreamLegTTL), h.now()); {
	case errors.Is(err, storage.ErrConflict):
		h.log.WarnContext(ctx, "upstream callback replayed", "upstream", id)
		h.upstreamRefused(r, id, "state_replayed")
		h.renderError(w, r, http.StatusBadRequest, "Sign-in expired",
			"This sign-in with "+cfg.Name+" was already used. Go back to the application and try again.", "")
		return
	case err != nil:
		h.internalError(w, r, "upstream callback: mark state used", err, "upstream", id)
		return
	}

	// 2. Where the user is headed, checked before anything is asked of the
	// upstream: the pending request (started in this browser), or the
	// account of the signed-in user who is connecting.
	var fc *flowContext
	var linkUser *storage.User
	switch {
	case leg.LinkUser != "":
		_, user, ok := h.accountUser(w, r)
		if !ok {
			return
		}
		if user.ID != leg.LinkUser {
			h.renderError(w, r, http.StatusConflict, "Please try again",
				"You signed in or out in another window since you chose to connect "+cfg.Name+". Try again from your account page.", defaultReturn)
			return
		}
		linkUser = user
	default:
		v := url.Values{}
		if leg.AuthRequestID != "" {
			v.Set("authRequestID", leg.AuthRequestID)
		} else {
			v.Set("return", leg.Return)
		}
		var ok bool
		if fc, ok = h.loadFlow(w, r, v, true); !ok {
			return
		}
		// Lockout does not apply (no password is checked); the per-IP
		// sign-in limit does.
		if ok, wait := h.allow(ctx, limitKey{h.rules.signInIP, h.clientIP(r)}); !ok {
			h.metrics.upstreamSignIn(id, outcomeRateLimited)
			status, msg := tooMany(w, wait)
			h.renderLogin(w, r, status, fc, "", msg)
			return
		}
	}

	// 3. The upstream's answer.
	ident, err := conn.Exchange(ctx, leg.connectorLeg(), h.upstreamCallbackURL(id), q)
	if err != nil {
		h.log.WarnContext(ctx, "upstream sign-in failed", "upstream", id, "kind", upstream.KindOf(err).String(), "err", err)
		h.upstreamFailed(w, r, fc, leg, cfg, err, true)
		return
	}
	if linkUser != nil {
		h.connectIdentity(w, r, linkUser, cfg, ident)
		return
	}
	h.signInWithIdentity(w, r, fc, cfg, ident)
}

// upstreamRefused counts and audits a callback refused before the
// upstream was asked anything. Such a refusal is a failed sign-in: it
// spends the per-IP sign-in limit like a wrong password, and past it is not
// audited, so one address cannot write to the trail as fast as it sends
// requests, nor spend the budget for anonymous events that other addresses'
// failures need.
func (h *Handler) upstreamRefused(r *http.Request, id, why string) {
	h.metrics.upstreamSignIn(id, outcomeRefused)
	if ok, _ := h.allow(r.Context(), limitKey{h.rules.signInIP, h.clientIP(r)}); !ok {
		return
	}
	h.audit(r, storage.AuditEvent{Action: storage.AuditSignInFailed, Actor: storage.ActorAnonymous,
		Detail: map[string]string{"reason": why, "upstream": id}})
}

// upstreamFailed shows why an upstream leg failed: on the sign-in page
// (the pending request kept, so another method can be chosen), or on the
// account page for a connect. The detail went to the log; the user gets the
// kind in plain words. A failure of the upstream is a 502/503, never the
// user's fault; a refusal at the upstream is 403. audit false leaves the
// failure out of the trail (past the per-IP limit).
func (h *Handler) upstreamFailed(w http.ResponseWriter, r *http.Request, fc *flowContext, leg upstreamLeg, cfg upstream.Config, err error, audit bool) {
	kind := upstream.KindOf(err)
	status, msg := http.StatusBadGateway, "Signing in with "+cfg.Name+" did not work: its answer could not be accepted. Try again, or choose another way to sign in."
	switch kind {
	case upstream.Denied:
		status, msg = http.StatusForbidden, "Signing in with "+cfg.Name+" was cancelled or not allowed there. Choose another way to sign in."
	case upstream.Unavailable:
		status, msg = http.StatusServiceUnavailable, "We could not reach "+cfg.Name+" just now. Try again in a moment, or choose another way to sign in."
		w.Header().Set("Retry-After", "5")
	case upstream.NotAllowed:
		status, msg = http.StatusForbidden, "Your "+cfg.Name+" account is not allowed to sign in here (it is not a member of an allowed organisation)."
	}
	h.metrics.upstreamSignIn(cfg.ID, "upstream_"+kind.String())
	if audit {
		h.audit(r, storage.AuditEvent{Action: storage.AuditSignInFailed, Actor: storage.ActorAnonymous, ClientID: fc.clientID(),
			Detail: map[string]string{"reason": "upstream_" + kind.String(), "upstream": cfg.ID}})
	}
	if leg.LinkUser != "" {
		h.renderAccountMessage(w, r, status, msg)
		return
	}
	h.renderLogin(w, r, status, fc, "", msg)
}

// renderAccountMessage shows the account page with an error.
func (h *Handler) renderAccountMessage(w http.ResponseWriter, r *http.Request, status int, msg string) {
	_, user, ok := h.accountUser(w, r)
	if !ok {
		return
	}
	h.renderAccount(w, r, status, user, &view{Error: msg})
}

// upstreamAMR is the session's amr for a sign-in through an upstream:
// "fed", plus what the upstream reported about its own sign-in, marked as
// such (authn.Upstream): ID tokens show those values, but they are not
// factors proved to Gatehouse and never raise the acr.
func upstreamAMR(ident *upstream.Identity) []string {
	amr := []string{authn.AMRFederated}
	for _, v := range ident.AMR {
		if v = authn.Upstream(v); !slices.Contains(amr, v) {
			amr = append(amr, v)
		}
	}
	return amr
}

// signInWithIdentity applies the linking rules to an identity the upstream
// vouched for.
func (h *Handler) signInWithIdentity(w http.ResponseWriter, r *http.Request, fc *flowContext, cfg upstream.Config, ident *upstream.Identity) {
	ctx := r.Context()
	link, err := h.store.GetLinkedIdentity(ctx, cfg.ID, ident.Subject)
	switch {
	case err == nil:
		user, err := h.store.GetUser(ctx, link.UserID)
		if errors.Is(err, storage.ErrNotFound) {
			// Deleted in between (deletion removes links too).
			h.renderLogin(w, r, http.StatusConflict, fc, "", "The account linked to this "+cfg.Name+" account no longer exists. Try again.")
			return
		}
		if err != nil {
			h.internalError(w, r, "upstream sign-in: load user", err, "user_id", link.UserID)
			return
		}
		h.upstreamSession(w, r, fc, cfg, ident, user)
		return
	case !errors.Is(err, storage.ErrNotFound):
		h.internalError(w, r, "upstream sign-in: look up link", err, "upstream", cfg.ID)
		return
	}

	// An identity seen for the first time: only a verified email may
	// create or join an account, and joining needs the password.
	email := upstreamEmail(ident.Email)
	if email == "" || !ident.EmailVerified {
		h.log.InfoContext(ctx, "upstream identity without a verified email; nothing created or linked", "upstream", cfg.ID,
			"has_email", email != "", "email_hash", h.emails.Sum(email))
		h.metrics.upstreamSignIn(cfg.ID, outcomeUnverified)
		h.audit(r, storage.AuditEvent{Action: storage.AuditSignInFailed, Actor: storage.ActorAnonymous, ClientID: fc.clientID(),
			Detail: map[string]string{"reason": "upstream_email_unverified", "upstream": cfg.ID}})
		msg := cfg.Name + " did not confirm that this email address is yours, so it cannot be used to create or join an account here. Verify your email address at " +
			cfg.Name + ", or sign in with your password and connect " + cfg.Name + " from your account page."
		if email == "" {
			msg = cfg.Name + " did not share a verified email address, so no account can be created or joined with it. Verify your email address at " +
				cfg.Name + ", or sign in with your password and connect " + cfg.Name + " from your account page."
		}
		h.renderLogin(w, r, http.StatusForbidden, fc, "", msg)
		return
	}
	existing, err := h.store.GetUserByEmail(ctx, email)
	switch {
	case err == nil:
		h.askPasswordToLink(w, r, fc, cfg, ident, existing)
		return
	case !errors.Is(err, storage.ErrNotFound):
		h.internalError(w, r, "upstream sign-in: look up email", err)
		return
	}
	if !cfg.SignupAllowed(h.cfg.UpstreamSignup) {
		h.metrics.upstreamSignIn(cfg.ID, outcomeNoAccount)
		h.audit(r, storage.AuditEvent{Action: storage.AuditSignInFailed, Actor: storage.ActorAnonymous, Subject: h.emailSubject(ctx, email),
			ClientID: fc.clientID(), Detail: map[string]string{"reason": "upstream_signup_off", "upstream": cfg.ID}})
		h.renderLogin(w, r, http.StatusForbidden, fc, "",
			"There is no account here for your "+cfg.Name+" account, and new accounts cannot be created with "+cfg.Name+
				". If you have an account, sign in with your password and connect "+cfg.Name+" from your account page.")
		return
	}

	// A new account: verified by the upstream, no password (one can be set
	// through "Forgot password"), the default role.
	now := h.now()
	name := upstreamName(ident.Name)
	user := &storage.User{
		ID: uuid.Must(uuid.NewV7()).String(), Email: email, Name: name, Role: h.cfg.DefaultRole,
		EmailVerified: true, CreatedAt: now, UpdatedAt: now,
	}
	if err := h.store.CreateUser(ctx, user); errors.Is(err, storage.ErrConflict) {
		// Registered in between: the same rule as an existing account.
		existing, err := h.store.GetUserByEmail(ctx, email)
		if err != nil {
			h.internalError(w, r, "upstream sign-in: look up email", err)
			return
		}
		h.askPasswordToLink(w, r, fc, cfg, ident, existing)
		return
	} else if err != nil {
		h.internalError(w, r, "upstream sign-in: create user", err)
		return
	}
	err = h.store.LinkIdentity(ctx, &storage.LinkedIdentity{Upstream: cfg.ID, Subject: ident.Subject, UserID: user.ID, Email: email, CreatedAt: now})
	if errors.Is(err, storage.ErrConflict) {
		// The same identity's other callback (another tab) won the race
		// and linked its own new account: use that one, drop ours.
		if derr := h.store.DeleteUser(ctx, user.ID); derr != nil {
			h.log.WarnContext(ctx, "remove account that lost a concurrent upstream sign-up", "user_id", user.ID, "err", derr)
		}
		h.signInWithIdentity(w, r, fc, cfg, ident)
		return
	}
	if err != nil {
		if derr := h.store.DeleteUser(ctx, user.ID); derr != nil {
			h.log.WarnContext(ctx, "remove account whose link failed", "user_id", user.ID, "err", derr)
		}
		h.internalError(w, r, "upstream sign-in: link identity", err, "upstream", cfg.ID)
		return
	}
	h.log.InfoContext(ctx, "account created through an upstream", "user_id", user.ID, "upstream", cfg.ID)
	h.audit(r, storage.AuditEvent{Action: storage.AuditRegistered, Actor: user.ID, Subject: user.ID, ClientID: fc.clientID(),
		Detail: map[string]string{"upstream": cfg.ID}})
	h.audit(r, storage.AuditEvent{Action: storage.AuditIdentityLinked, Actor: user.ID, Subject: user.ID,
		Detail: map[string]string{"upstream": cfg.ID, "how": "sign_up"}})
	h.metrics.registered()
	h.upstreamSession(w, r, fc, cfg, ident, user)
}

// upstreamSession signs user in through cfg and continues to the app.
func (h *Handler) upstreamSession(w http.ResponseWriter, r *http.Request, fc *flowContext, cfg upstream.Config, ident *upstream.Identity, user *storage.User) {
	ctx := r.Context()
	// Gatehouse's own record decides, as for a password sign-in.
	if h.refuseDisabled(w, r, fc, user, user.Email, map[string]string{"upstream": cfg.ID}, func() { h.metrics.upstreamSignIn(cfg.ID, outcomeDisabled) }) {
		return
	}
	if h.cfg.RequireVerifiedEmail && !user.EmailVerified {
		h.metrics.upstreamSignIn(cfg.ID, outcomeUnverified)
		h.audit(r, storage.AuditEvent{Action: storage.AuditSignInFailed, Actor: user.ID, Subject: user.ID, ClientID: fc.clientID(),
			Detail: map[string]string{"reason": "email_not_verified", "upstream": cfg.ID}})
		h.renderLogin(w, r, http.StatusForbidden, fc, user.Email, msgUnverified,
			linkView{Href: fc.next.url("/verify-email/resend"), Text: "Send a new verification link"})
		return
	}
	if err := h.store.TouchLinkedIdentity(ctx, cfg.ID, ident.Subject, h.now()); err != nil {
		h.log.WarnContext(ctx, "touch linked identity", "upstream", cfg.ID, "err", err)
	}
	sess, err := h.startSession(ctx, w, r, user, upstreamAMR(ident), cfg.ID)
	if err != nil {
		h.internalError(w, r, "upstream sign-in: create session", err, "user_id", user.ID)
		return
	}
	h.metrics.upstreamSignIn(cfg.ID, outcomeSuccess)
	h.log.InfoContext(ctx, "signed in", "user_id", user.ID, "upstream", cfg.ID, "client_id", fc.clientID(), "session_id", sess.ID)
	h.audit(r, storage.AuditEvent{Action: storage.AuditSignIn, Actor: user.ID, Subject: user.ID, ClientID: fc.clientID(),
		Detail: map[string]string{"session_id": sess.ID, "upstream": cfg.ID}})
	h.finishSignIn(w, r, fc, sess, user)
}

// askPasswordToLink answers an unknown identity whose verified email is an
// existing account's: nothing is linked now. The identity waits, sealed in
// this browser, for a password sign-in to that account (postLogin).
func (h *Handler) askPasswordToLink(w http.ResponseWriter, r *http.Request, fc *flowContext, cfg upstream.Config, ident *upstream.Identity, existing *storage.User) {
	ctx := r.Context()
	sealed, err := h.sealer.seal(sealPendingLink, pendingLink{Upstream: cfg.ID, Subject: ident.Subject, Email: existing.Email, UserID: existing.ID},
		h.now().Add(pendingLinkTTL))
	if err != nil {
		h.internalError(w, r, "seal pending link", err)
		return
	}
	h.setCookie(w, PendingLinkCookie, sealed, pendingLinkTTL)
	h.metrics.upstreamSignIn(cfg.ID, outcomeLinkPending)
	h.log.InfoContext(ctx, "upstream identity matches an existing account by email; asking for the password before linking",
		"upstream", cfg.ID, "user_id", existing.ID)
	h.audit(r, storage.AuditEvent{Action: storage.AuditSignInFailed, Actor: storage.ActorAnonymous, Subject: existing.ID, ClientID: fc.clientID(),
		Detail: map[string]string{"reason": "upstream_link_needs_password", "upstream": cfg.ID}})
	h.renderLogin(w, r, http.StatusOK, fc, existing.Email,
		"An account with this email already exists — sign in with your password to link "+cfg.Name+".")
}

// linkAfterPassword links the identity waiting in this browser's
// PendingLinkCookie once user proved the password of the account it was
// found for, in sess. Called after every successful password sign-in, and
// after the second step.
func (h *Handler) linkAfterPassword(w http.ResponseWriter, r *http.Request, sess *storage.Session, user *storage.User) {
	ctx := r.Context()
	c, err := r.Cookie(h.cookieName(PendingLinkCookie))
	if err != nil {
		return
	}
	var pl pendingLink
	if h.sealer.open(sealPendingLink, c.Value, h.now(), &pl) != nil {
		h.setCookie(w, PendingLinkCookie, "", 0)
		return
	}
	if pl.UserID != user.ID {
		// Signed in to another account than the one the upstream's email
		// matched: that is not the consent the message asked for.
		h.setCookie(w, PendingLinkCookie, "", 0)
		h.log.InfoContext(ctx, "pending upstream link dropped: signed in to another account", "upstream", pl.Upstream, "user_id", user.ID)
		return
	}
	// A link is a new way in, like a factor: for a user whose sign-in
	// needs a second step, the password alone does not add one (whoever
	// has only the password would leave a door that outlives a password
	// change). The identity keeps waiting in its cookie until the second
	// step is done in this session.
	if short, err := h.secondStepMissing(ctx, sess, user); err != nil || short {
		if err != nil {
			h.log.ErrorContext(ctx, "pending upstream link: load second factors", "user_id", user.ID, "err", err)
		}
		return
	}
	h.setCookie(w, PendingLinkCookie, "", 0)
	if ok, err := h.linkIdentity(ctx, r, user, pl.Upstream, pl.Subject, pl.Email, "password"); ok && err == nil {
		h.mailer.FactorAdded(ctx, user.Email, user.Name, "a connection to "+h.cfg.Upstreams.Name(pl.Upstream)+" (you can now sign in with it)")
	}
}

// linkIdentity stores a link and audits it; false when the identity is linked to
// another account already.
func (h *Handler) linkIdentity(ctx context.Context, r *http.Request, user *storage.User, upstreamID, subject, email, how string) (ok bool, err error) {
	err = h.store.LinkIdentity(ctx, &storage.LinkedIdentity{Upstream: upstreamID, Subject: subject, UserID: user.ID, Email: email, CreatedAt: h.now()})
	if errors.Is(err, storage.ErrConflict) {
		prev, gerr := h.store.GetLinkedIdentity(ctx, upstreamID, subject)
		if gerr == nil && prev.UserID == user.ID {
			return true, nil // already linked to this account
		}
		h.log.InfoContext(ctx, "upstream identity already linked to another account", "upstream", upstreamID, "user_id", user.ID)
		return false, nil
	}
	if err != nil {
		h.log.ErrorContext(ctx, "link upstream identity", "upstream", upstreamID, "user_id", user.ID, "err", err)
		return false, err
	}
	h.log.InfoContext(ctx, "upstream identity linked", "upstream", upstreamID, "user_id", user.ID, "how", how)
	h.audit(r, storage.AuditEvent{Action: storage.AuditIdentityLinked, Actor: user.ID, Subject: user.ID,
		Detail: map[string]string{"upstream": upstreamID, "how": how}})
	return true, nil
}

// connectIdentity links ident to the signed-in user (the account page's
// "Connect …"): being signed in is the proof of owning the account, the
// upstream's sign-in the proof of owning the identity. Email plays no part.
func (h *Handler) connectIdentity(w http.ResponseWriter, r *http.Request, user *storage.User, cfg upstream.Config, ident *upstream.Identity) {
	if !h.mayConnect(w, r, user, cfg) {
		return
	}
	ok, err := h.linkIdentity(r.Context(), r, user, cfg.ID, ident.Subject, NormalizeEmail(ident.Email), "account_page")
	if err != nil {
		h.internalError(w, r, "connect upstream", err)
		return
	}
	if !ok {
		h.renderAccount(w, r, http.StatusConflict, user, &view{Error: "This " + cfg.Name + " account is already connected to another account here."})
		return
	}
	h.mailer.FactorAdded(r.Context(), user.Email, user.Name, "a connection to "+cfg.Name+" (you can now sign in with it)")
	http.Redirect(w, r, "/account?notice=connected", http.StatusSeeOther)
}

// mayConnect refuses to connect an upstream to an account whose address
// nobody has proven (answering 403 on the account page): anyone can register
// someone else's address, and a link made then would outlive the owner's
// claiming the account with a password reset — the "trojan identifier"
// pre-account takeover. The reset ends sessions and refresh tokens, not links.
func (h *Handler) mayConnect(w http.ResponseWriter, r *http.Request, user *storage.User, cfg upstream.Config) bool {
	if user.EmailVerified {
		return true
	}
	h.log.InfoContext(r.Context(), "connect refused: email not verified", "upstream", cfg.ID, "user_id", user.ID)
	h.renderAccount(w, r, http.StatusForbidden, user, &view{Error: "Verify your email address before you connect " + cfg.Name +
		": open the link we sent you, or send a new one."})
	return false
}

// postUnlink disconnects an upstream from the signed-in user's account,
// unless it is the only way left to sign in.
func (h *Handler) postUnlink(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	_, user, ok := h.accountUser(w, r)
	if !ok {
		return
	}
	if ok, wait := h.allow(ctx, limitKey{h.rules.accountUser, user.ID}); !ok {
		status, msg := tooMany(w, wait)
		h.renderAccount(w, r, status, user, &view{Error: msg})
		return
	}
	id := r.PostForm.Get("upstream")
	links, err := h.store.ListLinkedIdentities(ctx, user.ID)
	if err != nil {
		h.internalError(w, r, "list linked identities", err)
		return
	}
	if !slices.ContainsFunc(links, func(l storage.LinkedIdentity) bool { return l.Upstream == id }) {
		http.Redirect(w, r, "/account", http.StatusSeeOther)
		return
	}
	// Only a password or a configured upstream is a way to sign in: a link
	// to an upstream removed from the configuration does not count, and
	// removing it is always allowed.
	guarded := user.PasswordHash == "" && h.cfg.Upstreams.Get(id) != nil
	if guarded && h.signInLinks(links, id) == 0 {
		h.renderAccount(w, r, http.StatusConflict, user, lastMethod(h.cfg.Upstreams.Name(id)))
		return
	}
	if err := h.store.UnlinkIdentity(ctx, user.ID, id); err != nil && !errors.Is(err, storage.ErrNotFound) {
		h.internalError(w, r, "unlink identity", err)
		return
	}
	if guarded {
		// Another disconnect (another tab) may have read the links before
		// this one removed its own: if none is left now, put this one back.
		// Whichever removal comes last sees the empty list, so at least one
		// link always stays.
		rest, err := h.store.ListLinkedIdentities(ctx, user.ID)
		if err != nil {
			h.internalError(w, r, "list linked identities", err)
			return
		}
		if h.signInLinks(rest, "") == 0 {
			for _, l := range links {
				if l.Upstream != id {
					continue
				}
				if err := h.store.LinkIdentity(ctx, &l); err != nil && !errors.Is(err, storage.ErrConflict) {
					h.internalError(w, r, "restore linked identity", err, "upstream", id)
					return
				}
			}
			h.renderAccount(w, r, http.StatusConflict, user, lastMethod(h.cfg.Upstreams.Name(id)))
			return
		}
	}
	h.log.InfoContext(ctx, "upstream identity unlinked", "upstream", id, "user_id", user.ID)
	h.audit(r, storage.AuditEvent{Action: storage.AuditIdentityUnlinked, Actor: user.ID, Subject: user.ID,
		Detail: map[string]string{"upstream": id}})
	h.mailer.FactorRemoved(ctx, user.Email, user.Name, "the connection to "+h.cfg.Upstreams.Name(id))
	http.Redirect(w, r, "/account?notice=disconnected", http.StatusSeeOther)
}

// signInLinks counts the links to configured upstreams, except those to
// upstream except.
func (h *Handler) signInLinks(links []storage.LinkedIdentity, except string) int {
	n := 0
	for _, l := range links {
		if l.Upstream != except && h.cfg.Upstreams.Get(l.Upstream) != nil {
			n++
		}
	}
	return n
}

// lastMethod is the refusal to disconnect an account's only way in.
func lastMethod(name string) *view {
	return &view{Error: "You cannot disconnect " + name +
		": it is the only way you can sign in. Set a password first (use “Forgot your password?” on the sign-in page), or connect another provider."}
}

// accountUpstreams fills the account page's sign-in methods: the linked
// identities and "Connect" links for the upstreams not linked yet.
func (h *Handler) accountUpstreams(ctx context.Context, user *storage.User, linkToken string, v *view) error {
	links, err := h.store.ListLinkedIdentities(ctx, user.ID)
	if err != nil {
		return err
	}
	linked := map[string]bool{}
	for _, l := range links {
		lv := linkedView{Upstream: l.Upstream, Name: h.cfg.Upstreams.Name(l.Upstream), Email: l.Email, LastUsed: "never"}
		if !l.LastUsedAt.IsZero() {
			lv.LastUsed = l.LastUsedAt.UTC().Format(timeFormat)
		}
		v.Linked = append(v.Linked, lv)
		linked[l.Upstream] = true
	}
	for _, c := range h.cfg.Upstreams.List() {
		cfg := c.Config()
		if linked[cfg.ID] {
			continue
		}
		q := url.Values{"mode": {"link"}, csrfField: {linkToken}}
		v.Connect = append(v.Connect, upstreamButton{ID: cfg.ID, Name: cfg.Name, Href: "/upstream/" + cfg.ID + "/start?" + q.Encode()})
	}
	v.HasPassword = user.PasswordHash != ""
	return nil
}

// upstreamEmail is the address an upstream reported as an account here
// would have it, or "" when an account cannot have it: not a valid address,
// or one that lower-casing changes beyond ASCII A–Z. Unicode case mapping
// folds some letters onto ASCII ("İ" → "i", the Kelvin sign → "k") while
// IDNA and mail servers do not, so the upstream verified another address
// than the one we would store (alice@İnbox.example is not
// alice@inbox.example, and its domain can be the attacker's).
func upstreamEmail(raw string) string {
	raw = strings.TrimSpace(raw)
	email := NormalizeEmail(raw)
	if email == "" || policy.CheckEmail(email) != "" {
		return ""
	}
	ascii := strings.Map(func(r rune) rune {
		if 'A' <= r && r <= 'Z' {
			return r + ('a' - 'A')
		}
		return r
	}, raw)
	if ascii != email {
		return ""
	}
	return email
}

// upstreamName makes an upstream's display name fit an account's name:
// valid UTF-8, no control characters, white space folded, at most
// policy.MaxNameLength characters.
func upstreamName(s string) string {
	s = strings.ToValidUTF8(s, "")
	s = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return -1
		}
		return r
	}, s)
	s = policy.NormalizeName(s)
	if r := []rune(s); len(r) > policy.MaxNameLength {
		s = strings.TrimSpace(string(r[:policy.MaxNameLength]))
	}
	return s
}
