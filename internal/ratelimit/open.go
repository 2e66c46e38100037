package ratelimit

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// Client settings used when REDIS_URL does not set its own (dial_timeout,
// read_timeout, write_timeout, max_retries query parameters). A rate-limit
// check sits on the sign-in path, so a Redis that does not answer should cost
// a user far less than go-redis's defaults (5 s dial, 3 s read/write, 3
// retries of up to 5 dial attempts each) before the fallback decides. Once
// dials keep failing, go-redis fails fast and probes in the background, so
// only the first calls of an outage pay these timeouts.
const (
	defaultDialTimeout = time.Second
	defaultIOTimeout   = 500 * time.Millisecond
	defaultMaxRetries  = 1 // one retry: a pooled connection found broken
	dialAttempts       = 1 // per try; go-redis has no URL parameter for it
	startupPingTimeout = 5 * time.Second
)

// Open returns the limiter for a deployment: redisURL "" ⇒ memory only;
// otherwise Redis (redis.ParseURL; an invalid URL is an error naming
// REDIS_URL) with an in-memory fallback. close releases the Redis client.
//
// A Redis that cannot be reached at startup is not an error: it is logged,
// and the in-memory fallback limits until Redis answers (the recovery is
// logged too). A nil logger means slog.Default(); a nil now means time.Now
// (it drives the in-memory limiter only: Redis uses its server clock).
func Open(ctx context.Context, redisURL string, logger *slog.Logger, now func() time.Time) (l Limiter, close func() error, err error) {
	if logger == nil {
		logger = slog.Default()
	}
	mem := NewMemory(DefaultMaxKeys, now)
	redisURL = strings.TrimSpace(redisURL)
	if redisURL == "" {
		return mem, func() error { return nil }, nil
	}

	opts, err := redis.ParseURL(redisURL)
	if err != nil {
		// url.Error repeats the whole URL, password included: keep its cause.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return nil, nil, fmt.Errorf("REDIS_URL: invalid Redis URL: %w", err)
	}
	q := queryOf(redisURL)
	if !q.Has("dial_timeout") {
		opts.DialTimeout = defaultDialTimeout
	}
	if !q.Has("read_timeout") {
		opts.ReadTimeout = defaultIOTimeout
	}
	if !q.Has("write_timeout") {
		opts.WriteTimeout = defaultIOTimeout
	}
	if !q.Has("max_retries") {
		opts.MaxRetries = defaultMaxRetries
	}
	opts.DialerRetries = dialAttempts
	client := redis.NewClient(opts)

	f := newFallback(NewRedis(client), mem, logger)
	pingCtx, cancel := context.WithTimeout(ctx, startupPingTimeout)
	defer cancel()
	if err := client.Ping(pingCtx).Err(); err != nil {
		if ctx.Err() != nil {
			_ = client.Close()
			return nil, nil, ctx.Err()
		}
		f.down.Store(true) // the first failing call should not log it again
		logger.Warn("rate limiter: Redis (REDIS_URL) unreachable at startup; using the in-process fallback, so limits hold per instance until it is back",
			"addr", opts.Addr, "err", err)
	}
	return f, client.Close, nil
}

func queryOf(rawURL string) url.Values {
	u, err := url.Parse(rawURL)
	if err != nil {
		return url.Values{}
	}
	return u.Query()
}
