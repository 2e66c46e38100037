package login

import (
	"context"
	"crypto/hmac"
	"errors"
	"maps"
	"net/http"
	"slices"
	"time"

	"github.com/gatehouse-id/gatehouse/login/password"
	"github.com/gatehouse-id/gatehouse/storage"
)

// User-facing messages (docs/design.md: the wording of the apps Gatehouse replaces).
const (
	msgInvalidCredentials = "Invalid email or password."
	msgMissingCredentials = "Enter your email address and password."
	msgRequestGone        = "This sign-in request has expired or is no longer valid. Go back to the application and start again."
	msgOtherBrowser       = "This sign-in was started in another browser or app. Go back to the application and sign in from here."
	msgRequestMissing     = "This sign-in link is incomplete. Go back to the application and start again."
	msgBusy               = "We are handling a lot of sign-ins right now. Please try again in a moment."
	// busyRetryAfter is the Retry-After of a refusal because the hasher is
	// busy (password.ErrBusy): its queue holds at most its max wait (3 s by
	// default) of work, so in 5 s it has room again.
	busyRetryAfter = "5"
	msgUnverified  = "Please verify your email address before signing in."
	// msgDisabled is shown only after the credential was proved (see
	// refuseDisabled): "disabled", not why, and where to turn.
	msgDisabled = "This account has been disabled. Please contact your administrator."
)

// maxEmailInput is the longest submitted address worth looking at.
const maxEmailInput = 320

const amrPassword = "pwd"

// maxHandle bounds the authRequestID a page accepts: the sealed request
// op puts in the sign-in URL (its parameters are capped).
const maxHandle = 32 << 10

// loadAuthRequest opens the pending auth request that handle carries. It
// renders the friendly 400 page and returns false when handle is missing,
// invalid or expired.
func (h *Handler) loadAuthRequest(w http.ResponseWriter, r *http.Request, handle string) (*storage.AuthRequest, *storage.Client, bool) {
	ctx := r.Context()
	if handle == "" {
		h.renderError(w, r, http.StatusBadRequest, "Sign-in link incomplete", msgRequestMissing, "")
		return nil, nil, false
	}
	if len(handle) > maxHandle {
		h.renderError(w, r, http.StatusBadRequest, "Sign-in request expired", msgRequestGone, "")
		return nil, nil, false
	}
	ar, err := h.flow.PendingRequest(ctx, handle)
	if errors.Is(err, storage.ErrNotFound) {
		h.renderError(w, r, http.StatusBadRequest, "Sign-in request expired", msgRequestGone, "")
		return nil, nil, false
	}
	if err != nil {
		h.internalError(w, r, "open auth request", err)
		return nil, nil, false
	}
	if !h.flow.StartedHere(r, ar.ID) {
		h.renderError(w, r, http.StatusBadRequest, "Sign-in started elsewhere", msgOtherBrowser, "")
		return nil, nil, false
	}
	client, err := h.store.GetClient(ctx, ar.ClientID)
	if errors.Is(err, storage.ErrNotFound) {
		h.renderError(w, r, http.StatusBadRequest, "Sign-in request expired", msgRequestGone, "")
		return nil, nil, false
	}
	if err != nil {
		h.internalError(w, r, "load client", err, "client_id", ar.ClientID)
		return nil, nil, false
	}
	return ar, client, true
}

// needsLogin decides whether the browser's session (nil if none) is good
// enough for ar, or the user must enter a password.
func (h *Handler) needsLogin(ar *storage.AuthRequest, sess *storage.Session) bool {
	switch {
	case sess == nil:
		return true
	case slices.Contains(ar.Prompt, "login"):
		return true
	case ar.MaxAge != nil && (*ar.MaxAge <= 0 || h.now().Sub(sess.AuthTime) > time.Duration(*ar.MaxAge)*time.Second):
		// max_age=0 means "authenticate now", like prompt=login (OIDC Core 3.1.2.1).
		return true
	case ar.HintSubject != "" && ar.HintSubject != sess.UserID:
		return true
	}
	return false
}

// getLogin is where the OP sends the browser with a new auth request
// (?authRequestID=…), and where a plain sign-in to a page of this UI starts
// (?return=/account).
func (h *Handler) getLogin(w http.ResponseWriter, r *http.Request) {
	fc, ok := h.loadFlow(w, r, r.URL.Query(), false)
	if !ok {
		return
	}
	sess, user, err := h.currentSession(r.Context(), r)
	if err != nil {
		h.internalError(w, r, "load session", err)
		return
	}
	if fc.ar == nil {
		if sess != nil {
			http.Redirect(w, r, fc.next.Return, http.StatusSeeOther)
			return
		}
		h.renderLogin(w, r, http.StatusOK, fc, "", "")
		return
	}
	ar := fc.ar
	if h.needsLogin(ar, sess) {
		if slices.Contains(ar.Prompt, "none") {
			h.flow.Fail(w, r, ar, "login_required", "The user is not signed in.")
			return
		}
		email := ar.LoginHint
		if len(email) > 320 {
			email = ""
		}
		h.renderLogin(w, r, http.StatusOK, fc, NormalizeEmail(email), "")
		return
	}
	h.consentStep(w, r, fc, sess, user)
}

func (h *Handler) renderLogin(w http.ResponseWriter, r *http.Request, status int, fc *flowContext, email, errMsg string, links ...linkView) {
	v := &view{
		Title:      "Sign in",
		Lead:       "to your " + h.cfg.ProductName + " account",
		Email:      email,
		Error:      errMsg,
		ErrorLinks: links,
	}
	if fc.ar != nil {
		h.allowFormAction(w, fc.ar.RedirectURI)
		v.ClientName = clientName(fc.client)
	}
	h.withNext(v, fc.next)
	v.Upstreams = h.upstreamButtons(fc.next)
	v.CSRF = h.csrfToken(w, r)
	h.render(w, r, status, "login", v)
}

func clientName(c *storage.Client) string {
	if c.Name != "" {
		return c.Name
	}
	return c.ID
}

// postLogin checks the email and password. Unknown email and wrong password
// give the same answer, in the same time; so do the rate limits and the
// lockout, which count the submitted address whether or not it has an
// account.
func (h *Handler) postLogin(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	fc, ok := h.loadFlow(w, r, r.PostForm, false)
	if !ok {
		return
	}
	email := NormalizeEmail(r.PostForm.Get("email"))
	pw := r.PostForm.Get("password")
	if email == "" || pw == "" {
		h.renderLogin(w, r, http.StatusBadRequest, fc, email, msgMissingCredentials)
		return
	}
	if len(email) > maxEmailInput {
		// No account can have such an address; nothing to count or check.
		h.renderLogin(w, r, http.StatusBadRequest, fc, "", msgInvalidCredentials)
		return
	}

	// Rate limits per client IP and per submitted address, the lockout of
	// the address, the password: the one credential sequence.
	var user *storage.User
	res, err := h.checkCredential(w, r, credentialCheck{
		limits:   []limitKey{{h.rules.signInIP, h.clientIP(r)}, {h.rules.signInEmail, email}},
		lockKey:  email,
		password: true,
		verify: func(ctx context.Context) (bool, error) {
			u, err := h.checkPassword(ctx, email, pw)
			user = u
			return u != nil, err
		},
		actor:    storage.ActorAnonymous,
		subject:  func() string { return h.emailSubject(ctx, email) }, // the same look-up whether or not the address has an account
		clientID: fc.clientID(),
		onFail: func(o checkOutcome, res checkResult) {
			switch o {
			case checkLimited:
				h.metrics.signIn(outcomeRateLimited)
			case checkLocked:
				h.metrics.signIn(outcomeLocked)
				h.logSignInRefused(ctx, r, "sign-in refused: locked", email, "locked_until", res.until)
			case checkLockedNow:
				h.metrics.signIn(outcomeInvalid)
				h.logSignInRefused(ctx, r, "sign-in failed; address locked", email, "locked_until", res.until)
			case checkFailed:
				h.metrics.signIn(outcomeInvalid)
				h.logSignInRefused(ctx, r, "sign-in failed", email)
			}
		},
	})
	if err != nil {
		if errors.Is(err, password.ErrBusy) {
			// Overload, not the user's doing: the form again, with what
			// they typed, to send once more in a moment. Nothing was
			// counted against the address (checkCredential).
			h.metrics.signIn(outcomeBusy)
			h.log.WarnContext(ctx, "sign-in refused: password hasher busy")
			w.Header().Set("Retry-After", busyRetryAfter)
			h.renderLogin(w, r, http.StatusServiceUnavailable, fc, email, msgBusy)
			return
		}
		h.internalError(w, r, "sign-in: check password", err)
		return
	}
	switch res.outcome {
	case checkLimited, checkLocked, checkLockedNow:
		h.renderLogin(w, r, res.status, fc, email, res.msg)
		return
	case checkFailed:
		h.renderLogin(w, r, http.StatusBadRequest, fc, email, msgInvalidCredentials)
		return
	}
	if h.refuseDisabled(w, r, fc, user, email, nil, func() { h.metrics.signIn(outcomeDisabled) }) {
		return
	}
	if h.cfg.RequireVerifiedEmail && !user.EmailVerified {
		h.metrics.signIn(outcomeUnverified)
		h.log.InfoContext(ctx, "sign-in refused: email not verified", "user_id", user.ID)
		h.audit(r, storage.AuditEvent{Action: storage.AuditSignInFailed, Actor: user.ID, Subject: user.ID, ClientID: fc.clientID(), Detail: reason("email_not_verified")})
		h.renderLogin(w, r, http.StatusForbidden, fc, email, msgUnverified,
			linkView{Href: fc.next.url("/verify-email/resend"), Text: "Send a new verification link"})
		return
	}

	sess, err := h.startSession(ctx, w, r, user, []string{amrPassword}, "")
	if err != nil {
		h.internalError(w, r, "sign-in: create session", err, "user_id", user.ID)
		return
	}
	clientID := ""
	if fc.ar != nil {
		clientID = fc.ar.ClientID
	}
	h.metrics.signIn(outcomeSuccess)
	h.log.InfoContext(ctx, "signed in", "user_id", user.ID, "client_id", clientID, "session_id", sess.ID)
	h.audit(r, storage.AuditEvent{Action: storage.AuditSignIn, Actor: user.ID, Subject: user.ID, ClientID: clientID, Detail: map[string]string{"session_id": sess.ID}})
	h.linkAfterPassword(w, r, sess, user)
	h.finishSignIn(w, r, fc, sess, user)
}

// refuseDisabled answers a sign-in to a disabled account and reports
// whether it did. It runs only once the credential was proved (the right
// password, a valid passkey, a linked upstream identity): a wrong password
// for a disabled account gets "Invalid email or password." in the same
// time as any other, so only someone who could have signed in learns that
// the account is disabled, which is less than signing in would have told
// them (docs/design.md, "Disabled accounts"). count records the outcome.
func (h *Handler) refuseDisabled(w http.ResponseWriter, r *http.Request, fc *flowContext, user *storage.User, email string, detail map[string]string, count func()) bool {
	if !user.Disabled() {
		return false
	}
	count()
	h.log.InfoContext(r.Context(), "sign-in refused: account disabled", "user_id", user.ID)
	d := map[string]string{"reason": "disabled"}
	maps.Copy(d, detail)
	h.audit(r, storage.AuditEvent{Action: storage.AuditSignInFailed, Actor: user.ID, Subject: user.ID, ClientID: fc.clientID(), Detail: d})
	h.renderLogin(w, r, http.StatusForbidden, fc, email, msgDisabled)
	return true
}

// checkPassword returns the user when pw is their password, nil when the
// email is unknown or the password wrong, or an error (password.ErrBusy when
// the hasher is saturated). On success it upgrades an outdated hash.
func (h *Handler) checkPassword(ctx context.Context, email, pw string) (*storage.User, error) {
	user, err := h.store.GetUserByEmail(ctx, email)
	if errors.Is(err, storage.ErrNotFound) {
		user, err = nil, nil
	}
	if err != nil {
		return nil, err
	}
	ok, err := h.verifyUserPassword(ctx, user, pw)
	if err != nil || !ok {
		return nil, err
	}
	return user, nil
}

// verifyUserPassword reports whether pw is user's password: a nil user (or
// one without a password) costs the same as a wrong password of the
// configured algorithm. On success an outdated hash is upgraded. The error is
// password.ErrBusy when the hasher is saturated; run it inside
// checkCredential, which holds the hashing slot for all of this and adds the
// floor of a failed check.
func (h *Handler) verifyUserPassword(ctx context.Context, user *storage.User, pw string) (bool, error) {
	if user == nil || user.PasswordHash == "" {
		if err := h.hasher.VerifyDummy(ctx, pw); err != nil {
			return false, err
		}
		h.log.InfoContext(ctx, "password check failed", "reason", "unknown email or no password")
		return false, nil
	}
	ok, rehash, err := h.hasher.Verify(ctx, user.PasswordHash, pw)
	if err != nil {
		if errors.Is(err, password.ErrBusy) || ctx.Err() != nil {
			return false, err
		}
		// A corrupt stored hash: the user cannot sign in with a password, and
		// the response must look like any other failure.
		h.log.ErrorContext(ctx, "stored password hash unusable", "user_id", user.ID, "err", err)
		return false, h.hasher.VerifyDummy(ctx, pw)
	}
	if !ok {
		h.log.InfoContext(ctx, "password check failed", "reason", "wrong password", "user_id", user.ID)
		return false, nil
	}
	if rehash {
		if nh, err := h.hasher.Hash(ctx, pw); err != nil {
			h.log.WarnContext(ctx, "rehash password", "user_id", user.ID, "err", err)
		} else if err := h.store.UpdateUserPassword(ctx, user.ID, nh, h.now()); err != nil {
			h.log.WarnContext(ctx, "store rehashed password", "user_id", user.ID, "err", err)
		} else {
			h.log.InfoContext(ctx, "password hash upgraded", "user_id", user.ID, "algorithm", h.hasher.Algorithm())
		}
	}
	return true, nil
}

// consentStep runs once the user is known: it asks for consent when the client
// or the request wants it, and otherwise completes the request.
func (h *Handler) consentStep(w http.ResponseWriter, r *http.Request, fc *flowContext, sess *storage.Session, user *storage.User) {
	if !h.factorsSatisfied(w, r, fc, sess, user) {
		return
	}
	ar, client := fc.ar, fc.client
	need, err := h.consentNeeded(r.Context(), ar, client, user)
	if err != nil {
		h.internalError(w, r, "load consent", err, "user_id", user.ID, "client_id", client.ID)
		return
	}
	if !need {
		h.complete(w, r, ar, sess)
		return
	}
	if slices.Contains(ar.Prompt, "none") {
		h.flow.Fail(w, r, ar, "consent_required", "The user has not granted the requested scopes.")
		return
	}
	h.allowFormAction(w, ar.RedirectURI)
	h.render(w, r, http.StatusOK, "consent", &view{
		Title:         "Allow access",
		CSRF:          h.csrfToken(w, r),
		AuthRequestID: fc.next.AuthRequestID,
		ClientName:    clientName(client),
		UserEmail:     user.Email,
		Scopes:        describeScopes(h.grantableScopes(ar.Scopes, user)),
		Binding:       h.consentBinding(ar.ID, sess, user),
	})
}

// consentNeeded reports whether the user must be asked before ar's app
// gets a code: prompt=consent, or a client that requires consent and no
// stored consent covering every requested scope.
func (h *Handler) consentNeeded(ctx context.Context, ar *storage.AuthRequest, client *storage.Client, user *storage.User) (bool, error) {
	if slices.Contains(ar.Prompt, "consent") {
		return true, nil
	}
	if !client.RequireConsent {
		return false, nil
	}
	c, err := h.store.GetConsent(ctx, user.ID, client.ID)
	switch {
	case err == nil:
		return !coversAll(c.Scopes, ar.Scopes), nil
	case errors.Is(err, storage.ErrNotFound):
		return true, nil
	default:
		return false, err
	}
}

// SilentSignIn implements op.SilentSignIn: the browser's session when it
// settles ar at once — a live session whose user needs no new sign-in for
// ar (prompt, max_age, id_token_hint), has reached the acr ar's app needs
// and has consented to what it asks — so the authorization endpoint can
// answer with the code in one request. nil sends the browser through the
// pages (getLogin), which apply the same rules (needsLogin, factorDue,
// consentNeeded) and explain what is missing.
func (h *Handler) SilentSignIn(r *http.Request, ar *storage.AuthRequest, cached *storage.Client) (*storage.Session, error) {
	ctx := r.Context()
	su, err := h.currentSignIn(ctx, r)
	if err != nil || su == nil {
		return nil, err
	}
	sess, user := su.Session, su.User
	// The client as the pages would see it: op's copy may be up to its
	// cache's age old, and a require_mfa or require_consent set a moment
	// ago (by the CLI, or on another instance) must hold here too.
	client, err := h.store.GetClient(ctx, cached.ID)
	if err != nil {
		return nil, err // a client deleted meanwhile: the pages say so
	}
	if h.needsLogin(ar, sess) {
		return nil, nil
	}
	if h.factorDueWith(su.HasSecondFactor, sess, user, client, ar) != "" {
		return nil, nil
	}
	if need, err := h.consentNeeded(ctx, ar, client, user); err != nil || need {
		return nil, err
	}
	return sess, nil
}

// consentBinding ties a consent form to the auth request and to the session and
// user it was shown to: if another sign-in happens in between (another tab),
// the form no longer applies.
func (h *Handler) consentBinding(authRequestID string, sess *storage.Session, user *storage.User) string {
	return h.mac("consent", authRequestID, sess.ID, user.ID)
}

// complete marks the auth request done for the session's user; the OP
// answers the browser with the code.
func (h *Handler) complete(w http.ResponseWriter, r *http.Request, ar *storage.AuthRequest, sess *storage.Session) {
	err := h.flow.Finish(w, r, ar, sess)
	if errors.Is(err, storage.ErrConflict) { // completed before (another tab, a replayed form)
		h.renderError(w, r, http.StatusBadRequest, "Sign-in request expired", msgRequestGone, "")
		return
	}
	if err != nil {
		h.internalError(w, r, "complete auth request", err, "auth_request_id", ar.ID)
	}
}

// postConsent records the user's answer on the consent page.
func (h *Handler) postConsent(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	handle := r.PostForm.Get("authRequestID")
	ar, client, ok := h.loadAuthRequest(w, r, handle)
	if !ok {
		return
	}
	retry := next{AuthRequestID: handle}.loginURL()
	sess, user, err := h.currentSession(ctx, r)
	if err != nil {
		h.internalError(w, r, "load session", err)
		return
	}
	if sess == nil {
		// Signed out (or expired) since the page was shown: sign in again.
		http.Redirect(w, r, retry, http.StatusSeeOther)
		return
	}
	if !hmac.Equal([]byte(r.PostForm.Get("binding")), []byte(h.consentBinding(ar.ID, sess, user))) {
		h.log.InfoContext(ctx, "consent form does not match the current session", "user_id", user.ID, "client_id", client.ID)
		h.renderError(w, r, http.StatusConflict, "Please try again",
			"You signed in or out in another window since this page was shown. Please review the request again.", retry)
		return
	}
	if h.needsLogin(ar, sess) {
		// max_age ran out (or another user signed in) while the consent
		// page was open: authenticate again before anything is granted.
		http.Redirect(w, r, retry, http.StatusSeeOther)
		return
	}
	// The consent page is shown only to a session that reached what the
	// request needs; checked again here, since the form can be replayed.
	if !h.factorsSatisfied(w, r, &flowContext{next: next{AuthRequestID: handle}, ar: ar, client: client}, sess, user) {
		return
	}
	switch r.PostForm.Get("action") {
	case "allow":
		scopes := ar.Scopes
		prev, err := h.store.GetConsent(ctx, user.ID, client.ID)
		switch {
		case err == nil:
			scopes = union(prev.Scopes, ar.Scopes)
		case errors.Is(err, storage.ErrNotFound):
		default:
			h.internalError(w, r, "load consent", err, "user_id", user.ID, "client_id", client.ID)
			return
		}
		if err := h.store.SaveConsent(ctx, &storage.Consent{UserID: user.ID, ClientID: client.ID, Scopes: scopes, GrantedAt: h.now()}); err != nil {
			h.internalError(w, r, "save consent", err, "user_id", user.ID, "client_id", client.ID)
			return
		}
		h.log.InfoContext(ctx, "consent granted", "user_id", user.ID, "client_id", client.ID, "scopes", ar.Scopes)
		h.complete(w, r, ar, sess)
	case "deny":
		h.log.InfoContext(ctx, "consent denied", "user_id", user.ID, "client_id", client.ID)
		h.flow.Fail(w, r, ar, "access_denied", "The user denied the request.")
	default:
		h.renderError(w, r, http.StatusBadRequest, "Bad request", "Choose Allow or Deny.", retry)
	}
}

// coversAll reports whether granted contains every scope in requested.
func coversAll(granted, requested []string) bool {
	for _, s := range requested {
		if !slices.Contains(granted, s) {
			return false
		}
	}
	return true
}

func union(a, b []string) []string {
	out := slices.Clone(a)
	for _, s := range b {
		if !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	return out
}

var scopeDescriptions = map[string]string{
	"openid":         "Confirm who you are",
	"profile":        "See your name and role",
	"email":          "See your email address",
	"offline_access": "Stay connected when you are not using it",
	// storage.ScopeAdmin: the admin API, as the user.
	storage.ScopeAdmin: "Administer the sign-in service as you: users, apps and keys",
}

// grantableScopes is what the consent page lists: the admin scope only for
// a user with the admin role, as nobody else is ever granted it (op).
func (h *Handler) grantableScopes(scopes []string, user *storage.User) []string {
	if user.Role == h.cfg.AdminRole {
		return scopes
	}
	return slices.DeleteFunc(slices.Clone(scopes), func(s string) bool { return s == storage.ScopeAdmin })
}

func describeScopes(scopes []string) []scopeView {
	out := make([]scopeView, 0, len(scopes))
	for _, s := range scopes {
		if d, ok := scopeDescriptions[s]; ok {
			out = append(out, scopeView{Name: s, Description: d})
		} else {
			// An application-defined scope: its name is all we know.
			out = append(out, scopeView{Name: s})
		}
	}
	return out
}
