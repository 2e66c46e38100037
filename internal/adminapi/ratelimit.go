package adminapi

import (
	"context"
	"math"
	"net/http"
	"net/netip"
	"strconv"
	"sync"
	"time"

	"github.com/gatehouse-id/gatehouse/internal/ratelimit"
)

// Rate is a limit of Limit requests per Period (GCRA: bursts up to Limit).
type Rate struct {
	Limit  int
	Period time.Duration
}

// Limits are the API's rate limits; a zero Rate takes the default.
type Limits struct {
	// FailedAuthPerIP bounds requests refused for want of a valid token
	// (401), per client address (an IPv6 /64): the API is no oracle for
	// guessing tokens. Default 10 per minute.
	FailedAuthPerIP Rate
	// PerCaller bounds authenticated requests per token's user, else its
	// client. Default 600 per minute: automation, not abuse.
	PerCaller Rate
}

func (r Rate) rule(name string, def Rate) ratelimit.Rule {
	if r.Limit <= 0 {
		r = def
	}
	return ratelimit.Rule{Name: name, Limit: r.Limit, Period: r.Period}
}

// limits is the API's rate limiting: the Limiter with its two rules, and
// the addresses the failed-authentication rule has refused.
type limits struct {
	limiter    ratelimit.Limiter
	failedAuth ratelimit.Rule
	perCaller  ratelimit.Rule
	blocked    blockList
	ip         func(*http.Request) string
	api        *API
}

func newLimits(a *API, cfg Config) *limits {
	if cfg.Limiter == nil {
		return nil
	}
	now := cfg.Now
	if now == nil {
		now = time.Now
	}
	return &limits{
		limiter:    cfg.Limiter,
		failedAuth: cfg.Limits.FailedAuthPerIP.rule("adminapi-auth-ip", Rate{10, time.Minute}),
		perCaller:  cfg.Limits.PerCaller.rule("adminapi-caller", Rate{600, time.Minute}),
		blocked:    blockList{now: now, until: map[string]time.Time{}},
		ip:         cfg.ClientIP,
		api:        a,
	}
}

// limitAuth wraps the token check. A failed check (401) is counted against
// the client address; once the address is over its budget, its requests
// are refused with 429 before any token is looked at, until the budget
// refills.
//
// The limiter (internal/ratelimit) can only consume an event, not look at a
// budget without spending it, so the refusal is remembered here, per
// instance: with a shared (Redis) limiter each further instance lets one
// more failure through before it refuses too.
func (l *limits) limitAuth(next http.Handler) http.Handler {
	if l == nil {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		key := l.ipKey(r)
		if wait, blocked := l.blocked.check(key); blocked {
			tooMany(w, wait)
			return
		}
		sw := &statusWriter{ResponseWriter: w}
		next.ServeHTTP(sw, r)
		if sw.status != http.StatusUnauthorized {
			return
		}
		// The request is answered; what is left is to count it.
		ok, wait, err := l.limiter.Allow(context.WithoutCancel(r.Context()), l.failedAuth, key)
		switch {
		case err != nil:
			l.api.log.ErrorContext(r.Context(), "rate limiter failed; failed authentication not counted", "rule", l.failedAuth.Name, "err", err)
		case !ok:
			l.api.log.InfoContext(r.Context(), "rate limited", "rule", l.failedAuth.Name)
			l.blocked.add(key, wait)
		}
	})
}

// limitCaller limits the requests of an authenticated caller: the token's
// user, else its client. It runs after authorize, and hands the handlers
// the response writer limitAuth was given.
func (l *limits) limitCaller(next http.Handler) http.Handler {
	if l == nil {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if sw, ok := w.(*statusWriter); ok {
			w = sw.ResponseWriter
		}
		actor := actorOf(r)
		key := "client:" + actor.ClientID
		if actor.UserID != "" {
			key = "user:" + actor.UserID
		}
		ok, wait, err := l.limiter.Allow(r.Context(), l.perCaller, key)
		if err != nil {
			// Fail closed (internal/ratelimit's rule): not the caller's doing.
			l.api.log.ErrorContext(r.Context(), "rate limiter failed; request refused", "rule", l.perCaller.Name, "err", err)
			w.Header().Set("Retry-After", "5")
			writeProblem(w, http.StatusServiceUnavailable, "unavailable", "Service unavailable", "rate limits cannot be checked right now; retry shortly")
			return
		}
		if !ok {
			l.api.log.InfoContext(r.Context(), "rate limited", "rule", l.perCaller.Name)
			tooMany(w, wait)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// ipKey is the rate-limit key of the request's client address: one IPv6
// subscriber usually has a whole /64 (as the sign-in pages count).
func (l *limits) ipKey(r *http.Request) string {
	a, err := netip.ParseAddr(l.ip(r))
	if err != nil {
		return "unknown"
	}
	if a.Is6() {
		if p, err := a.Prefix(64); err == nil {
			return p.String()
		}
	}
	return a.String()
}

func tooMany(w http.ResponseWriter, wait time.Duration) {
	s := max(int(math.Ceil(wait.Seconds())), 1)
	w.Header().Set("Retry-After", strconv.Itoa(s))
	writeProblem(w, http.StatusTooManyRequests, "rate_limited", "Too many requests", "too many requests; retry after "+strconv.Itoa(s)+" seconds")
}

// statusWriter records the status of the answer.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(status int) {
	if w.status == 0 {
		w.status = status
	}
	w.ResponseWriter.WriteHeader(status)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// maxBlocked bounds the block list. A full list takes no more addresses
// until some expire; the limiter still counts their failures.
const maxBlocked = 10_000

// blockList is the addresses refused by the failed-authentication rule,
// until their budget refills.
type blockList struct {
	now   func() time.Time
	mu    sync.Mutex
	until map[string]time.Time
}

func (b *blockList) check(key string) (time.Duration, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	t, ok := b.until[key]
	if !ok {
		return 0, false
	}
	wait := t.Sub(b.now())
	if wait <= 0 {
		delete(b.until, key)
		return 0, false
	}
	return wait, true
}

func (b *blockList) add(key string, wait time.Duration) {
	b.mu.Lock()
	defer b.mu.Unlock()
	now := b.now()
	if len(b.until) >= maxBlocked {
		for k, t := range b.until {
			if !t.After(now) {
				delete(b.until, k)
			}
		}
		if len(b.until) >= maxBlocked {
			return
		}
	}
	b.until[key] = now.Add(wait)
}
