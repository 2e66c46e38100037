package login

import (
	"crypto/hmac"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/gatehouse-id/gatehouse/internal/ratelimit"
	"github.com/gatehouse-id/gatehouse/storage"
)

// The /device page of the device authorization grant (RFC 8628; the
// endpoints are package op's). A person signs in as usual (second factor
// and upstreams included), types the code the device shows, sees the app
// and what it asks for, and approves or denies.
//
// Guessing codes. A user code has about 34 bits and is typed by a person,
// so entering codes is rate limited three ways: per address, per session,
// and in all (a small budget per minute shared by everyone, which bounds
// how many guesses can land within a code's lifetime however many
// addresses and accounts an attacker has). Every code entered counts,
// right or wrong. RFC 8628 §5.1 also suggests locking a device code after
// wrong entries, but a wrong code names no device code: it is a code that
// does not exist, or another pending request's, and the two cannot be
// told apart — so no device code is ever locked by what others type.
// What protects a device code instead: it is decided once (approve or
// deny, whoever comes first), it expires, and the person approving sees
// the app's name and the scopes before the request is approved. Every
// wrong, unknown, expired or decided code gets one message, msgDeviceCodeBad.

const (
	msgDeviceCodeBad  = "That code is not valid or has expired. Check the code on your device and try again."
	msgDeviceCodeNone = "Enter the code your device shows."
	msgDeviceApproved = "You can go back to your device."
	msgDeviceDenied   = "The device was not connected. You can close this page."
)

// devicePath is the page; op announces it as verification_uri.
const devicePath = "/device"

// deviceReturn is where a sign-in started at the page comes back to, code
// and all.
func deviceReturn(typed string) string {
	if typed == "" {
		return devicePath
	}
	return devicePath + "?" + url.Values{"user_code": {typed}}.Encode()
}

// deviceSession returns the signed-in session and user, or sends the
// browser to sign in (or to finish its second step) and back to ret.
func (h *Handler) deviceSession(w http.ResponseWriter, r *http.Request, ret string) (*storage.Session, *storage.User, bool) {
	sess, user, err := h.currentSession(r.Context(), r)
	if err != nil {
		h.internalError(w, r, "load session", err)
		return nil, nil, false
	}
	if user == nil {
		http.Redirect(w, r, next{Return: ret}.loginURL(), http.StatusSeeOther)
		return nil, nil, false
	}
	short, err := h.secondStepMissing(r.Context(), sess, user)
	if err != nil {
		h.internalError(w, r, "load second factors", err, "user_id", user.ID)
		return nil, nil, false
	}
	if short {
		http.Redirect(w, r, next{Return: ret}.url("/login/factor"), http.StatusSeeOther)
		return nil, nil, false
	}
	return sess, user, true
}

// getDevice shows the code form, pre-filled from ?user_code=.
func (h *Handler) getDevice(w http.ResponseWriter, r *http.Request) {
	typed := strings.TrimSpace(r.URL.Query().Get("user_code"))
	if len(typed) > 32 {
		typed = ""
	}
	_, user, ok := h.deviceSession(w, r, deviceReturn(typed))
	if !ok {
		return
	}
	h.renderDeviceForm(w, r, http.StatusOK, user, typed, "")
}

func (h *Handler) renderDeviceForm(w http.ResponseWriter, r *http.Request, status int, user *storage.User, typed, msg string) {
	h.render(w, r, status, "device", &view{
		Title: "Connect a device", CSRF: h.csrfToken(w, r), Token: typed, UserEmail: user.Email, Error: msg,
	})
}

// postDevice checks a typed code and shows what approving it would allow.
func (h *Handler) postDevice(w http.ResponseWriter, r *http.Request) {
	typed := strings.TrimSpace(r.PostForm.Get("user_code"))
	if len(typed) > 32 {
		typed = typed[:32]
	}
	sess, user, ok := h.deviceSession(w, r, deviceReturn(typed))
	if !ok {
		return
	}
	if typed == "" {
		h.renderDeviceForm(w, r, http.StatusBadRequest, user, "", msgDeviceCodeNone)
		return
	}
	if ok, wait := h.allow(r.Context(),
		limitKey{h.rules.deviceCodeIP, h.clientIP(r)},
		limitKey{h.rules.deviceCodeSession, sess.ID},
		limitKey{h.rules.deviceCodeAll, "all"},
	); !ok {
		status, msg := tooMany(w, wait)
		h.renderDeviceForm(w, r, status, user, typed, msg)
		return
	}
	d, client, ok := h.pendingDevice(w, r, user, typed)
	if !ok {
		return
	}
	if !h.deviceFactorsSatisfied(w, r, sess, user, client, d) {
		return
	}
	h.render(w, r, http.StatusOK, "device", &view{
		Title: "Connect a device", CSRF: h.csrfToken(w, r), Token: storage.FormatUserCode(d.UserCode),
		ClientName: clientName(client), UserEmail: user.Email,
		Scopes:  describeScopes(h.grantableScopes(d.Scopes, user)),
		Binding: h.deviceBinding(d.UserCode, sess, user),
	})
}

// pendingDevice finds the pending, live request a typed code names, with
// its client; otherwise it answers with the one message for every bad code.
func (h *Handler) pendingDevice(w http.ResponseWriter, r *http.Request, user *storage.User, typed string) (*storage.DeviceAuthorization, *storage.Client, bool) {
	ctx := r.Context()
	bad := func() (*storage.DeviceAuthorization, *storage.Client, bool) {
		h.log.InfoContext(ctx, "device code refused", "user_id", user.ID)
		h.renderDeviceForm(w, r, http.StatusBadRequest, user, typed, msgDeviceCodeBad)
		return nil, nil, false
	}
	code, ok := storage.NormalizeUserCode(typed)
	if !ok {
		return bad()
	}
	d, err := h.store.GetDeviceAuthorizationByUserCode(ctx, code)
	if errors.Is(err, storage.ErrNotFound) {
		return bad()
	}
	if err != nil {
		h.internalError(w, r, "load device authorization", err)
		return nil, nil, false
	}
	if d.State != storage.DevicePending || !h.now().Before(d.ExpiresAt) {
		return bad()
	}
	client, err := h.store.GetClient(ctx, d.ClientID)
	if errors.Is(err, storage.ErrNotFound) {
		return bad()
	}
	if err != nil {
		h.internalError(w, r, "load client", err, "client_id", d.ClientID)
		return nil, nil, false
	}
	return d, client, true
}

// deviceFactorsSatisfied applies a sign-in's second-factor rules to the
// approval (the user's own, the client's require_mfa, the admin scope):
// a session short of them goes to the second-factor page (or to enrol
// one) and comes back to this code.
func (h *Handler) deviceFactorsSatisfied(w http.ResponseWriter, r *http.Request, sess *storage.Session, user *storage.User, client *storage.Client, d *storage.DeviceAuthorization) bool {
	fc := &flowContext{
		next:   next{Return: deviceReturn(storage.FormatUserCode(d.UserCode))},
		client: client,
		// What requiredACR reads of a request: the scopes (no prompt, no
		// acr_values: RFC 8628 has neither).
		ar: &storage.AuthRequest{ClientID: client.ID, Scopes: d.Scopes},
	}
	return h.factorsSatisfied(w, r, fc, sess, user)
}

// deviceBinding ties the approval form to the (normalised) user code and
// to the session and user it was shown to, as consentBinding does for
// consent. It is checked before the code is looked up, so the decision
// form cannot be used to try codes past postDevice's rate limits.
func (h *Handler) deviceBinding(code string, sess *storage.Session, user *storage.User) string {
	return h.mac("device", code, sess.ID, user.ID)
}

// postDeviceDecide records the approval or denial.
func (h *Handler) postDeviceDecide(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	typed := r.PostForm.Get("user_code")
	sess, user, ok := h.deviceSession(w, r, deviceReturn(typed))
	if !ok {
		return
	}
	code, _ := storage.NormalizeUserCode(typed)
	if code == "" || !hmac.Equal([]byte(r.PostForm.Get("binding")), []byte(h.deviceBinding(code, sess, user))) {
		h.renderError(w, r, http.StatusBadRequest, "Please try again",
			"This page is out of date. Enter the code again.", deviceReturn(""))
		return
	}
	d, client, ok := h.pendingDevice(w, r, user, typed)
	if !ok {
		return
	}
	action := r.PostForm.Get("action")
	decision := &storage.DeviceAuthorization{State: storage.DeviceDenied, UserID: user.ID, SessionID: sess.ID}
	switch action {
	case "approve":
		// The factors are checked again: the session may have changed
		// since the page was shown.
		if !h.deviceFactorsSatisfied(w, r, sess, user, client, d) {
			return
		}
		decision.State = storage.DeviceApproved
		decision.AuthTime, decision.AMR, decision.IDP = sess.AuthTime, sess.AMR, sess.IDP
	case "deny":
	default:
		h.renderError(w, r, http.StatusBadRequest, "Please try again", "Choose Approve or Deny.", deviceReturn(typed))
		return
	}
	err := h.store.DecideDeviceAuthorization(ctx, d.ID, decision, h.now())
	if errors.Is(err, storage.ErrNotFound) { // decided meanwhile, or expired
		h.renderDeviceForm(w, r, http.StatusBadRequest, user, typed, msgDeviceCodeBad)
		return
	}
	if err != nil {
		h.internalError(w, r, "decide device authorization", err)
		return
	}
	ev := storage.AuditEvent{Action: storage.AuditDeviceDenied, Actor: user.ID, Subject: user.ID, ClientID: client.ID,
		Detail: map[string]string{"scopes": strings.Join(d.Scopes, " ")}}
	title, msg := "Device not connected", msgDeviceDenied
	if decision.State == storage.DeviceApproved {
		ev.Action, title, msg = storage.AuditDeviceApproved, "Device connected", msgDeviceApproved
	}
	h.audit(r, ev)
	h.log.InfoContext(ctx, "device authorization decided", "user_id", user.ID, "client_id", client.ID, "state", decision.State)
	h.renderMessage(w, r, http.StatusOK, title, msg)
}

// deviceCodeRules are the defaults of the code-guessing limits (see the
// comment at the top of this file).
func deviceCodeRules(c *Config) (ip, session, all ratelimit.Rule) {
	return rule("device-code-ip", c.DeviceCodePerIP, 20, time.Hour),
		rule("device-code-session", c.DeviceCodePerSession, 10, 10*time.Minute),
		rule("device-code-all", c.DeviceCodeGlobal, 60, time.Minute)
}
