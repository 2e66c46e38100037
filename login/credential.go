package login

import (
	"context"
	"maps"
	"net/http"
	"time"

	"github.com/gatehouse-id/gatehouse/storage"
)

// Every credential step — the password on the sign-in page and on the
// account page, an authenticator-app code, a recovery code — runs one
// sequence (docs/design.md, "one credential check"):
//
//	rate limits → [hashing slot] → atomic attempt reservation (lockout) →
//	verify → outcome → audit
//
// so that limits, lockout, the timing floor of failed checks and the audit
// trail behave the same on every path. The caller renders the outcome in its
// own words (a form error, a field error), from the result.
//
// A password check takes its hashing slot before the attempt is counted:
// when the hasher is overloaded the request is refused as busy (503) having
// spent nothing of the lockout budget, so a flood cannot lock anyone out,
// and an unknown address waits for its slot like a known one. The rate
// limits come first because they are cheap and keep one client from filling
// the hash queue; a refused request has spent its rate-limit allowance, as
// any request does.

// credentialCheck describes one step.
type credentialCheck struct {
	// limits are checked first, in order.
	limits []limitKey
	// lockKey counts consecutive failures for the lockout: the submitted
	// address for a password, mfaLockPrefix+user ID for a second factor
	// (a key no normalised address can be).
	lockKey string
	// verify checks the credential. It must take as long for a wrong
	// credential as for an unknown account. An error is a failure of ours
	// (the store, password.ErrBusy), not a wrong credential. ctx holds the
	// hashing slot when password is set.
	verify func(ctx context.Context) (bool, error)
	// password: verify hashes a password. The check then holds a hashing
	// slot (Hasher.Reserve) from before the attempt is counted until verify
	// returns, and a failed check takes at least Config.FailedCheckFloor.
	password bool
	// Audit: who acted and about whom; subject may be computed lazily
	// (the password form looks the address up only when it has to).
	actor    string
	subject  func() string
	clientID string
	// detail is merged into the failure events (reason is added).
	detail map[string]string
	// onFail, when set, is called for every refusal (metrics, log lines)
	// with the outcome.
	onFail func(checkOutcome, checkResult)
}

// checkOutcome is how a step ended.
type checkOutcome int

const (
	checkPassed    checkOutcome = iota
	checkLimited                // a rate limit (or the limiter) refused; status and msg set
	checkLocked                 // locked before the check; nothing was verified
	checkFailed                 // the credential was wrong
	checkLockedNow              // wrong, and this failure locked the key
)

// checkResult is the outcome with what the page needs.
type checkResult struct {
	outcome checkOutcome
	// status and msg for checkLimited, checkLocked and checkLockedNow
	// (the lockout message with the real remaining time).
	status int
	msg    string
	until  time.Time
}

// checkCredential runs c. An error is ours (the store, a busy hasher:
// password.ErrBusy, which nothing was counted for); the caller shows the
// 500/503 page for it.
func (h *Handler) checkCredential(w http.ResponseWriter, r *http.Request, c credentialCheck) (checkResult, error) {
	ctx := r.Context()
	fail := func(res checkResult, why string, lockout bool) (checkResult, error) {
		subject := c.subject()
		d := map[string]string{"reason": why}
		maps.Copy(d, c.detail)
		d["reason"] = why
		h.audit(r, storage.AuditEvent{Action: storage.AuditSignInFailed, Actor: c.actor, Subject: subject, ClientID: c.clientID, Detail: d})
		if lockout {
			h.metrics.lockout()
			h.audit(r, storage.AuditEvent{Action: storage.AuditLockout, Actor: storage.ActorSystem, Subject: subject, ClientID: c.clientID, Detail: lockedUntil(res.until)})
		}
		if c.onFail != nil {
			c.onFail(res.outcome, res)
		}
		return res, nil
	}

	// 1. Rate limits.
	if ok, wait := h.allow(ctx, c.limits...); !ok {
		status, msg := tooMany(w, wait)
		res := checkResult{outcome: checkLimited, status: status, msg: msg}
		if c.onFail != nil {
			c.onFail(res.outcome, res)
		}
		return res, nil
	}
	// 2. A hashing slot, before anything is counted: busy costs nothing.
	release := func() {}
	if c.password {
		var err error
		if ctx, release, err = h.hasher.Reserve(ctx); err != nil {
			return checkResult{}, err
		}
		defer release()
	}
	// 3. Lockout: reserve this check before it runs, so parallel guesses
	// cannot overshoot the threshold.
	att, err := h.reserveAttempt(ctx, c.lockKey)
	if err != nil {
		return checkResult{}, err
	}
	if !att.Allowed {
		return fail(checkResult{outcome: checkLocked, status: http.StatusForbidden, msg: h.lockedMessage(att.LockedUntil), until: att.LockedUntil}, "locked", false)
	}
	// 4. The credential.
	start := time.Now()
	ok, err := c.verify(ctx)
	release()
	if err != nil {
		return checkResult{}, err
	}
	if !ok && c.password {
		h.failedCheckFloor(ctx, start)
	}
	if !ok {
		if !att.LockedUntil.IsZero() {
			// This failure reached the threshold.
			return fail(checkResult{outcome: checkLockedNow, status: http.StatusForbidden, msg: h.lockedMessage(att.LockedUntil), until: att.LockedUntil}, "invalid_credentials", true)
		}
		return fail(checkResult{outcome: checkFailed, status: http.StatusBadRequest}, "invalid_credentials", false)
	}
	// 5. Success lifts the count (and a lock this very attempt set).
	h.clearFailures(ctx, c.lockKey)
	return checkResult{outcome: checkPassed}, nil
}

// failedCheckFloor waits until Config.FailedCheckFloor has passed since
// start (or ctx ends). An unknown email is checked against a dummy hash of
// the configured algorithm, but a user imported with a bcrypt hash costs
// several times more to check than argon2id, and without the floor that
// difference would tell which addresses have accounts. The hashing slot is
// free by then: waiting out the floor costs no processor.
func (h *Handler) failedCheckFloor(ctx context.Context, start time.Time) {
	d := h.failFloor - time.Since(start)
	if d <= 0 {
		return
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}
