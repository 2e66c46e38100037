// Package ratelimit limits how often something may be done: the sign-in
// UI's sign-in per IP and per email, registration, forgot-password and
// verification resend; the protocol endpoints' per-client budgets (device
// authorization, PAR); the admin API and dynamic registration. It sits in
// internal/ so that op and login can both use it while op never imports
// login.
//
// Every limiter implements GCRA (the generic cell rate algorithm): a Rule of
// Limit events per Period allows a burst of up to Limit events, after which
// one more event becomes available every Period/Limit.
//
// Three implementations are provided:
//   - Memory: in-process, bounded in keys, for single-instance deployments
//     and as the fallback of Redis;
//   - Redis: shared by every instance of a deployment (go-redis +
//     redis_rate), keys hashed so no email or IP address lands in Redis;
//   - NewFallback: Redis first, Memory while Redis is down, the outage and
//     the recovery logged once each.
//
// Open picks the right one for a deployment from REDIS_URL.
//
// # When a limiter fails
//
// This is the one place that says it; the sign-in UI (package login) follows
// it.
//
// Redis down is not a failure. NewFallback, and so Open with a REDIS_URL,
// answers from the in-process limiter while Redis cannot: limits go on
// holding, per instance (n instances let a client through up to n times a
// budget), until Redis answers again. The outage is logged once as a warning
// when it starts and once when it ends, never per request.
//
// A limiter that returns an error could not decide at all (the fallback
// failed too, or the rule is invalid). The caller must refuse the request
// (fail closed), never let it through unlimited: the sign-in UI answers its
// credential and mail steps (sign-in, registration, forgot-password, resend,
// account changes) with 503 Service Unavailable, Retry-After and "We cannot
// check sign-in limits right now. Please try again in a moment."
package ratelimit

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Rule is one limit: at most Limit events per Period for a key (GCRA: bursts
// up to Limit).
//
// Name namespaces the keys of the rule and must be unique per rule: two rules
// with the same Name share their budgets.
type Rule struct {
	Name   string // namespaces keys, e.g. "login-ip", "login-email"
	Limit  int
	Period time.Duration
}

// Limiter decides whether one more event may happen now.
type Limiter interface {
	// Allow consumes one event of key's budget under rule. Over budget:
	// ok=false and retryAfter>0 (time until one more event is allowed).
	// A refused event consumes nothing.
	Allow(ctx context.Context, rule Rule, key string) (ok bool, retryAfter time.Duration, err error)
}

// ErrInvalidRule is returned (wrapped) for a Rule with an empty Name, a Limit
// below 1 or a Period too short to hold Limit events.
var ErrInvalidRule = errors.New("ratelimit: invalid rule")

// validate reports whether r can be used, and returns its emission interval
// (the time one event costs, Period/Limit).
func (r Rule) validate() (time.Duration, error) {
	switch {
	case r.Name == "":
		return 0, fmt.Errorf("%w: empty name", ErrInvalidRule)
	case r.Limit < 1:
		return 0, fmt.Errorf("%w %q: limit %d < 1", ErrInvalidRule, r.Name, r.Limit)
	case r.Period <= 0 || r.Period/time.Duration(r.Limit) <= 0:
		return 0, fmt.Errorf("%w %q: period %s too short for %d events", ErrInvalidRule, r.Name, r.Period, r.Limit)
	}
	return r.Period / time.Duration(r.Limit), nil
}

func (r Rule) String() string {
	return fmt.Sprintf("%s (%d per %s)", r.Name, r.Limit, r.Period)
}
