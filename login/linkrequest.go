package login

import (
	"context"
	"errors"
	"net/http"

	"github.com/gatehouse-id/gatehouse/internal/ratelimit"
	"github.com/gatehouse-id/gatehouse/login/policy"
	"github.com/gatehouse-id/gatehouse/storage"
)

// linkRequest describes a form that asks for an emailed link (password reset,
// verification resend).
type linkRequest struct {
	what             string // for logs
	render           func(w http.ResponseWriter, r *http.Request, status int, n next, v *view)
	ipRule, mailRule ratelimit.Rule
	sent             string // the answer shown whatever the address
	// send runs in the background for an address that has an account.
	send func(ctx context.Context, user *storage.User, n next)
}

// postLinkRequest answers a link request. The response is the same, and takes
// the same time, whether or not the address has an account: the look-up, the
// token and the email happen in the background once the answer is decided.
func (h *Handler) postLinkRequest(w http.ResponseWriter, r *http.Request, lr linkRequest) {
	ctx := r.Context()
	n := nextFrom(r.PostForm)
	email := NormalizeEmail(r.PostForm.Get("email"))
	v := &view{Email: email}
	if m := policy.CheckEmail(email); m != "" {
		if len(email) > maxEmailInput {
			v.Email = ""
		}
		v.fieldError("email", m)
		v.Error = msgFixErrors
		lr.render(w, r, http.StatusBadRequest, n, v)
		return
	}
	if ok, wait := h.allow(ctx, limitKey{lr.ipRule, h.clientIP(r)}, limitKey{lr.mailRule, email}); !ok {
		status, msg := tooMany(w, wait)
		v.Error = msg
		lr.render(w, r, status, n, v)
		return
	}
	h.inBackground(ctx, lr.what, func(ctx context.Context) {
		user, err := h.store.GetUserByEmail(ctx, email)
		if errors.Is(err, storage.ErrNotFound) {
			h.log.InfoContext(ctx, lr.what+" for an unknown address")
			return
		}
		if err != nil {
			h.log.ErrorContext(ctx, lr.what+": look up email", "err", err)
			return
		}
		lr.send(ctx, user, n)
	})
	h.renderMessage(w, r, http.StatusOK, "Check your inbox", lr.sent,
		linkView{Href: n.loginURL(), Text: "Back to sign in"})
}
