package login

import (
	"context"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/gatehouse-id/gatehouse/internal/ratelimit"
	"github.com/gatehouse-id/gatehouse/storage"
)

// rules are the configured rate limits as ratelimit.Rules; a rule with Limit
// 0 is switched off.
type rules struct {
	signInEmail, signInIP ratelimit.Rule
	registerIP            ratelimit.Rule
	forgotEmail, forgotIP ratelimit.Rule
	resendEmail, resendIP ratelimit.Rule
	accountUser           ratelimit.Rule
	// The device flow's code entry (deviceflow.go).
	deviceCodeIP, deviceCodeSession, deviceCodeAll ratelimit.Rule
}

func rule(name string, set RateLimit, limit int, period time.Duration) ratelimit.Rule {
	switch {
	case set.Limit < 0:
		return ratelimit.Rule{Name: name} // off
	case set.Limit > 0:
		limit = set.Limit
		if set.Period > 0 {
			period = set.Period
		}
	case set.Period > 0:
		period = set.Period
	}
	return ratelimit.Rule{Name: name, Limit: limit, Period: period}
}

func newRules(c *Config) rules {
	ip, session, all := deviceCodeRules(c)
	return rules{
		deviceCodeIP: ip, deviceCodeSession: session, deviceCodeAll: all,
		signInEmail: rule("login-email", c.SignInPerEmail, 10, time.Minute),
		signInIP:    rule("login-ip", c.SignInPerIP, 30, time.Minute),
		registerIP:  rule("register-ip", c.RegisterPerIP, 10, time.Hour),
		forgotEmail: rule("forgot-email", c.ForgotPerEmail, 5, time.Hour),
		forgotIP:    rule("forgot-ip", c.ForgotPerIP, 20, time.Hour),
		resendEmail: rule("resend-email", c.ResendPerEmail, 5, time.Hour),
		resendIP:    rule("resend-ip", c.ResendPerIP, 20, time.Hour),
		accountUser: rule("account-user", c.AccountPerUser, 10, time.Minute),
	}
}

// limitKey pairs a rule with the key it applies to in one request.
type limitKey struct {
	rule ratelimit.Rule
	key  string
}

// clientIP is the rate-limit key of the request's client (IPv6: its /64,
// ratelimit.AddrKey).
func (h *Handler) clientIP(r *http.Request) string {
	a := ratelimit.ClientIP(r, h.cfg.TrustedProxies)
	if !a.IsValid() {
		return r.RemoteAddr
	}
	return ratelimit.AddrKey(a.String())
}

// allow checks the limits in order and reports the wait when one refuses. A
// limiter that cannot answer refuses (fail closed, as the package doc of
// ratelimit says): wait is then limiterDown, which tooMany turns into a 503
// with Retry-After.
func (h *Handler) allow(ctx context.Context, keys ...limitKey) (bool, time.Duration) {
	for _, k := range keys {
		if k.rule.Limit <= 0 {
			continue
		}
		ok, wait, err := h.limiter.Allow(ctx, k.rule, k.key)
		if err != nil {
			h.log.ErrorContext(ctx, "rate limiter failed; request refused", "rule", k.rule.Name, "err", err)
			return false, limiterDown
		}
		if !ok {
			h.log.InfoContext(ctx, "rate limited", "rule", k.rule.Name)
			return false, wait
		}
	}
	return true, 0
}

// seconds rounds d up to whole seconds, at least 1.
func seconds(d time.Duration) int {
	s := int(math.Ceil(d.Seconds()))
	return max(s, 1)
}

// minutes rounds d up to whole minutes, at least 1.
func minutes(d time.Duration) int {
	m := int(math.Ceil(d.Minutes()))
	return max(m, 1)
}

// limiterDown is the wait allow reports when the limiter could not answer;
// a real wait is never negative.
const limiterDown time.Duration = -1

// msgLimiterDown answers a request whose limits could not be checked.
const msgLimiterDown = "We cannot check sign-in limits right now. Please try again in a moment."

// tooMany sets Retry-After and returns the status and message for a request
// allow refused: 429 when a limit was reached, 503 when the limiter could
// not answer (not the client's doing).
func tooMany(w http.ResponseWriter, wait time.Duration) (int, string) {
	if wait == limiterDown {
		w.Header().Set("Retry-After", "5")
		return http.StatusServiceUnavailable, msgLimiterDown
	}
	s := seconds(wait)
	w.Header().Set("Retry-After", strconv.Itoa(s))
	return http.StatusTooManyRequests, fmt.Sprintf("Too many attempts. Please try again in %d seconds.", s)
}

func plural(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return strconv.Itoa(n) + " " + many
}

// lockedMessage is the lockout message with the real remaining time.
func (h *Handler) lockedMessage(until time.Time) string {
	return "Your account has been temporarily locked due to too many failed sign-in attempts. Please try again in " +
		plural(minutes(until.Sub(h.now())), "minute", "minutes") + "."
}

// reserveAttempt counts a password check against key's lockout budget before
// the check runs (docs/design.md). ok=false means the key is locked: do not check
// the password.
func (h *Handler) reserveAttempt(ctx context.Context, key string) (storage.LoginAttempt, error) {
	return h.store.RegisterLoginAttempt(ctx, key, h.now(), h.cfg.LockoutThreshold, h.cfg.LockoutDuration)
}

// clearFailures resets key's lockout counter after a correct password.
func (h *Handler) clearFailures(ctx context.Context, key string) {
	if err := h.store.ClearLoginFailures(ctx, key); err != nil {
		h.log.WarnContext(ctx, "clear sign-in failures", "err", err)
	}
}

// background runs work started by a request but not awaited by it, so the
// response does not depend on it (timing included).
type background struct {
	wg  sync.WaitGroup
	sem chan struct{}
	mu  sync.Mutex
}

// maxBackground bounds concurrent background jobs; a request waits for a slot.
const maxBackground = 32

// backgroundTimeout bounds one background job.
const backgroundTimeout = 30 * time.Second

// inBackground starts fn with a context detached from the request's
// cancellation. It waits for a slot while ctx lives. A panic in fn is logged,
// not fatal.
func (h *Handler) inBackground(ctx context.Context, what string, fn func(ctx context.Context)) {
	b := &h.bg
	b.mu.Lock()
	if b.sem == nil {
		b.sem = make(chan struct{}, maxBackground)
	}
	sem := b.sem
	b.mu.Unlock()
	select {
	case sem <- struct{}{}:
	case <-ctx.Done():
		return
	}
	b.wg.Add(1)
	go func() {
		defer b.wg.Done()
		defer func() { <-sem }()
		defer func() {
			if v := recover(); v != nil {
				h.log.ErrorContext(ctx, "panic in background job", "job", what, "panic", v)
			}
		}()
		bctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), backgroundTimeout)
		defer cancel()
		fn(bctx)
	}()
}

func (b *background) wait(ctx context.Context) error {
	done := make(chan struct{})
	go func() {
		b.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
