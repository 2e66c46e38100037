package login

import (
	"context"
	"errors"
	"net/http"

	"github.com/gatehouse-id/gatehouse/storage"
)

const (
	msgVerifyLinkInvalid = "This verification link is invalid or has expired. Please request a new one."
	msgResendSent        = "If an account with that address is waiting to be verified, we have sent a new verification link."
)

// getVerifyEmail is the link in the verification email: opening it verifies
// the address (the token is single use).
func (h *Handler) getVerifyEmail(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	q := r.URL.Query()
	n := nextFrom(q)
	t, err := h.consumeToken(ctx, q.Get("token"), storage.TokenVerifyEmail)
	if err != nil {
		h.internalError(w, r, "verify email: consume token", err)
		return
	}
	var user *storage.User
	if t != nil {
		user, err = h.store.GetUser(ctx, t.UserID)
		switch {
		case errors.Is(err, storage.ErrNotFound):
			user = nil
		case err != nil:
			h.internalError(w, r, "verify email: load user", err)
			return
		case user.Email != t.Email:
			// The address changed since the link was sent.
			user = nil
		}
	}
	if user == nil {
		h.renderMessage(w, r, http.StatusBadRequest, "Link expired", msgVerifyLinkInvalid,
			linkView{Href: n.url("/verify-email/resend"), Text: "Send a new verification link"})
		return
	}
	if !user.EmailVerified {
		if err := h.store.SetUserEmailVerified(ctx, user.ID, true, h.now()); err != nil {
			h.internalError(w, r, "verify email: update user", err)
			return
		}
		h.log.InfoContext(ctx, "email verified", "user_id", user.ID)
		h.audit(r, storage.AuditEvent{Action: storage.AuditEmailVerified, Actor: user.ID, Subject: user.ID})
	}
	h.renderMessage(w, r, http.StatusOK, "Email address verified",
		"Thank you: "+user.Email+" is verified.", h.continueLink(r, n))
}

// continueLink is the way on after a detour through an emailed link: back
// into the pending authorize request while it is still valid, otherwise to
// the account page (through sign-in if need be).
func (h *Handler) continueLink(r *http.Request, n next) linkView {
	if h.liveAuthRequest(r, n.AuthRequestID) {
		return linkView{Href: next{AuthRequestID: n.AuthRequestID}.loginURL(), Text: "Continue"}
	}
	return linkView{Href: defaultReturn, Text: "Go to your account"}
}

// getResend shows the form asking for a new verification link.
func (h *Handler) getResend(w http.ResponseWriter, r *http.Request) {
	h.renderResend(w, r, http.StatusOK, nextFrom(r.URL.Query()), &view{})
}

func (h *Handler) renderResend(w http.ResponseWriter, r *http.Request, status int, n next, v *view) {
	v.Title = "Verify your email address"
	h.withNext(v, n)
	v.CSRF = h.csrfToken(w, r)
	h.render(w, r, status, "resend", v)
}

// postResend sends a new verification link (see postLinkRequest); an address
// that is already verified gets nothing, and the same answer.
func (h *Handler) postResend(w http.ResponseWriter, r *http.Request) {
	h.postLinkRequest(w, r, linkRequest{
		what:     "resend verification",
		render:   h.renderResend,
		ipRule:   h.rules.resendIP,
		mailRule: h.rules.resendEmail,
		sent:     msgResendSent,
		send: func(ctx context.Context, user *storage.User, n next) {
			if user.EmailVerified {
				h.log.InfoContext(ctx, "verification resend for a verified address", "user_id", user.ID)
				return
			}
			h.sendVerification(ctx, user, n)
		},
	})
}
