package login

import (
	"context"
	"errors"
	"net/http"
	"net/url"

	"github.com/gatehouse-id/gatehouse/storage"
)

const (
	msgForgotSent       = "If an account exists for that address, we have sent a reset link."
	msgResetLinkInvalid = "This reset link is invalid or has expired. Please request a new one."
	msgPasswordChanged  = "Your password has been changed"
)

// getForgot shows the "forgot your password" form.
func (h *Handler) getForgot(w http.ResponseWriter, r *http.Request) {
	h.renderForgot(w, r, http.StatusOK, nextFrom(r.URL.Query()), &view{})
}

func (h *Handler) renderForgot(w http.ResponseWriter, r *http.Request, status int, n next, v *view) {
	v.Title = "Reset your password"
	h.withNext(v, n)
	v.CSRF = h.csrfToken(w, r)
	h.render(w, r, status, "forgot", v)
}

// postForgot sends a reset link (see postLinkRequest: same answer and timing
// whether or not the address has an account).
func (h *Handler) postForgot(w http.ResponseWriter, r *http.Request) {
	h.postLinkRequest(w, r, linkRequest{
		what:     "password reset",
		render:   h.renderForgot,
		ipRule:   h.rules.forgotIP,
		mailRule: h.rules.forgotEmail,
		sent:     msgForgotSent,
		send: func(ctx context.Context, user *storage.User, n next) {
			raw, err := h.issueToken(ctx, storage.TokenResetPassword, user, user.Email, resetPasswordTTL)
			if err != nil {
				h.log.ErrorContext(ctx, "password reset: issue token", "user_id", user.ID, "err", err)
				return
			}
			q := url.Values{"token": {raw}}
			if n.AuthRequestID != "" {
				q.Set("authRequestID", n.AuthRequestID)
			}
			h.log.InfoContext(ctx, "password reset link sent", "user_id", user.ID)
			h.audit(r, storage.AuditEvent{Action: storage.AuditResetRequested, Actor: storage.ActorAnonymous, Subject: user.ID}) // r's headers stay readable here
			h.mailer.ResetPassword(ctx, user.Email, user.Name, h.link("/reset", q))
		},
	})
}

// resetLinkInvalid renders the page for a used, expired or unknown link.
func (h *Handler) resetLinkInvalid(w http.ResponseWriter, r *http.Request, n next) {
	h.renderMessage(w, r, http.StatusBadRequest, "Link expired", msgResetLinkInvalid,
		linkView{Href: n.url("/forgot"), Text: "Request a new reset link"})
}

// resetTarget checks a reset token without using it up and returns its
// (still current) user, or nil.
func (h *Handler) resetTarget(ctx context.Context, raw string) (*storage.OneTimeToken, *storage.User, error) {
	t, err := h.peekToken(ctx, raw, storage.TokenResetPassword)
	if err != nil || t == nil {
		return nil, nil, err
	}
	return h.tokenUser(ctx, t)
}

// tokenUser returns t's user when the account still exists and still has
// the address the token was sent to.
func (h *Handler) tokenUser(ctx context.Context, t *storage.OneTimeToken) (*storage.OneTimeToken, *storage.User, error) {
	u, err := h.store.GetUser(ctx, t.UserID)
	if errors.Is(err, storage.ErrNotFound) {
		return nil, nil, nil
	}
	if err != nil {
		return nil, nil, err
	}
	if u.Email != t.Email {
		return nil, nil, nil
	}
	return t, u, nil
}

// getReset is the link in the reset email: it shows the new-password form if
// the link is still good.
func (h *Handler) getReset(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	n := nextFrom(q)
	raw := q.Get("token")
	_, user, err := h.resetTarget(r.Context(), raw)
	if err != nil {
		h.internalError(w, r, "reset: check token", err)
		return
	}
	if user == nil {
		h.resetLinkInvalid(w, r, n)
		return
	}
	h.renderReset(w, r, http.StatusOK, n, &view{Token: raw, Email: user.Email})
}

func (h *Handler) renderReset(w http.ResponseWriter, r *http.Request, status int, n next, v *view) {
	v.Title = "Set new password"
	v.Hint = h.policy.Describe()
	h.withNext(v, n)
	v.CSRF = h.csrfToken(w, r)
	h.render(w, r, status, "reset", v)
}

// postReset sets the new password: the link is used up, every session and
// grant of the user ends, the lockout counter is cleared and the user is told
// by email.
func (h *Handler) postReset(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	n := nextFrom(r.PostForm)
	raw := r.PostForm.Get("token")
	pw := r.PostForm.Get("password")

	if vs := h.policy.Check(pw); vs != nil {
		_, user, err := h.resetTarget(ctx, raw)
		if err != nil {
			h.internalError(w, r, "reset: check token", err)
			return
		}
		if user == nil {
			h.resetLinkInvalid(w, r, n)
			return
		}
		v := &view{Token: raw, Email: user.Email, Error: msgFixErrors}
		for _, vi := range vs {
			v.fieldError("password", vi.Message)
		}
		h.renderReset(w, r, http.StatusBadRequest, n, v)
		return
	}

	t, err := h.consumeToken(ctx, raw, storage.TokenResetPassword)
	if err != nil {
		h.internalError(w, r, "reset: consume token", err)
		return
	}
	var user *storage.User
	if t != nil {
		if t, user, err = h.tokenUser(ctx, t); err != nil {
			h.internalError(w, r, "reset: load user", err)
			return
		}
	}
	if user == nil {
		h.resetLinkInvalid(w, r, n)
		return
	}
	hash, err := h.hasher.Hash(ctx, pw)
	if err != nil {
		// Give the link back so the user can simply try again.
		if rerr := h.restoreToken(ctx, raw, t); rerr != nil {
			h.log.WarnContext(ctx, "reset: restore token", "user_id", user.ID, "err", rerr)
		}
		q := n.values()
		q.Set("token", raw)
		h.hashFailed(w, r, err, "/reset?"+q.Encode())
		return
	}
	now := h.now()
	if err := h.store.UpdateUserPassword(ctx, user.ID, hash, now); err != nil {
		h.internalError(w, r, "reset: update password", err, "user_id", user.ID)
		return
	}
	if err := h.cancelPendingLinks(ctx, user.ID); err != nil {
		h.internalError(w, r, "reset: cancel pending links", err, "user_id", user.ID)
		return
	}
	// Whoever knew the old password, or holds a session or token, is out.
	if _, err := h.flow.EndUserSessions(ctx, user.ID, "password_reset"); err != nil {
		h.internalError(w, r, "reset: end sessions", err, "user_id", user.ID)
		return
	}
	h.clearFailures(ctx, user.Email)
	// Opening the emailed link proved the address.
	if !user.EmailVerified {
		if err := h.store.SetUserEmailVerified(ctx, user.ID, true, now); err != nil {
			h.log.WarnContext(ctx, "reset: mark email verified", "user_id", user.ID, "err", err)
		}
	}
	h.clearSessionCookie(w)
	h.mailer.PasswordChanged(ctx, user.Email, user.Name)
	h.log.InfoContext(ctx, "password reset", "user_id", user.ID)
	h.audit(r, storage.AuditEvent{Action: storage.AuditResetCompleted, Actor: user.ID, Subject: user.ID})

	link := linkView{Href: next{Return: defaultReturn}.loginURL(), Text: "Sign in"}
	if h.liveAuthRequest(r, n.AuthRequestID) {
		link = linkView{Href: next{AuthRequestID: n.AuthRequestID}.loginURL(), Text: "Sign in to continue"}
	}
	h.renderMessage(w, r, http.StatusOK, msgPasswordChanged, "You can now sign in with your new password.", link)
}
