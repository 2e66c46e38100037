package login

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/gatehouse-id/gatehouse/internal/authn"
	"github.com/gatehouse-id/gatehouse/login/mfa"
	"github.com/gatehouse-id/gatehouse/storage"
)

// Second factors (docs/design.md, "Second factors"). The SSO session's amr
// records what the user proved; the acr it reaches follows from that
// (package authn). Before an app gets a code, and before the account page
// opens, the session must reach what is asked of it:
//
//   - two factors when the user has one enrolled (always: enrolling is
//     asking for it), when the user's role is in MFARequiredRoles, or when
//     the client was created with --require-mfa;
//   - two factors when the request asks for the admin API's scope
//     (storage.ScopeAdmin, kept only for a client allowed it) and the user
//     has the admin role: such a token is worth the admin console (op
//     checks the session's amr again when it issues the scope);
//   - what the app's acr_values ask for (mfa, phishing-resistant).
//
// A session short of that is sent to the second-factor page, which asks
// only for what is missing (step-up: never the password again); a user who
// has no factor that could reach it is sent to enrol one first. prompt=none
// gets interaction_required instead.

const (
	msgWrongCode      = "That code is not right. Check your authenticator app and try again."
	msgCodeUsed       = "That code was already used. Wait for the next one and try again."
	msgEnterCode      = "Enter the 6-digit code from your authenticator app."
	msgWrongRecovery  = "That recovery code is not right, or it was already used."
	msgFactorLockedFn = "Too many wrong codes."
	// recentAuthWindow: adding or removing a factor needs an
	// authentication this recent (a password or passkey re-entered).
	recentAuthWindow = 5 * time.Minute
	// mfaLockPrefix keys the second step's failure count in the lockout
	// table, apart from the password's (keyed by the submitted address).
	// It is upper case because a submitted address is counted as
	// NormalizeEmail leaves it, lower case and otherwise unchecked: with
	// "mfa:" anyone who knew a user's ID (the sub apps see) could lock
	// that user's second step by typing "mfa:<id>" as the address.
	mfaLockPrefix = "MFA:"
)

// factors is what a user has enrolled.
type factors struct {
	totp          *storage.TOTPFactor
	passkeys      []storage.WebAuthnCredential
	recoveryCodes int
}

func (f factors) any() bool { return f.totp != nil || len(f.passkeys) > 0 }

// canReach reports whether these factors can bring a session to acr want.
func (f factors) canReach(want string) bool {
	switch want {
	case authn.ACRPhishingResistant:
		return len(f.passkeys) > 0
	case authn.ACRMFA:
		return f.any() || f.recoveryCodes > 0
	}
	return true
}

func (h *Handler) userFactors(ctx context.Context, userID string) (factors, error) {
	var f factors
	t, err := h.store.GetTOTP(ctx, userID)
	switch {
	case err == nil:
		f.totp = t
	case !errors.Is(err, storage.ErrNotFound):
		return f, err
	}
	if f.passkeys, err = h.store.ListWebAuthnCredentials(ctx, userID); err != nil {
		return f, err
	}
	if f.recoveryCodes, err = h.store.CountRecoveryCodes(ctx, userID); err != nil {
		return f, err
	}
	return f, nil
}

// requiredACR is the acr a session of user must reach for ar of client
// (both nil for the account page): "" when one factor is enough. enrolled
// says whether the user has a second factor (factors.any, or
// Store.HasSecondFactor where nothing else about them is needed).
func (h *Handler) requiredACR(user *storage.User, enrolled bool, client *storage.Client, ar *storage.AuthRequest) string {
	want := ""
	if enrolled || slices.Contains(h.cfg.MFARequiredRoles, user.Role) || (client != nil && client.RequireMFA) {
		want = authn.ACRMFA
	}
	if ar != nil && user.Role == h.cfg.AdminRole && slices.Contains(ar.Scopes, storage.ScopeAdmin) {
		want = authn.ACRMFA
	}
	if ar != nil {
		// acr_values is a preference list: meeting any known value is
		// enough, so the weakest known one is what must be reached.
		asked := ""
		for _, v := range ar.ACRValues {
			if !slices.Contains(authn.ACRValues(), v) {
				continue
			}
			if asked == "" || acrRank(v) < acrRank(asked) {
				asked = v
			}
		}
		if asked == authn.ACRPhishingResistant && h.cfg.WebAuthn == nil {
			// Nobody can reach it here (no passkeys on this issuer, and
			// discovery does not offer it): give the strongest there is;
			// the token's acr says what was reached, the app decides.
			asked = authn.ACRMFA
		}
		if acrRank(asked) > acrRank(want) {
			want = asked
		}
	}
	return want
}

func acrRank(v string) int { return slices.Index(authn.ACRValues(), v) + 1 }

// factorDue is the acr the session still has to reach before ar's app may
// have a code ("" when it has reached what is asked). The one rule for the
// sign-in pages and for the one-request answer (SilentSignIn).
//
// It asks the store one question (HasSecondFactor) rather than loading the
// factors, since this runs on every sign-in; the pages that then need the
// factors themselves load them (userFactors). SilentSignIn has the answer
// from its session read already and calls factorDueWith.
func (h *Handler) factorDue(ctx context.Context, sess *storage.Session, user *storage.User, client *storage.Client, ar *storage.AuthRequest) (string, error) {
	enrolled, err := h.store.HasSecondFactor(ctx, user.ID)
	if err != nil {
		return "", err
	}
	return h.factorDueWith(enrolled, sess, user, client, ar), nil
}

// factorDueWith is factorDue for a user known to have (enrolled) or not to
// have a second factor.
func (h *Handler) factorDueWith(enrolled bool, sess *storage.Session, user *storage.User, client *storage.Client, ar *storage.AuthRequest) string {
	want := h.requiredACR(user, enrolled, client, ar)
	if want == "" || authn.Satisfies(authn.ACRFor(sess.AMR), []string{want}) {
		return ""
	}
	return want
}

// factorsSatisfied checks the session against what is asked before an app
// gets a code. When it falls short it answers (the second-factor page, the
// enrolment page, or interaction_required for prompt=none) and returns
// false.
func (h *Handler) factorsSatisfied(w http.ResponseWriter, r *http.Request, fc *flowContext, sess *storage.Session, user *storage.User) bool {
	want, err := h.factorDue(r.Context(), sess, user, fc.client, fc.ar)
	if err != nil {
		h.internalError(w, r, "load second factors", err, "user_id", user.ID)
		return false
	}
	if want == "" {
		return true
	}
	f, err := h.userFactors(r.Context(), user.ID)
	if err != nil {
		h.internalError(w, r, "load second factors", err, "user_id", user.ID)
		return false
	}
	if fc.ar != nil && slices.Contains(fc.ar.Prompt, "none") {
		h.flow.Fail(w, r, fc.ar, "interaction_required", "A second factor is required.")
		return false
	}
	if !f.canReach(want) {
		http.Redirect(w, r, fc.next.url("/account/security/setup"), http.StatusSeeOther)
		return false
	}
	http.Redirect(w, r, fc.next.url("/login/factor"), http.StatusSeeOther)
	return false
}

// factorView fills the second-factor page.
func (h *Handler) renderFactor(w http.ResponseWriter, r *http.Request, status int, fc *flowContext, user *storage.User, f factors, v *view) {
	v.Title = "Two-step verification"
	v.Lead = "Signed in as " + user.Email
	v.UserEmail = user.Email
	v.HasTOTP = f.totp != nil
	v.HasPasskeys = len(f.passkeys) > 0 && h.cfg.WebAuthn != nil
	v.RecoveryLeft = f.recoveryCodes
	if fc.ar != nil {
		h.allowFormAction(w, fc.ar.RedirectURI)
		v.ClientName = clientName(fc.client)
		// Only a passkey reaches phishing-resistant; a user without one
		// gets their usual second step first, then the passkey setup.
		if want := h.requiredACR(user, f.any(), fc.client, fc.ar); want == authn.ACRPhishingResistant && v.HasPasskeys {
			v.PasskeyOnly = true
		}
	}
	h.withNext(v, fc.next)
	v.CSRF = h.csrfToken(w, r)
	h.render(w, r, status, "factor", v)
}

// getFactor shows the second-factor page to a signed-in user whose session
// needs one.
func (h *Handler) getFactor(w http.ResponseWriter, r *http.Request) {
	fc, ok := h.loadFlow(w, r, r.URL.Query(), true)
	if !ok {
		return
	}
	sess, user, err := h.currentSession(r.Context(), r)
	if err != nil {
		h.internalError(w, r, "load session", err)
		return
	}
	if sess == nil {
		http.Redirect(w, r, fc.next.loginURL(), http.StatusSeeOther)
		return
	}
	f, err := h.userFactors(r.Context(), user.ID)
	if err != nil {
		h.internalError(w, r, "load second factors", err, "user_id", user.ID)
		return
	}
	if !f.any() && f.recoveryCodes == 0 {
		http.Redirect(w, r, fc.next.url("/account/security/setup"), http.StatusSeeOther)
		return
	}
	if want := h.requiredACR(user, f.any(), fc.client, fc.ar); want == "" || authn.Satisfies(authn.ACRFor(sess.AMR), []string{want}) {
		// Nothing is missing (another tab finished the step): go on.
		h.finishSignIn(w, r, fc, sess, user)
		return
	}
	h.renderFactor(w, r, http.StatusOK, fc, user, f, &view{})
}

// postFactor checks an authenticator-app code or a recovery code through
// the one credential sequence, with its own lockout count per user.
func (h *Handler) postFactor(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
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
	f, err := h.userFactors(ctx, user.ID)
	if err != nil {
		h.internalError(w, r, "load second factors", err, "user_id", user.ID)
		return
	}
	method := r.PostForm.Get("method")
	code := strings.TrimSpace(r.PostForm.Get("code"))
	v := &view{}
	var proved string
	var reused bool
	var remaining int
	check := credentialCheck{
		limits:   []limitKey{{h.rules.signInIP, h.clientIP(r)}, {h.rules.accountUser, user.ID}},
		lockKey:  mfaLockPrefix + user.ID,
		actor:    user.ID,
		subject:  func() string { return user.ID },
		clientID: fc.clientID(),
		detail:   map[string]string{"where": "second_factor", "method": method},
	}
	switch method {
	case "totp":
		if f.totp == nil {
			http.Redirect(w, r, fc.next.url("/login/factor"), http.StatusSeeOther)
			return
		}
		if code == "" {
			v.fieldError("code", msgEnterCode)
			h.renderFactor(w, r, http.StatusBadRequest, fc, user, f, v)
			return
		}
		check.verify = func(ctx context.Context) (bool, error) {
			secret, err := h.totpBox.Open(f.totp.SecretEnc, user.ID)
			if err != nil {
				return false, err
			}
			step, ok := mfa.VerifyTOTP(string(secret), code, h.now())
			if !ok {
				return false, nil
			}
			// A code is good once: the store accepts each step (and
			// nothing older) one time only.
			switch err := h.store.UseTOTPStep(ctx, user.ID, step, h.now()); {
			case errors.Is(err, storage.ErrConflict):
				reused = true
				return false, nil
			case err != nil:
				return false, err
			}
			return true, nil
		}
		proved = authn.AMROTP
	case "recovery":
		if code == "" {
			v.fieldError("recovery", "Enter one of your recovery codes.")
			v.ShowRecovery = true
			h.renderFactor(w, r, http.StatusBadRequest, fc, user, f, v)
			return
		}
		check.verify = func(ctx context.Context) (bool, error) {
			n, err := h.store.UseRecoveryCode(ctx, user.ID, mfa.HashRecoveryCode(code), h.now())
			if errors.Is(err, storage.ErrNotFound) {
				return false, nil
			}
			remaining = n
			return err == nil, err
		}
		proved = authn.AMROTP
	default:
		h.renderFactor(w, r, http.StatusBadRequest, fc, user, f, &view{Error: "Choose how to confirm it is you."})
		return
	}
	res, err := h.checkCredential(w, r, check)
	if err != nil {
		h.internalError(w, r, "second factor: check", err, "user_id", user.ID)
		return
	}
	switch res.outcome {
	case checkPassed:
	case checkFailed:
		switch {
		case method == "recovery":
			v.ShowRecovery = true
			v.fieldError("recovery", msgWrongRecovery)
		case reused:
			v.fieldError("code", msgCodeUsed)
		default:
			v.fieldError("code", msgWrongCode)
		}
		h.renderFactor(w, r, http.StatusBadRequest, fc, user, f, v)
		return
	case checkLocked, checkLockedNow:
		if res.outcome == checkLockedNow {
			// The password was right and the codes wrong: the user is
			// told at each lock, since the lock alone only slows a
			// guesser down.
			h.mailer.SecondStepLocked(ctx, user.Email, user.Name, h.cfg.LockoutThreshold, h.cfg.LockoutDuration)
		}
		v.Error = msgFactorLockedFn + " " + strings.Replace(res.msg, "Your account has been temporarily locked due to too many failed sign-in attempts.", "The second step is locked.", 1)
		h.renderFactor(w, r, res.status, fc, user, f, v)
		return
	default:
		v.Error = res.msg
		h.renderFactor(w, r, res.status, fc, user, f, v)
		return
	}
	if method == "recovery" {
		h.log.InfoContext(ctx, "recovery code used", "user_id", user.ID, "remaining", remaining)
		h.audit(r, storage.AuditEvent{Action: storage.AuditRecoveryCodeUsed, Actor: user.ID, Subject: user.ID, ClientID: fc.clientID(),
			Detail: map[string]string{"remaining": strconv.Itoa(remaining)}})
		h.mailer.RecoveryCodeUsed(ctx, user.Email, user.Name, remaining)
	}
	sess, err = h.secondStepSession(ctx, w, sess, proved)
	if err != nil {
		h.secondStepFailed(w, r, fc, err, "user_id", user.ID)
		return
	}
	h.log.InfoContext(ctx, "second factor accepted", "user_id", user.ID, "method", method, "session_id", sess.ID)
	h.audit(r, storage.AuditEvent{Action: storage.AuditSignIn, Actor: user.ID, Subject: user.ID, ClientID: fc.clientID(),
		Detail: map[string]string{"session_id": sess.ID, "second_factor": method}})
	h.linkAfterPassword(w, r, sess, user)
	h.finishSignIn(w, r, fc, sess, user)
}

// addSessionFactor records in the session that its user also proved m
// (an authenticator code, a passkey, a password re-entered) now. auth_time
// stays the first factor's: max_age still measures from the sign-in.
func (h *Handler) addSessionFactor(ctx context.Context, sess *storage.Session, m ...string) error {
	amr := authn.AddFactor(sess.AMR, m...)
	if err := h.store.UpdateSessionAuth(ctx, sess.ID, amr, sess.AuthTime); err != nil {
		return err
	}
	sess.AMR = amr
	return nil
}

// recentlyAuthenticated reports whether the session's sign-in, or a
// re-authentication in it ("Confirm it's you", markReauthenticated), is
// recent enough to change factors.
func (h *Handler) recentlyAuthenticated(r *http.Request, sess *storage.Session) bool {
	if h.now().Sub(sess.AuthTime) <= recentAuthWindow {
		return true
	}
	c, err := r.Cookie(h.cookieName(reauthCookie))
	var m reauthMark
	return err == nil && h.factorSealer.open(sealReauth, c.Value, h.now(), &m) == nil && m.SessionID == sess.ID
}

// markReauthenticated opens the window for account changes after a
// re-authentication. It does not move the session's auth_time: the check
// was one factor, and apps read auth_time with amr (max_age=300 with
// acr_values=mfa means both factors within 5 minutes), so a password typed
// now beside a code typed hours ago must not look like a fresh sign-in.
// The mark is a cookie sealed to the session, lasting the window.
func (h *Handler) markReauthenticated(w http.ResponseWriter, sess *storage.Session) error {
	sealed, err := h.factorSealer.seal(sealReauth, reauthMark{SessionID: sess.ID}, h.now().Add(recentAuthWindow))
	if err != nil {
		return err
	}
	h.setCookie(w, reauthCookie, sealed, recentAuthWindow)
	return nil
}

// reauthURL is the page that re-checks the password, then returns to ret.
func reauthURL(ret string) string {
	return "/account/reauth?" + url.Values{"return": {ret}}.Encode()
}

// SecondFactorLockKey is the lockout key of a user's second step (for
// `gatehouse users unlock`, which lifts both locks).
func SecondFactorLockKey(userID string) string { return mfaLockPrefix + userID }
