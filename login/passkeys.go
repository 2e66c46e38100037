package login

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"strings"

	"github.com/gatehouse-id/gatehouse/internal/authn"
	"github.com/gatehouse-id/gatehouse/login/mfa"
	"github.com/gatehouse-id/gatehouse/storage"
)

// Passkeys (WebAuthn, package login/mfa over go-webauthn). Each ceremony is
// two requests made by static/webauthn.js: "begin" answers the options as
// JSON and leaves the ceremony's state in a sealed cookie bound to this
// browser (and to the session and user, where there is one); the page then
// posts the authenticator's answer as an ordinary form, which the "finish"
// handler checks — once: the ceremony's ID is marked used in the store —
// and answers like any form (a redirect or a page). Without JavaScript the
// passkey forms stay hidden and every other path works.

const (
	ceremonyCookie = "gatehouse_webauthn"
	sealCeremony   = "webauthn-ceremony"
	ceremonyTTL    = mfa.DefaultCeremonyTimeout

	ceremonyRegister     = "register"
	ceremonyPasswordless = "passwordless"
	ceremonySecondFactor = "second-factor"
	ceremonyReauth       = "reauth"

	msgPasskeyFailed = "That passkey could not be used. Try again, or choose another way."
	msgPasskeyClone  = "This passkey reported a signature count that went backwards, which suggests a copied key. It was refused; contact your administrator."
)

// ceremony is the sealed content of ceremonyCookie.
type ceremony struct {
	ID        string `json:"i"`
	Kind      string `json:"k"`
	State     []byte `json:"s"`
	UserID    string `json:"u,omitempty"`
	SessionID string `json:"sid,omitempty"`
}

// jsonError answers a begin request the script shows to the user, or
// follows (redirect).
func jsonAnswer(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func (h *Handler) passkeysOff(w http.ResponseWriter, r *http.Request) bool {
	if h.cfg.WebAuthn == nil {
		h.renderError(w, r, http.StatusNotFound, "Page not found", "Passkeys are not available on this server.", "")
		return true
	}
	return false
}

// beginCeremony stores the state and answers the options.
func (h *Handler) beginCeremony(w http.ResponseWriter, r *http.Request, kind string, options, state []byte, sess *storage.Session) {
	c := ceremony{ID: randomToken(16), Kind: kind, State: state}
	if sess != nil {
		c.UserID, c.SessionID = sess.UserID, sess.ID
	}
	sealed, err := h.factorSealer.seal(sealCeremony, c, h.now().Add(ceremonyTTL))
	if err != nil {
		h.log.ErrorContext(r.Context(), "seal WebAuthn ceremony", "err", err)
		jsonAnswer(w, http.StatusInternalServerError, map[string]string{"error": "Something went wrong on our side. Please try again."})
		return
	}
	h.setCookie(w, ceremonyCookie, sealed, ceremonyTTL)
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(options)
}

// takeCeremony opens this browser's ceremony of kind, bound to sess (nil
// for a passwordless sign-in), and spends it. ok=false: expired, replayed,
// another kind or another session.
func (h *Handler) takeCeremony(w http.ResponseWriter, r *http.Request, kind string, sess *storage.Session) (ceremony, bool, error) {
	var c ceremony
	ck, err := r.Cookie(h.cookieName(ceremonyCookie))
	h.setCookie(w, ceremonyCookie, "", 0)
	if err != nil || h.factorSealer.open(sealCeremony, ck.Value, h.now(), &c) != nil || c.Kind != kind {
		return c, false, nil
	}
	if sess != nil && (c.SessionID != sess.ID || c.UserID != sess.UserID) {
		return c, false, nil
	}
	switch err := h.store.MarkUsed(r.Context(), "webauthn:"+c.ID, h.now().Add(ceremonyTTL), h.now()); {
	case errors.Is(err, storage.ErrConflict):
		return c, false, nil
	case err != nil:
		return c, false, err
	}
	return c, true, nil
}

// passkeyUser is user as go-webauthn sees it.
func (h *Handler) passkeyUser(ctx context.Context, user *storage.User) (mfa.User, error) {
	handle, err := h.store.WebAuthnUserHandle(ctx, user.ID, mfa.NewUserHandle())
	if err != nil {
		return mfa.User{}, err
	}
	creds, err := h.store.ListWebAuthnCredentials(ctx, user.ID)
	if err != nil {
		return mfa.User{}, err
	}
	return mfa.User{Account: user, Handle: handle, Credentials: creds}, nil
}

// recordUse stores the counter and flags of a successful assertion;
// ok=false for a counter that went backwards (a cloned authenticator).
func (h *Handler) recordUse(ctx context.Context, cred *storage.WebAuthnCredential) (bool, error) {
	err := h.store.UseWebAuthnCredential(ctx, cred.ID, cred.SignCount, cred.BackupState, h.now())
	if errors.Is(err, storage.ErrConflict) {
		h.log.WarnContext(ctx, "passkey refused: signature counter went backwards (possible clone)", "user_id", cred.UserID)
		return false, nil
	}
	return err == nil, err
}

func responseField(r *http.Request) []byte {
	v := r.PostForm.Get("response")
	if len(v) > mfa.MaxResponseSize {
		return nil
	}
	return []byte(v)
}

// --- passwordless sign-in ------------------------------------------------

func (h *Handler) postPasskeyBegin(w http.ResponseWriter, r *http.Request) {
	if h.passkeysOff(w, r) {
		return
	}
	if ok, wait := h.allow(r.Context(), limitKey{h.rules.signInIP, h.clientIP(r)}); !ok {
		_, msg := tooMany(w, wait)
		jsonAnswer(w, http.StatusTooManyRequests, map[string]string{"error": msg})
		return
	}
	options, state, err := h.cfg.WebAuthn.BeginDiscoverableLogin()
	if err != nil {
		h.log.ErrorContext(r.Context(), "begin passkey sign-in", "err", err)
		jsonAnswer(w, http.StatusInternalServerError, map[string]string{"error": "Something went wrong on our side. Please try again."})
		return
	}
	h.beginCeremony(w, r, ceremonyPasswordless, options, state, nil)
}

// postPasskeySignIn finishes a passwordless sign-in: the passkey names its
// user (the handle), proves possession and, with user verification,
// counts as two factors.
func (h *Handler) postPasskeySignIn(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	if h.passkeysOff(w, r) {
		return
	}
	fc, ok := h.loadFlow(w, r, r.PostForm, true)
	if !ok {
		return
	}
	c, ok, err := h.takeCeremony(w, r, ceremonyPasswordless, nil)
	if err != nil {
		h.internalError(w, r, "passkey sign-in: spend ceremony", err)
		return
	}
	if !ok {
		h.renderLogin(w, r, http.StatusBadRequest, fc, "", "This passkey request has expired. Try again.")
		return
	}
	var found *storage.User
	mu, cred, uv, err := h.cfg.WebAuthn.FinishDiscoverableLogin(c.State, responseField(r), func(rawID, handle []byte) (mfa.User, error) {
		u, err := h.store.GetUserByWebAuthnHandle(ctx, handle)
		if err != nil {
			return mfa.User{}, err
		}
		found = u
		creds, err := h.store.ListWebAuthnCredentials(ctx, u.ID)
		if err != nil {
			return mfa.User{}, err
		}
		return mfa.User{Account: u, Handle: handle, Credentials: creds}, nil
	})
	if err != nil {
		h.passkeyFailed(w, r, err, func(msg string) { h.renderLogin(w, r, http.StatusBadRequest, fc, "", msg) })
		return
	}
	user := mu.Account
	if found == nil || user.ID != found.ID {
		h.renderLogin(w, r, http.StatusBadRequest, fc, "", msgPasskeyFailed)
		return
	}
	if ok, err := h.recordUse(ctx, cred); err != nil {
		h.internalError(w, r, "passkey sign-in: record use", err)
		return
	} else if !ok {
		h.renderLogin(w, r, http.StatusForbidden, fc, "", msgPasskeyClone)
		return
	}
	if h.refuseDisabled(w, r, fc, user, user.Email, map[string]string{"method": "passkey"}, func() { h.metrics.signIn(outcomeDisabled) }) {
		return
	}
	if h.cfg.RequireVerifiedEmail && !user.EmailVerified {
		h.renderLogin(w, r, http.StatusForbidden, fc, user.Email, msgUnverified,
			linkView{Href: fc.next.url("/verify-email/resend"), Text: "Send a new verification link"})
		return
	}
	sess, err := h.startSession(ctx, w, r, user, authn.AddFactor(nil, mfa.PasskeyAMR(cred, uv)...), "")
	if err != nil {
		h.internalError(w, r, "passkey sign-in: create session", err)
		return
	}
	h.metrics.signIn(outcomeSuccess)
	h.log.InfoContext(ctx, "signed in with a passkey", "user_id", user.ID, "client_id", fc.clientID(), "session_id", sess.ID, "user_verified", uv)
	h.audit(r, storage.AuditEvent{Action: storage.AuditSignIn, Actor: user.ID, Subject: user.ID, ClientID: fc.clientID(),
		Detail: map[string]string{"session_id": sess.ID, "method": "passkey"}})
	h.finishSignIn(w, r, fc, sess, user)
}

// passkeyFailed logs a failed ceremony and shows the user why in plain
// words (through show); a failure of ours is the 500 page.
func (h *Handler) passkeyFailed(w http.ResponseWriter, r *http.Request, err error, show func(msg string)) {
	if !errors.Is(err, mfa.ErrInvalidResponse) {
		h.internalError(w, r, "passkey ceremony", err)
		return
	}
	h.log.InfoContext(r.Context(), "passkey refused", "err", err)
	h.audit(r, storage.AuditEvent{Action: storage.AuditSignInFailed, Actor: storage.ActorAnonymous, Detail: map[string]string{"reason": "passkey_invalid"}})
	msg := msgPasskeyFailed
	if errors.Is(err, mfa.ErrChallengeExpired) {
		msg = "This passkey request has expired. Try again."
	}
	show(msg)
}

// --- second factor ---------------------------------------------------------

func (h *Handler) postFactorPasskeyBegin(w http.ResponseWriter, r *http.Request) {
	h.postFactorPasskeyBeginKind(w, r, ceremonySecondFactor)
}

// assertSessionUser finishes a ceremony of kind for the signed-in user: the
// second factor, or a re-authentication.
func (h *Handler) assertSessionUser(w http.ResponseWriter, r *http.Request, kind string, sess *storage.Session, user *storage.User, show func(status int, msg string)) (*storage.WebAuthnCredential, bool, bool) {
	ctx := r.Context()
	c, ok, err := h.takeCeremony(w, r, kind, sess)
	if err != nil {
		h.internalError(w, r, "passkey: spend ceremony", err)
		return nil, false, false
	}
	if !ok {
		show(http.StatusBadRequest, "This passkey request has expired. Try again.")
		return nil, false, false
	}
	if ok, wait := h.allow(ctx, limitKey{h.rules.accountUser, user.ID}); !ok {
		status, msg := tooMany(w, wait)
		show(status, msg)
		return nil, false, false
	}
	mu, err := h.passkeyUser(ctx, user)
	if err != nil {
		h.internalError(w, r, "passkey: load user", err)
		return nil, false, false
	}
	cred, uv, err := h.cfg.WebAuthn.FinishLogin(mu, c.State, responseField(r))
	if err != nil {
		h.passkeyFailed(w, r, err, func(msg string) { show(http.StatusBadRequest, msg) })
		return nil, false, false
	}
	if ok, err := h.recordUse(ctx, cred); err != nil {
		h.internalError(w, r, "passkey: record use", err)
		return nil, false, false
	} else if !ok {
		show(http.StatusForbidden, msgPasskeyClone)
		return nil, false, false
	}
	return cred, uv, true
}

func (h *Handler) postFactorPasskey(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	if h.passkeysOff(w, r) {
		return
	}
	fc, ok := h.loadFlow(w, r, r.PostForm, true)
	if !ok {
		return
	}
	sess, user, err := h.currentSession(ctx, r)
	if err != nil {
		h.internalError(w, r, "load session", err)
		return
	}
	if sess == nil {
		http.Redirect(w, r, fc.next.loginURL(), http.StatusSeeOther)
		return
	}
	show := func(status int, msg string) {
		f, err := h.userFactors(ctx, user.ID)
		if err != nil {
			h.internalError(w, r, "load second factors", err)
			return
		}
		h.renderFactor(w, r, status, fc, user, f, &view{Error: msg})
	}
	cred, uv, ok := h.assertSessionUser(w, r, ceremonySecondFactor, sess, user, show)
	if !ok {
		return
	}
	sess, err = h.secondStepSession(ctx, w, sess, mfa.PasskeyAMR(cred, uv)...)
	if err != nil {
		h.secondStepFailed(w, r, fc, err, "user_id", user.ID)
		return
	}
	h.audit(r, storage.AuditEvent{Action: storage.AuditSignIn, Actor: user.ID, Subject: user.ID, ClientID: fc.clientID(),
		Detail: map[string]string{"session_id": sess.ID, "second_factor": "passkey"}})
	h.linkAfterPassword(w, r, sess, user)
	h.finishSignIn(w, r, fc, sess, user)
}

// --- re-authentication -------------------------------------------------------

func (h *Handler) postReauthPasskeyBegin(w http.ResponseWriter, r *http.Request) {
	h.postFactorPasskeyBeginKind(w, r, ceremonyReauth)
}

func (h *Handler) postFactorPasskeyBeginKind(w http.ResponseWriter, r *http.Request, kind string) {
	if h.passkeysOff(w, r) {
		return
	}
	sess, user, err := h.currentSession(r.Context(), r)
	if err != nil || sess == nil {
		jsonAnswer(w, http.StatusUnauthorized, map[string]string{"error": "You are signed out. Sign in again."})
		return
	}
	mu, err := h.passkeyUser(r.Context(), user)
	var options, state []byte
	if err == nil {
		options, state, err = h.cfg.WebAuthn.BeginLogin(mu)
	}
	if err != nil {
		h.log.ErrorContext(r.Context(), "begin passkey check", "err", err)
		jsonAnswer(w, http.StatusInternalServerError, map[string]string{"error": "Something went wrong on our side. Please try again."})
		return
	}
	h.beginCeremony(w, r, kind, options, state, sess)
}

func (h *Handler) postReauthPasskey(w http.ResponseWriter, r *http.Request) {
	if h.passkeysOff(w, r) {
		return
	}
	sess, user, ok := h.accountSession(w, r)
	if !ok {
		return
	}
	ret := safeReturn(r.PostForm.Get("return"))
	show := func(status int, msg string) { h.renderReauth(w, r, status, user, ret, &view{Error: msg}) }
	cred, uv, ok := h.assertSessionUser(w, r, ceremonyReauth, sess, user, show)
	if !ok {
		return
	}
	if err := h.addSessionFactor(r.Context(), sess, mfa.PasskeyAMR(cred, uv)...); err != nil {
		h.internalError(w, r, "update session", err)
		return
	}
	if err := h.markReauthenticated(w, sess); err != nil {
		h.internalError(w, r, "seal re-authentication", err)
		return
	}
	if ret == "" {
		ret = defaultReturn
	}
	http.Redirect(w, r, ret, http.StatusSeeOther)
}

// --- registration and removal ------------------------------------------------

func (h *Handler) postPasskeyRegisterBegin(w http.ResponseWriter, r *http.Request) {
	if h.passkeysOff(w, r) {
		return
	}
	sess, user, err := h.currentSession(r.Context(), r)
	if err != nil || sess == nil {
		jsonAnswer(w, http.StatusUnauthorized, map[string]string{"error": "You are signed out. Sign in again."})
		return
	}
	if !h.recentlyAuthenticated(r, sess) {
		ret := "/account"
		if id := r.PostForm.Get("authRequestID"); id != "" {
			ret = next{AuthRequestID: id}.url("/account/security/setup")
		}
		jsonAnswer(w, http.StatusForbidden, map[string]string{"error": "Confirm it's you first.", "redirect": reauthURL(ret)})
		return
	}
	mu, err := h.passkeyUser(r.Context(), user)
	var options, state []byte
	if err == nil {
		options, state, err = h.cfg.WebAuthn.BeginRegistration(mu)
	}
	if err != nil {
		h.log.ErrorContext(r.Context(), "begin passkey registration", "err", err)
		jsonAnswer(w, http.StatusInternalServerError, map[string]string{"error": "Something went wrong on our side. Please try again."})
		return
	}
	h.beginCeremony(w, r, ceremonyRegister, options, state, sess)
}

// maxPasskeyName bounds the label a user gives a passkey.
const maxPasskeyName = 64

func (h *Handler) postPasskeyRegister(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	if h.passkeysOff(w, r) {
		return
	}
	fc, ok := h.loadFlow(w, r, r.PostForm, true)
	if !ok {
		return
	}
	sess, user, ok := h.accountSession(w, r)
	if !ok || !h.needRecent(w, r, sess, "/account") {
		return
	}
	fail := func(status int, msg string) { h.renderAccount(w, r, status, user, &view{Error: msg}) }
	c, ok, err := h.takeCeremony(w, r, ceremonyRegister, sess)
	if err != nil {
		h.internalError(w, r, "passkey registration: spend ceremony", err)
		return
	}
	if !ok {
		fail(http.StatusBadRequest, "This passkey request has expired. Try again.")
		return
	}
	mu, err := h.passkeyUser(ctx, user)
	if err != nil {
		h.internalError(w, r, "passkey registration: load user", err)
		return
	}
	cred, err := h.cfg.WebAuthn.FinishRegistration(mu, c.State, responseField(r))
	if err != nil {
		h.passkeyFailed(w, r, err, func(msg string) { fail(http.StatusBadRequest, "The passkey could not be added. Try again.") })
		return
	}
	cred.UserID = user.ID
	cred.Name = upstreamName(r.PostForm.Get("name"))
	if len([]rune(cred.Name)) > maxPasskeyName {
		cred.Name = string([]rune(cred.Name)[:maxPasskeyName])
	}
	if cred.Name == "" {
		cred.Name = "Passkey " + h.now().UTC().Format("2 Jan 2006")
	}
	cred.CreatedAt = h.now()
	if err := h.store.CreateWebAuthnCredential(ctx, cred); errors.Is(err, storage.ErrConflict) {
		fail(http.StatusConflict, "This passkey is already registered.")
		return
	} else if err != nil {
		h.internalError(w, r, "store passkey", err)
		return
	}
	h.factorAdded(r, user, "passkey", `a passkey named "`+cred.Name+`"`)
	// Like the code that confirms an authenticator app, creating the
	// passkey proves this session holds it: without this, the user's new
	// factor would send them straight to the second-factor page before
	// the recovery codes or the account page. Only possession (hwk/swk),
	// not user verification: a session that began with a password does
	// not become phishing-resistant by registering a key.
	if err := h.addSessionFactor(ctx, sess, mfa.PasskeyAMR(cred, false)...); err != nil {
		h.internalError(w, r, "passkey registration: update session", err)
		return
	}
	h.afterEnrolment(w, r, fc, user, "/account?notice=passkey-added")
}

func (h *Handler) postPasskeyRemove(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	sess, user, ok := h.accountSession(w, r)
	if !ok || !h.needRecent(w, r, sess, "/account") {
		return
	}
	id, err := base64.RawURLEncoding.DecodeString(strings.TrimSpace(r.PostForm.Get("id")))
	if err != nil || len(id) == 0 {
		http.Redirect(w, r, "/account", http.StatusSeeOther)
		return
	}
	f, err := h.userFactors(ctx, user.ID)
	if err != nil {
		h.internalError(w, r, "load second factors", err)
		return
	}
	var name string
	for _, c := range f.passkeys {
		if string(c.ID) == string(id) {
			name = c.Name
		}
	}
	if name == "" {
		http.Redirect(w, r, "/account", http.StatusSeeOther)
		return
	}
	if f.totp == nil && len(f.passkeys) == 1 && (h.isMFARequired(user)) {
		h.renderAccount(w, r, http.StatusConflict, user, &view{Error: "Your role requires two-step verification: add another passkey or an authenticator app before removing this one."})
		return
	}
	if err := h.store.DeleteWebAuthnCredential(ctx, user.ID, id); err != nil && !errors.Is(err, storage.ErrNotFound) {
		h.internalError(w, r, "remove passkey", err)
		return
	}
	if err := h.afterFactorRemoved(ctx, user.ID); err != nil {
		h.internalError(w, r, "remove recovery codes", err)
		return
	}
	h.factorRemoved(r, user, "passkey", `the passkey "`+name+`"`)
	http.Redirect(w, r, "/account?notice=passkey-removed", http.StatusSeeOther)
}

func (h *Handler) isMFARequired(user *storage.User) bool {
	for _, role := range h.cfg.MFARequiredRoles {
		if role == user.Role {
			return true
		}
	}
	return false
}
