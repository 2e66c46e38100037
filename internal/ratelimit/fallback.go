package ratelimit

import (
	"context"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"
)

type fallbackLimiter struct {
	primary, fallback Limiter
	logger            *slog.Logger
	down              atomic.Bool // primary failed last time it was asked
}

// NewFallback uses primary, and when it errors uses fallback instead for that
// call, logging the outage once (a warning) and the recovery once (info) with
// slog — never failing open silently and never returning the primary's error
// to the caller.
//
// An error is returned only when fallback fails as well (or the rule is
// invalid); see "When a limiter fails" in the package doc. A nil logger means
// slog.Default().
func NewFallback(primary, fallback Limiter, logger *slog.Logger) Limiter {
	return newFallback(primary, fallback, logger)
}

func newFallback(primary, fallback Limiter, logger *slog.Logger) *fallbackLimiter {
	if logger == nil {
		logger = slog.Default()
	}
	return &fallbackLimiter{primary: primary, fallback: fallback, logger: logger}
}

func (f *fallbackLimiter) Allow(ctx context.Context, rule Rule, key string) (bool, time.Duration, error) {
	// A bad rule is the caller's bug, not an outage of the primary.
	if _, err := rule.validate(); err != nil {
		return false, 0, err
	}
	ok, retry, err := f.primary.Allow(ctx, rule, key)
	if err == nil {
		if f.down.CompareAndSwap(true, false) {
			f.logger.Info("rate limiter: shared limiter is back; limits are shared across instances again")
		}
		return ok, retry, nil
	}
	// A request given up by its caller says nothing about the primary's
	// health; still decide it, through the fallback.
	if ctx.Err() == nil && f.down.CompareAndSwap(false, true) {
		f.logger.Warn("rate limiter: shared limiter unavailable; using the in-process fallback, so limits hold per instance until it is back",
			"err", err)
	}
	ok, retry, ferr := f.fallback.Allow(ctx, rule, key)
	if ferr != nil {
		return false, 0, fmt.Errorf("ratelimit: shared limiter unavailable and fallback failed: %w", ferr)
	}
	return ok, retry, nil
}
