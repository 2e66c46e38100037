package login

import (
	"context"
	"errors"
	"net/http"
	"net/url"

	"github.com/gatehouse-id/gatehouse/login/policy"
	"github.com/gatehouse-id/gatehouse/storage"
)

// The account page: a signed-in user (SSO session) sees their profile and
// changes their password or email, or deletes the account. Every change asks
// for the current password, which goes through the same per-user rate limit
// and lockout counter as the sign-in form.

const (
	msgWrongPassword   = "The password is incorrect."
	msgEnterPassword   = "Enter your current password."
	msgSameEmail       = "This is already your email address."
	msgChangeLinkGone  = "This link is invalid or has expired. Please request the change again."
	msgSamePassword    = "The new password must be different from the current one."
	noticePassword     = "Your password has been changed. Every other device has been signed out."
	noticeEmailPending = "We have sent a confirmation link to your new address. Your email address changes when you open it."
)

var accountNotices = map[string]string{
	"password-changed": noticePassword,
	"email-sent":       noticeEmailPending,
	"connected":        "Connected. You can now sign in with it.",
	"totp-added":       "Authenticator app added. You will be asked for a code when you sign in.",
	"totp-removed":     "Authenticator app removed.",
	"passkey-added":    "Passkey added.",
	"passkey-removed":  "Passkey removed.",
	"codes-replaced":   "New recovery codes created; the old ones no longer work.",
	"disconnected":     "Disconnected. It can no longer be used to sign in to this account.",
	"session-ended":    "Signed out of that session. That device will have to sign in again.",
	"sessions-ended":   "Signed out of every other session. Other devices will have to sign in again.",
}

var accountLogin = next{Return: defaultReturn}.loginURL()

// getAccount shows the account page, or sends the browser to sign in first.
func (h *Handler) getAccount(w http.ResponseWriter, r *http.Request) {
	_, user, ok := h.accountSession(w, r)
	if !ok {
		return
	}
	h.renderAccount(w, r, http.StatusOK, user, &view{Notice: accountNotices[r.URL.Query().Get("notice")]})
}

func (h *Handler) renderAccount(w http.ResponseWriter, r *http.Request, status int, user *storage.User, v *view) {
	v.Title = "Your account"
	v.Wide = true
	v.User = user
	v.Hint = h.policy.Describe()
	h.withNext(v, next{Return: defaultReturn})
	cv := h.csrfValue(w, r)
	v.CSRF = h.mac("csrf", cv)
	if err := h.accountUpstreams(r.Context(), user, h.mac(linkTokenPurpose, cv), v); err != nil {
		h.internalError(w, r, "account page: linked identities", err)
		return
	}
	if err := h.accountFactors(r.Context(), user, v); err != nil {
		h.internalError(w, r, "account page: second factors", err)
		return
	}
	if err := h.accountSessions(r, user, v); err != nil {
		h.internalError(w, r, "account page: sessions", err)
		return
	}
	h.render(w, r, status, "account", v)
}

// accountUser returns the signed-in user of an account form, or redirects to
// the sign-in page (ok=false).
func (h *Handler) accountUser(w http.ResponseWriter, r *http.Request) (*storage.Session, *storage.User, bool) {
	return h.accountSession(w, r)
}

// confirmPassword checks the current password typed into field before an
// account change. On failure it records why in v and returns the status to
// render with (ok=false), or it has already answered (done=true: busy or a
// server error).
func (h *Handler) confirmPassword(w http.ResponseWriter, r *http.Request, user *storage.User, pw, field string, v *view) (ok bool, status int, done bool) {
	if pw == "" {
		v.fieldError(field, msgEnterPassword)
		return false, http.StatusBadRequest, false
	}
	res, err := h.checkCredential(w, r, credentialCheck{
		limits:   []limitKey{{h.rules.accountUser, user.ID}},
		lockKey:  user.Email,
		password: true,
		verify:   func(ctx context.Context) (bool, error) { return h.verifyUserPassword(ctx, user, pw) },
		actor:    user.ID,
		subject:  func() string { return user.ID },
		detail:   map[string]string{"where": "account"},
	})
	if err != nil {
		h.hashFailed(w, r, err, defaultReturn)
		return false, 0, true
	}
	switch res.outcome {
	case checkPassed:
		return true, 0, false
	case checkFailed:
		v.fieldError(field, msgWrongPassword)
		return false, http.StatusBadRequest, false
	default:
		v.Error = res.msg
		return false, res.status, false
	}
}

// postChangePassword sets a new password. Every other session and every
// refresh token of the user end; this browser gets a fresh session.
func (h *Handler) postChangePassword(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	_, user, ok := h.accountUser(w, r)
	if !ok {
		return
	}
	cur, pw := r.PostForm.Get("current_password"), r.PostForm.Get("new_password")
	v := &view{}
	for _, vi := range h.policy.Check(pw) {
		v.fieldError("pw-new", vi.Message)
	}
	if v.Err == nil && pw == cur {
		v.fieldError("pw-new", msgSamePassword)
	}
	if v.Err != nil {
		if cur == "" {
			v.fieldError("pw-current", msgEnterPassword)
		}
		h.renderAccount(w, r, http.StatusBadRequest, user, v)
		return
	}
	good, status, done := h.confirmPassword(w, r, user, cur, "pw-current", v)
	if done {
		return
	}
	if !good {
		h.renderAccount(w, r, status, user, v)
		return
	}
	hash, err := h.hasher.Hash(ctx, pw)
	if err != nil {
		h.hashFailed(w, r, err, defaultReturn)
		return
	}
	now := h.now()
	if err := h.store.UpdateUserPassword(ctx, user.ID, hash, now); err != nil {
		h.internalError(w, r, "account: update password", err, "user_id", user.ID)
		return
	}
	if err := h.cancelPendingLinks(ctx, user.ID); err != nil {
		h.internalError(w, r, "account: cancel pending links", err, "user_id", user.ID)
		return
	}
	// Every session ends, this browser's too, which gets a new one: the
	// user stays signed in here and nowhere else.
	if _, err := h.flow.EndUserSessions(ctx, user.ID, "password_changed"); err != nil {
		h.internalError(w, r, "account: end sessions", err, "user_id", user.ID)
		return
	}
	if _, err := h.startSession(ctx, w, r, user, []string{amrPassword}, ""); err != nil {
		h.internalError(w, r, "account: new session", err, "user_id", user.ID)
		return
	}
	h.mailer.PasswordChanged(ctx, user.Email, user.Name)
	h.log.InfoContext(ctx, "password changed", "user_id", user.ID)
	h.audit(r, storage.AuditEvent{Action: storage.AuditPasswordChanged, Actor: user.ID, Subject: user.ID})
	http.Redirect(w, r, "/account?notice=password-changed", http.StatusSeeOther)
}

// postChangeEmail starts an email change: a link goes to the new address and
// the change happens when it is opened; the old address is told.
func (h *Handler) postChangeEmail(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	_, user, ok := h.accountUser(w, r)
	if !ok {
		return
	}
	email := NormalizeEmail(r.PostForm.Get("email"))
	pw := r.PostForm.Get("password")
	v := &view{Email: email}
	if len(email) > maxEmailInput {
		v.Email = ""
	}
	if m := policy.CheckEmail(email); m != "" {
		v.fieldError("em-new", m)
	} else if email == user.Email {
		v.fieldError("em-new", msgSameEmail)
	}
	if v.Err != nil {
		if pw == "" {
			v.fieldError("em-password", msgEnterPassword)
		}
		h.renderAccount(w, r, http.StatusBadRequest, user, v)
		return
	}
	good, status, done := h.confirmPassword(w, r, user, pw, "em-password", v)
	if done {
		return
	}
	if !good {
		h.renderAccount(w, r, status, user, v)
		return
	}
	if _, err := h.store.GetUserByEmail(ctx, email); err == nil {
		v.fieldError("em-new", msgDuplicateEmail)
		h.renderAccount(w, r, http.StatusConflict, user, v)
		return
	} else if !errors.Is(err, storage.ErrNotFound) {
		h.internalError(w, r, "account: look up email", err)
		return
	}
	raw, err := h.issueToken(ctx, storage.TokenChangeEmail, user, email, changeEmailTTL)
	if err != nil {
		h.internalError(w, r, "account: issue email-change token", err, "user_id", user.ID)
		return
	}
	h.mailer.ConfirmNewEmail(ctx, email, user.Name, h.link("/account/confirm-email", url.Values{"token": {raw}}))
	h.mailer.EmailChangeNotice(ctx, user.Email, user.Name, email)
	h.log.InfoContext(ctx, "email change requested", "user_id", user.ID)
	http.Redirect(w, r, "/account?notice=email-sent", http.StatusSeeOther)
}

// getConfirmEmail is the link sent to the new address: opening it makes the
// change (and marks the new address verified).
func (h *Handler) getConfirmEmail(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	t, err := h.consumeToken(ctx, r.URL.Query().Get("token"), storage.TokenChangeEmail)
	if err != nil {
		h.internalError(w, r, "confirm email: consume token", err)
		return
	}
	var user *storage.User
	if t != nil {
		user, err = h.store.GetUser(ctx, t.UserID)
		if errors.Is(err, storage.ErrNotFound) {
			user = nil
		} else if err != nil {
			h.internalError(w, r, "confirm email: load user", err)
			return
		}
	}
	if user == nil {
		h.renderMessage(w, r, http.StatusBadRequest, "Link expired", msgChangeLinkGone,
			linkView{Href: defaultReturn, Text: "Go to your account"})
		return
	}
	err = h.store.UpdateUserEmail(ctx, user.ID, t.Email, true, h.now())
	if errors.Is(err, storage.ErrConflict) {
		h.renderMessage(w, r, http.StatusConflict, "Address already in use",
			"Another account has started using "+t.Email+" in the meantime, so your email address was not changed.",
			linkView{Href: defaultReturn, Text: "Go to your account"})
		return
	}
	if err != nil {
		h.internalError(w, r, "confirm email: update user", err, "user_id", user.ID)
		return
	}
	h.log.InfoContext(ctx, "email changed", "user_id", user.ID)
	h.audit(r, storage.AuditEvent{Action: storage.AuditEmailChanged, Actor: user.ID, Subject: user.ID})
	h.renderMessage(w, r, http.StatusOK, "Email address changed",
		"Your email address is now "+t.Email+".", linkView{Href: defaultReturn, Text: "Go to your account"})
}

// postDeleteAccount deletes the account, with its sessions, grants and
// consents, and signs this browser out.
func (h *Handler) postDeleteAccount(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	_, user, ok := h.accountUser(w, r)
	if !ok {
		return
	}
	v := &view{}
	good, status, done := h.confirmPassword(w, r, user, r.PostForm.Get("password"), "del-password", v)
	if done {
		return
	}
	if !good {
		h.renderAccount(w, r, status, user, v)
		return
	}
	// Sessions end first, while the grants that say which apps to tell
	// still exist.
	if _, err := h.flow.EndUserSessions(ctx, user.ID, "account_deleted"); err != nil {
		h.internalError(w, r, "account: end sessions", err, "user_id", user.ID)
		return
	}
	if err := h.store.DeleteUser(ctx, user.ID); err != nil && !errors.Is(err, storage.ErrNotFound) {
		h.internalError(w, r, "account: delete user", err, "user_id", user.ID)
		return
	}
	h.clearSessionCookie(w)
	h.mailer.AccountDeleted(ctx, user.Email, user.Name)
	h.log.InfoContext(ctx, "account deleted", "user_id", user.ID)
	h.audit(r, storage.AuditEvent{Action: storage.AuditAccountDeleted, Actor: user.ID, Subject: user.ID})
	h.renderMessage(w, r, http.StatusOK, "Account deleted", "Your account has been deleted and you have been signed out.")
}
