package login

import (
	"context"
	"errors"
	"net/http"
	"net/url"

	"github.com/google/uuid"

	"github.com/gatehouse-id/gatehouse/login/password"
	"github.com/gatehouse-id/gatehouse/login/policy"
	"github.com/gatehouse-id/gatehouse/storage"
)

const (
	msgFixErrors      = "Please correct the errors below."
	msgDuplicateEmail = "An account with this email already exists."
)

// getRegister shows the registration form.
func (h *Handler) getRegister(w http.ResponseWriter, r *http.Request) {
	if h.cfg.DisableRegistration {
		h.renderError(w, r, http.StatusNotFound, "Page not found", "There is nothing at this address.", "")
		return
	}
	fc, ok := h.loadFlow(w, r, r.URL.Query(), true)
	if !ok {
		return
	}
	h.renderRegister(w, r, http.StatusOK, fc, &view{})
}

func (h *Handler) renderRegister(w http.ResponseWriter, r *http.Request, status int, fc *flowContext, v *view) {
	v.Title = "Create account"
	v.Lead = "for " + h.cfg.ProductName
	v.Hint = h.policy.Describe()
	if fc.ar != nil {
		// A successful registration continues through the OP's callback to
		// the client.
		h.allowFormAction(w, fc.ar.RedirectURI)
		v.ClientName = clientName(fc.client)
	}
	h.withNext(v, fc.next)
	v.Upstreams = h.upstreamButtons(fc.next)
	v.CSRF = h.csrfToken(w, r)
	h.render(w, r, status, "register", v)
}

// postRegister creates an account, sends the verification email, and signs
// the new user in (unless a verified address is required first).
func (h *Handler) postRegister(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	if h.cfg.DisableRegistration {
		h.renderError(w, r, http.StatusNotFound, "Page not found", "There is nothing at this address.", "")
		return
	}
	fc, ok := h.loadFlow(w, r, r.PostForm, true)
	if !ok {
		return
	}
	name := policy.NormalizeName(r.PostForm.Get("name"))
	email := NormalizeEmail(r.PostForm.Get("email"))
	pw := r.PostForm.Get("password")
	v := &view{Name: name, Email: email}
	if len(name) > 4*policy.MaxNameLength {
		v.Name = ""
	}
	if len(email) > maxEmailInput {
		v.Email = ""
	}
	if m := policy.CheckName(name); m != "" {
		v.fieldError("name", m)
	}
	if m := policy.CheckEmail(email); m != "" {
		v.fieldError("email", m)
	}
	for _, vi := range h.policy.Check(pw) {
		v.fieldError("password", vi.Message)
	}
	if v.Err != nil {
		v.Error = msgFixErrors
		h.renderRegister(w, r, http.StatusBadRequest, fc, v)
		return
	}

	// The rate limit bounds how fast anyone can learn which addresses have
	// an account (the duplicate message below).
	if ok, wait := h.allow(ctx, limitKey{h.rules.registerIP, h.clientIP(r)}); !ok {
		status, msg := tooMany(w, wait)
		v.Error = msg
		h.renderRegister(w, r, status, fc, v)
		return
	}
	duplicate := func() {
		h.log.InfoContext(ctx, "registration refused: email taken")
		v.Error = msgDuplicateEmail
		v.ErrorLinks = []linkView{
			{Href: fc.next.loginURL(), Text: "Sign in"},
			{Href: fc.next.url("/forgot"), Text: "Reset your password"},
		}
		v.Focus = "email"
		h.renderRegister(w, r, http.StatusConflict, fc, v)
	}
	if _, err := h.store.GetUserByEmail(ctx, email); err == nil {
		duplicate()
		return
	} else if !errors.Is(err, storage.ErrNotFound) {
		h.internalError(w, r, "register: look up email", err)
		return
	}
	hash, err := h.hasher.Hash(ctx, pw)
	if err != nil {
		h.hashFailed(w, r, err, fc.next.url("/register"))
		return
	}
	now := h.now()
	user := &storage.User{
		ID: uuid.Must(uuid.NewV7()).String(), Email: email, Name: name, Role: h.cfg.DefaultRole,
		PasswordHash: hash, CreatedAt: now, UpdatedAt: now,
	}
	if err := h.store.CreateUser(ctx, user); errors.Is(err, storage.ErrConflict) {
		duplicate() // registered in between
		return
	} else if err != nil {
		h.internalError(w, r, "register: create user", err)
		return
	}
	h.log.InfoContext(ctx, "account created", "user_id", user.ID)
	h.audit(r, storage.AuditEvent{Action: storage.AuditRegistered, Actor: user.ID, Subject: user.ID, ClientID: fc.clientID()})
	h.metrics.registered()
	h.sendVerification(ctx, user, fc.next)

	if h.cfg.RequireVerifiedEmail {
		h.renderMessage(w, r, http.StatusOK, "Check your inbox",
			"We have sent a verification link to "+email+". Open it to activate your account, then sign in.",
			linkView{Href: fc.next.loginURL(), Text: "Sign in"},
			linkView{Href: fc.next.url("/verify-email/resend"), Text: "Did not get the email? Send a new link"})
		return
	}
	sess, err := h.startSession(ctx, w, r, user, []string{amrPassword}, "")
	if err != nil {
		h.internalError(w, r, "register: create session", err, "user_id", user.ID)
		return
	}
	h.finishSignIn(w, r, fc, sess, user)
}

// sendVerification issues a verification token for user's address and
// queues the email. Failures are logged: the user can ask for a new link.
func (h *Handler) sendVerification(ctx context.Context, user *storage.User, n next) {
	raw, err := h.issueToken(ctx, storage.TokenVerifyEmail, user, user.Email, verifyEmailTTL)
	if err != nil {
		h.log.ErrorContext(ctx, "issue verification token", "user_id", user.ID, "err", err)
		return
	}
	q := url.Values{"token": {raw}}
	if n.AuthRequestID != "" {
		q.Set("authRequestID", n.AuthRequestID)
	}
	h.mailer.VerifyEmail(ctx, user.Email, user.Name, h.link("/verify-email", q))
}

// hashFailed answers a failed password hash: busy (503) or a server error.
func (h *Handler) hashFailed(w http.ResponseWriter, r *http.Request, err error, retry string) {
	if errors.Is(err, password.ErrBusy) {
		h.log.WarnContext(r.Context(), "password hasher busy")
		w.Header().Set("Retry-After", busyRetryAfter)
		h.renderError(w, r, http.StatusServiceUnavailable, "Please try again", msgBusy, retry)
		return
	}
	h.internalError(w, r, "hash password", err)
}
