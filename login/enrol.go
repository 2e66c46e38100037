package login

import (
	"context"
	"encoding/base64"
	"errors"
	"html/template"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/gatehouse-id/gatehouse/internal/authn"
	"github.com/gatehouse-id/gatehouse/login/mfa"
	"github.com/gatehouse-id/gatehouse/storage"
)

// Enrolling and removing second factors on the account page, showing
// recovery codes once, and the re-authentication those changes need.

const (
	// Cookies of the enrolment steps, sealed with the factor key.
	totpSetupCookie    = "gatehouse_totp_setup"
	recoveryShowCookie = "gatehouse_recovery_show"
	sealTOTPSetup      = "totp-setup"
	sealRecoveryShow   = "recovery-show"
	enrolTTL           = 10 * time.Minute
	// reauthCookie marks a re-authentication in a session (reauthMark).
	reauthCookie = "gatehouse_reauth"
	sealReauth   = "reauth"
)

// reauthMark is the sealed content of reauthCookie: the session that
// re-authenticated; its expiry is the end of the window.
type reauthMark struct {
	SessionID string `json:"s"`
}

// totpSetup is the secret being enrolled, sealed in totpSetupCookie until
// the user confirms it with a code: nothing is stored before that.
type totpSetup struct {
	UserID string `json:"u"`
	Secret string `json:"s"`
	URI    string `json:"q"`
}

// recoveryShow carries freshly generated codes to the one page that shows
// them; only their hashes are stored.
type recoveryShow struct {
	UserID string   `json:"u"`
	Codes  []string `json:"c"`
	Next   string   `json:"n"` // where "Continue" goes without a pending sign-in
}

// passkeyView is a passkey on the account page.
type passkeyView struct {
	ID       string // base64url credential ID
	Name     string
	Created  string
	LastUsed string
	Kind     string // "synced" or "this device only"
}

// accountSession returns the signed-in user for an account page or form,
// or answers: to the sign-in page without a session, to the second-factor
// page when the user has factors and this session has not used one yet.
func (h *Handler) accountSession(w http.ResponseWriter, r *http.Request) (*storage.Session, *storage.User, bool) {
	sess, user, err := h.currentSession(r.Context(), r)
	if err != nil {
		h.internalError(w, r, "load session", err)
		return nil, nil, false
	}
	if user == nil {
		http.Redirect(w, r, accountLogin, http.StatusSeeOther)
		return nil, nil, false
	}
	short, err := h.secondStepMissing(r.Context(), sess, user)
	if err != nil {
		h.internalError(w, r, "load second factors", err, "user_id", user.ID)
		return nil, nil, false
	}
	if short {
		// Within a pending sign-in (the setup page an app's acr_values
		// led to), the second step continues that sign-in.
		n := next{Return: defaultReturn}
		if id := nextFrom(flowValues(r)).AuthRequestID; id != "" {
			n = next{AuthRequestID: id}
		}
		http.Redirect(w, r, n.url("/login/factor"), http.StatusSeeOther)
		return nil, nil, false
	}
	return sess, user, true
}

// secondStepMissing reports whether sess lacks the second step its user
// has (or must have, by role) and could do: such a session is the password
// (or an upstream) only, not yet a sign-in to the account.
func (h *Handler) secondStepMissing(ctx context.Context, sess *storage.Session, user *storage.User) (bool, error) {
	f, err := h.userFactors(ctx, user.ID)
	if err != nil {
		return false, err
	}
	want := h.requiredACR(user, f.any(), nil, nil)
	return want != "" && f.canReach(want) && !authn.Satisfies(authn.ACRFor(sess.AMR), []string{want}), nil
}

// flowValues are where a page's continuation is: the form of a POST, else
// the query.
func flowValues(r *http.Request) url.Values {
	if r.Method == http.MethodPost {
		return r.PostForm
	}
	return r.URL.Query()
}

// needRecent sends a session whose last authentication is older than
// recentAuthWindow to re-enter the password (or use a passkey), then back
// to ret. It reports whether the caller may go on.
func (h *Handler) needRecent(w http.ResponseWriter, r *http.Request, sess *storage.Session, ret string) bool {
	if h.recentlyAuthenticated(r, sess) {
		return true
	}
	http.Redirect(w, r, reauthURL(ret), http.StatusSeeOther)
	return false
}

// accountFactors fills the account page's two-step verification section.
func (h *Handler) accountFactors(ctx context.Context, user *storage.User, v *view) error {
	f, err := h.userFactors(ctx, user.ID)
	if err != nil {
		return err
	}
	v.HasTOTP = f.totp != nil
	v.RecoveryLeft = f.recoveryCodes
	v.PasskeysOn = h.cfg.WebAuthn != nil
	v.MFARequired = slices.Contains(h.cfg.MFARequiredRoles, user.Role)
	for _, c := range f.passkeys {
		pv := passkeyView{ID: base64.RawURLEncoding.EncodeToString(c.ID), Name: c.Name, Created: c.CreatedAt.UTC().Format("2 Jan 2006"),
			LastUsed: "never", Kind: "this device only"}
		if pv.Name == "" {
			pv.Name = "Passkey"
		}
		if !c.LastUsedAt.IsZero() {
			pv.LastUsed = c.LastUsedAt.UTC().Format(timeFormat)
		}
		if c.BackupEligible {
			pv.Kind = "synced"
		}
		v.Passkeys = append(v.Passkeys, pv)
	}
	v.HasPasskeys = len(v.Passkeys) > 0
	return nil
}

// getSecuritySetup is where a sign-in goes when the user must have a second
// factor and has none (a required role or client, an app's acr_values).
func (h *Handler) getSecuritySetup(w http.ResponseWriter, r *http.Request) {
	fc, ok := h.loadFlow(w, r, r.URL.Query(), true)
	if !ok {
		return
	}
	_, user, ok := h.accountSession(w, r)
	if !ok {
		return
	}
	v := &view{Title: "Set up two-step verification", PasskeysOn: h.cfg.WebAuthn != nil}
	if fc.ar != nil {
		v.ClientName = clientName(fc.client)
		v.PasskeyOnly = slices.Contains(fc.ar.ACRValues, authn.ACRPhishingResistant) &&
			!slices.Contains(fc.ar.ACRValues, authn.ACRMFA) && !slices.Contains(fc.ar.ACRValues, authn.ACRSingleFactor)
	}
	v.UserEmail = user.Email
	h.withNext(v, fc.next)
	v.CSRF = h.csrfToken(w, r)
	h.render(w, r, http.StatusOK, "setup", v)
}

// getTOTPSetup starts enrolling an authenticator app: a new secret, shown
// as a QR code, as text and as its otpauth:// URI.
func (h *Handler) getTOTPSetup(w http.ResponseWriter, r *http.Request) {
	fc, ok := h.loadFlow(w, r, r.URL.Query(), true)
	if !ok {
		return
	}
	sess, user, ok := h.accountSession(w, r)
	if !ok || !h.needRecent(w, r, sess, r.URL.RequestURI()) {
		return
	}
	// The app lists the entry under the product name; a colon would split
	// the otpauth:// label ("issuer:account") in the wrong place.
	issuer := strings.TrimSpace(strings.ReplaceAll(h.cfg.ProductName, ":", ""))
	if issuer == "" {
		issuer = "Gatehouse"
	}
	key, err := mfa.NewTOTPKey(issuer, user.Email)
	if err != nil {
		h.internalError(w, r, "new TOTP key", err)
		return
	}
	sealed, err := h.factorSealer.seal(sealTOTPSetup, totpSetup{UserID: user.ID, Secret: key.Secret, URI: key.URI}, h.now().Add(enrolTTL))
	if err != nil {
		h.internalError(w, r, "seal TOTP setup", err)
		return
	}
	h.setCookie(w, totpSetupCookie, sealed, enrolTTL)
	h.renderTOTPSetup(w, r, http.StatusOK, fc, key.Secret, key.URI, &view{})
}

func (h *Handler) renderTOTPSetup(w http.ResponseWriter, r *http.Request, status int, fc *flowContext, secret, uri string, v *view) {
	v.Title = "Set up an authenticator app"
	v.TOTPSecret = groupSecret(secret)
	v.TOTPURI = uri
	h.withNext(v, fc.next)
	v.CSRF = h.csrfToken(w, r)
	h.render(w, r, status, "totp", v)
}

// groupSecret spaces a base32 secret in fours for typing.
func groupSecret(s string) string {
	var b strings.Builder
	for i, c := range s {
		if i > 0 && i%4 == 0 {
			b.WriteByte(' ')
		}
		b.WriteRune(c)
	}
	return b.String()
}

// openTOTPSetup reads the enrolment cookie of user.
func (h *Handler) openTOTPSetup(r *http.Request, user *storage.User) (totpSetup, bool) {
	var s totpSetup
	c, err := r.Cookie(h.cookieName(totpSetupCookie))
	if err != nil || h.factorSealer.open(sealTOTPSetup, c.Value, h.now(), &s) != nil || s.UserID != user.ID {
		return s, false
	}
	return s, true
}

// getTOTPQR renders the QR code of the secret being enrolled, on our own
// server: the secret never reaches a third party.
func (h *Handler) getTOTPQR(w http.ResponseWriter, r *http.Request) {
	_, user, ok := h.accountSession(w, r)
	if !ok {
		return
	}
	s, ok := h.openTOTPSetup(r, user)
	if !ok {
		http.NotFound(w, r)
		return
	}
	png, err := (&mfa.TOTPKey{Secret: s.Secret, URI: s.URI}).QRPNG(256)
	if err != nil {
		h.internalError(w, r, "render QR code", err)
		return
	}
	w.Header().Set("Content-Type", "image/png")
	_, _ = w.Write(png)
}

// postTOTPSetup confirms the app with a code and stores the secret
// (encrypted). The first factor also gets recovery codes.
func (h *Handler) postTOTPSetup(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	fc, ok := h.loadFlow(w, r, r.PostForm, true)
	if !ok {
		return
	}
	sess, user, ok := h.accountSession(w, r)
	if !ok || !h.needRecent(w, r, sess, fc.next.url("/account/totp")) {
		return
	}
	s, ok := h.openTOTPSetup(r, user)
	if !ok {
		http.Redirect(w, r, fc.next.url("/account/totp"), http.StatusSeeOther)
		return
	}
	code := r.PostForm.Get("code")
	step, good := mfa.VerifyTOTP(s.Secret, code, h.now())
	if !good {
		v := &view{}
		v.fieldError("code", msgWrongCode)
		h.renderTOTPSetup(w, r, http.StatusBadRequest, fc, s.Secret, s.URI, v)
		return
	}
	enc, err := h.totpBox.Seal([]byte(s.Secret), user.ID)
	if err != nil {
		h.internalError(w, r, "seal TOTP secret", err)
		return
	}
	now := h.now()
	if err := h.store.SetTOTP(ctx, &storage.TOTPFactor{UserID: user.ID, SecretEnc: enc, CreatedAt: now, LastStep: step, LastUsedAt: now}); err != nil {
		h.internalError(w, r, "store TOTP", err)
		return
	}
	h.setCookie(w, totpSetupCookie, "", 0)
	h.factorAdded(r, user, "totp", "an authenticator app")
	// The code just typed proves the factor for this session too.
	if err := h.addSessionFactor(ctx, sess, authn.AMROTP); err != nil {
		h.internalError(w, r, "update session", err)
		return
	}
	h.afterEnrolment(w, r, fc, user, "/account?notice=totp-added")
}

// afterEnrolment gives a user's first factor its recovery codes (shown
// once), then continues the sign-in or returns to the account page.
func (h *Handler) afterEnrolment(w http.ResponseWriter, r *http.Request, fc *flowContext, user *storage.User, done string) {
	var pending next // the sign-in to continue, if any
	cont := done
	if fc.ar != nil {
		pending = next{AuthRequestID: fc.next.AuthRequestID}
		cont = pending.loginURL()
	}
	n, err := h.store.CountRecoveryCodes(r.Context(), user.ID)
	if err != nil {
		h.internalError(w, r, "count recovery codes", err)
		return
	}
	if n > 0 {
		http.Redirect(w, r, cont, http.StatusSeeOther)
		return
	}
	h.issueRecoveryCodes(w, r, user, pending, done)
}

// issueRecoveryCodes replaces the user's codes and shows the new ones once;
// the page then continues pending's sign-in, or goes to done. The pending
// request's handle travels in the page's URL, not in the cookie with the
// codes: a handle can take kilobytes (a long state), and browsers drop a
// cookie over 4096 bytes — the codes would never be shown.
func (h *Handler) issueRecoveryCodes(w http.ResponseWriter, r *http.Request, user *storage.User, pending next, done string) {
	codes, hashes := mfa.NewRecoveryCodes()
	if err := h.store.ReplaceRecoveryCodes(r.Context(), user.ID, hashes, h.now()); err != nil {
		h.internalError(w, r, "store recovery codes", err)
		return
	}
	sealed, err := h.factorSealer.seal(sealRecoveryShow, recoveryShow{UserID: user.ID, Codes: codes, Next: done}, h.now().Add(enrolTTL))
	if err != nil {
		h.internalError(w, r, "seal recovery codes", err)
		return
	}
	h.audit(r, storage.AuditEvent{Action: storage.AuditFactorAdded, Actor: user.ID, Subject: user.ID, Detail: map[string]string{"method": "recovery_codes"}})
	h.setCookie(w, recoveryShowCookie, sealed, enrolTTL)
	http.Redirect(w, r, pending.url("/account/recovery-codes"), http.StatusSeeOther)
}

// getRecoveryCodes shows freshly generated codes, once.
func (h *Handler) getRecoveryCodes(w http.ResponseWriter, r *http.Request) {
	_, user, ok := h.accountSession(w, r)
	if !ok {
		return
	}
	var s recoveryShow
	c, err := r.Cookie(h.cookieName(recoveryShowCookie))
	if err != nil || h.factorSealer.open(sealRecoveryShow, c.Value, h.now(), &s) != nil || s.UserID != user.ID {
		http.Redirect(w, r, "/account", http.StatusSeeOther)
		return
	}
	h.setCookie(w, recoveryShowCookie, "", 0)
	link := safeContinue(s.Next)
	if n := nextFrom(r.URL.Query()); n.AuthRequestID != "" {
		link = n.loginURL() // the sign-in page checks the request is this browser's and still pending
	}
	text := mfa.RecoveryCodesText(h.cfg.ProductName, user.Email, s.Codes, h.now())
	v := &view{
		Title:         "Save your recovery codes",
		RecoveryCodes: s.Codes,
		RecoveryText:  template.URL("data:text/plain;charset=utf-8," + url.PathEscape(text)), // text is percent-escaped: nothing in it ends the URL or the attribute
		Link:          link,
		UserEmail:     user.Email,
	}
	v.CSRF = h.csrfToken(w, r)
	h.render(w, r, http.StatusOK, "recovery", v)
}

// safeContinue keeps a same-site continuation, else the account page.
func safeContinue(s string) string {
	if safeReturn(s) == "" {
		return defaultReturn
	}
	return s
}

// postRecoveryCodes replaces the user's recovery codes (the old ones stop
// working) after a recent authentication.
func (h *Handler) postRecoveryCodes(w http.ResponseWriter, r *http.Request) {
	sess, user, ok := h.accountSession(w, r)
	if !ok || !h.needRecent(w, r, sess, "/account") {
		return
	}
	f, err := h.userFactors(r.Context(), user.ID)
	if err != nil {
		h.internalError(w, r, "load second factors", err)
		return
	}
	if !f.any() {
		http.Redirect(w, r, "/account", http.StatusSeeOther)
		return
	}
	h.mailer.FactorAdded(r.Context(), user.Email, user.Name, "new recovery codes (the old ones no longer work)")
	h.issueRecoveryCodes(w, r, user, next{}, "/account?notice=codes-replaced")
}

// postTOTPRemove removes the authenticator app after a recent
// authentication, unless it is the last factor of a user who must have one.
func (h *Handler) postTOTPRemove(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	sess, user, ok := h.accountSession(w, r)
	if !ok || !h.needRecent(w, r, sess, "/account") {
		return
	}
	f, err := h.userFactors(ctx, user.ID)
	if err != nil {
		h.internalError(w, r, "load second factors", err)
		return
	}
	if f.totp == nil {
		http.Redirect(w, r, "/account", http.StatusSeeOther)
		return
	}
	if len(f.passkeys) == 0 && slices.Contains(h.cfg.MFARequiredRoles, user.Role) {
		h.renderAccount(w, r, http.StatusConflict, user, &view{Error: "Your role requires two-step verification: add a passkey before removing the authenticator app."})
		return
	}
	if err := h.store.DeleteTOTP(ctx, user.ID); err != nil && !errors.Is(err, storage.ErrNotFound) {
		h.internalError(w, r, "remove TOTP", err)
		return
	}
	if err := h.afterFactorRemoved(ctx, user.ID); err != nil {
		h.internalError(w, r, "remove recovery codes", err)
		return
	}
	h.factorRemoved(r, user, "totp", "an authenticator app")
	http.Redirect(w, r, "/account?notice=totp-removed", http.StatusSeeOther)
}

// afterFactorRemoved drops the recovery codes once no factor is left:
// they are a way around a second factor, not one of their own.
func (h *Handler) afterFactorRemoved(ctx context.Context, userID string) error {
	f, err := h.userFactors(ctx, userID)
	if err != nil || f.any() {
		return err
	}
	return h.store.ReplaceRecoveryCodes(ctx, userID, nil, h.now())
}

func (h *Handler) factorAdded(r *http.Request, user *storage.User, method, description string) {
	h.log.InfoContext(r.Context(), "second factor added", "user_id", user.ID, "method", method)
	h.audit(r, storage.AuditEvent{Action: storage.AuditFactorAdded, Actor: user.ID, Subject: user.ID, Detail: map[string]string{"method": method}})
	h.mailer.FactorAdded(r.Context(), user.Email, user.Name, description)
}

func (h *Handler) factorRemoved(r *http.Request, user *storage.User, method, description string) {
	h.log.InfoContext(r.Context(), "second factor removed", "user_id", user.ID, "method", method)
	h.audit(r, storage.AuditEvent{Action: storage.AuditFactorRemoved, Actor: user.ID, Subject: user.ID, Detail: map[string]string{"method": method}})
	h.mailer.FactorRemoved(r.Context(), user.Email, user.Name, description)
}

// getReauth asks a signed-in user to prove it is them again before a
// security change.
func (h *Handler) getReauth(w http.ResponseWriter, r *http.Request) {
	_, user, ok := h.accountSession(w, r)
	if !ok {
		return
	}
	h.renderReauth(w, r, http.StatusOK, user, safeReturn(r.URL.Query().Get("return")), &view{})
}

func (h *Handler) renderReauth(w http.ResponseWriter, r *http.Request, status int, user *storage.User, ret string, v *view) {
	if ret == "" {
		ret = defaultReturn
	}
	v.Title = "Confirm it's you"
	v.Lead = "Signed in as " + user.Email
	v.Return = ret
	v.HasPassword = user.PasswordHash != ""
	v.UserEmail = user.Email
	if f, err := h.userFactors(r.Context(), user.ID); err == nil {
		v.HasPasskeys = len(f.passkeys) > 0 && h.cfg.WebAuthn != nil
	}
	v.CSRF = h.csrfToken(w, r)
	h.render(w, r, status, "reauth", v)
}

// postReauth checks the password through the one credential sequence and
// marks the session as authenticated now.
func (h *Handler) postReauth(w http.ResponseWriter, r *http.Request) {
	sess, user, ok := h.accountSession(w, r)
	if !ok {
		return
	}
	ret := safeReturn(r.PostForm.Get("return"))
	v := &view{}
	good, status, done := h.confirmPassword(w, r, user, r.PostForm.Get("password"), "password", v)
	if done {
		return
	}
	if !good {
		h.renderReauth(w, r, status, user, ret, v)
		return
	}
	if err := h.addSessionFactor(r.Context(), sess, authn.AMRPassword); err != nil {
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
