package ratelimit

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"time"

	"github.com/go-redis/redis_rate/v10"
	"github.com/redis/go-redis/v9"
)

// Redis is a GCRA limiter whose state lives in Redis, so every instance of a
// deployment shares one budget per key. The GCRA step runs as one Lua script
// (github.com/go-redis/redis_rate), atomically and on the Redis server's
// clock. Keys are "rate:gh:rl:<rule>:<sha256 hex of key>" (redis_rate adds
// "rate:"), so no email or IP address is stored, and each carries a TTL of
// the time until its budget has fully refilled.
type Redis struct {
	rl *redis_rate.Limiter
}

var _ Limiter = (*Redis)(nil)

// NewRedis returns a limiter sharing its state through client. The caller
// keeps ownership of client.
func NewRedis(client *redis.Client) *Redis {
	return &Redis{rl: redis_rate.NewLimiter(client)}
}

// Allow implements Limiter. It fails when Redis cannot be reached; wrap it
// with NewFallback to keep limiting then.
func (r *Redis) Allow(ctx context.Context, rule Rule, key string) (bool, time.Duration, error) {
	if _, err := rule.validate(); err != nil {
		return false, 0, err
	}
	res, err := r.rl.Allow(ctx, redisKey(rule.Name, key), redis_rate.Limit{
		Rate:   rule.Limit,
		Burst:  rule.Limit,
		Period: rule.Period,
	})
	if err != nil {
		return false, 0, fmt.Errorf("ratelimit: redis: %w", err)
	}
	if res.Allowed > 0 {
		return true, 0, nil
	}
	retry := res.RetryAfter
	if retry <= 0 { // rounding in the script; never report "now" when refusing
		retry = time.Millisecond
	}
	return false, retry, nil
}

// redisKey is the key of (rule, key) in Redis, before redis_rate's "rate:"
// prefix.
func redisKey(rule, key string) string {
	sum := sha256.Sum256([]byte(key))
	return "gh:rl:" + rule + ":" + hex.EncodeToString(sum[:])
}
