package ratelimit

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"log/slog"
	"os"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// testRedisURL is the Redis the tests use: GATEHOUSE_TEST_REDIS_URL, by
// default the local one.
func testRedisURL() string {
	if u := os.Getenv("GATEHOUSE_TEST_REDIS_URL"); u != "" {
		return u
	}
	return "redis://127.0.0.1:6379/0"
}

// newTestRedis returns a new client of the test Redis, closed at the end of
// the test. Without a reachable Redis the test is skipped, or fails on CI.
func newTestRedis(t *testing.T) *redis.Client {
	t.Helper()
	u := testRedisURL()
	opts, err := redis.ParseURL(u)
	if err != nil {
		t.Fatalf("GATEHOUSE_TEST_REDIS_URL: %v", err)
	}
	opts.DialerRetries = 1 // an absent Redis should skip fast
	client := redis.NewClient(opts)
	t.Cleanup(func() { _ = client.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	if err := client.Ping(ctx).Err(); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("Redis at %s unreachable (required on CI): %v", opts.Addr, err)
		}
		t.Skipf("SKIP: Redis at %s unreachable (%v); start redis-server or set GATEHOUSE_TEST_REDIS_URL", opts.Addr, err)
	}
	return client
}

// randomRule returns a rule with a fresh name, so tests sharing a Redis do
// not see each other's keys.
func randomRule(t *testing.T, limit int, period time.Duration) Rule {
	t.Helper()
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return Rule{Name: "test-" + hex.EncodeToString(b), Limit: limit, Period: period}
}

// cleanupRule deletes the rule's keys at the end of the test (they would
// expire anyway).
func cleanupRule(t *testing.T, client *redis.Client, rule Rule) {
	t.Cleanup(func() {
		ctx := context.Background()
		keys, _ := client.Keys(ctx, "*"+rule.Name+"*").Result()
		if len(keys) > 0 {
			client.Del(ctx, keys...)
		}
	})
}

func TestRedisLimitAndRetryAfter(t *testing.T) {
	client := newTestRedis(t)
	l := NewRedis(client)
	rule := randomRule(t, 3, time.Minute)
	cleanupRule(t, client, rule)

	first := time.Now()
	for range 3 {
		mustAllow(t, l, rule, "a@example.com")
	}
	retry := mustRefuse(t, l, rule, "a@example.com")
	// One event every 20s, measured on the Redis server's clock from the
	// first call: what the calls took (a loaded machine) is already spent.
	if retry > 20*time.Second || retry < 20*time.Second-time.Since(first)-50*time.Millisecond {
		t.Fatalf("retryAfter = %s after %s, want about 20s", retry, time.Since(first))
	}
	// Keys and rules are independent.
	mustAllow(t, l, rule, "b@example.com")
	other := randomRule(t, 1, time.Minute)
	cleanupRule(t, client, other)
	mustAllow(t, l, other, "a@example.com")
	mustRefuse(t, l, other, "a@example.com")
}

func TestRedisRefills(t *testing.T) {
	client := newTestRedis(t)
	l := NewRedis(client)
	// 2 per 2 s: a slot every second, so the refusal below does not depend
	// on three round trips fitting in a few milliseconds.
	rule := randomRule(t, 2, 2*time.Second)
	cleanupRule(t, client, rule)

	mustAllow(t, l, rule, "k")
	mustAllow(t, l, rule, "k")
	retry := mustRefuse(t, l, rule, "k")
	if retry > time.Second {
		t.Fatalf("retryAfter = %s, want at most 1s", retry)
	}
	time.Sleep(retry + 5*time.Millisecond) // Redis keeps its own clock
	mustAllow(t, l, rule, "k")
}

// Two server instances, each with its own client, share one budget.
func TestRedisSharedAcrossInstances(t *testing.T) {
	a := NewRedis(newTestRedis(t))
	client := newTestRedis(t)
	b := NewRedis(client)
	rule := randomRule(t, 5, time.Hour)
	cleanupRule(t, client, rule)

	for i := range 5 {
		l := a
		if i%2 == 1 {
			l = b
		}
		mustAllow(t, l, rule, "203.0.113.5")
	}
	mustRefuse(t, a, rule, "203.0.113.5")
	mustRefuse(t, b, rule, "203.0.113.5")
}

func TestRedisConcurrentExactBudget(t *testing.T) {
	clients := []*redis.Client{newTestRedis(t), newTestRedis(t)}
	rule := randomRule(t, 20, time.Hour)
	cleanupRule(t, clients[0], rule)

	var allowed atomic.Int64
	var wg sync.WaitGroup
	for g := range 10 {
		l := NewRedis(clients[g%2])
		wg.Go(func() {
			for range 5 {
				ok, _, err := l.Allow(context.Background(), rule, "k")
				if err != nil {
					t.Error(err)
					return
				}
				if ok {
					allowed.Add(1)
				}
			}
		})
	}
	wg.Wait()
	if got := allowed.Load(); got != 20 {
		t.Fatalf("allowed %d of 50 concurrent events under a budget of 20", got)
	}
}

// Keys hold no email or IP address, and all expire.
func TestRedisKeysHashedWithTTL(t *testing.T) {
	client := newTestRedis(t)
	l := NewRedis(client)
	rule := randomRule(t, 3, time.Minute)
	cleanupRule(t, client, rule)

	const email = "Person.Name+tag@example.com"
	mustAllow(t, l, rule, email)
	mustAllow(t, l, rule, "198.51.100.23")

	ctx := context.Background()
	keys, err := client.Keys(ctx, "*"+rule.Name+"*").Result()
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) != 2 {
		t.Fatalf("keys = %q, want 2", keys)
	}
	re := regexp.MustCompile(`^rate:gh:rl:` + rule.Name + `:[0-9a-f]{64}$`)
	for _, k := range keys {
		if !re.MatchString(k) {
			t.Errorf("key %q does not match %s", k, re)
		}
		for _, pii := range []string{"example", "Person", "198.51"} {
			if strings.Contains(k, pii) {
				t.Errorf("key %q contains %q", k, pii)
			}
		}
		ttl, err := client.TTL(ctx, k).Result()
		if err != nil {
			t.Fatal(err)
		}
		if ttl <= 0 || ttl > time.Minute {
			t.Errorf("TTL(%q) = %s, want within (0, 1m]", k, ttl)
		}
	}
}

// closedRedis is a client of a port where no Redis listens.
func closedRedis(t *testing.T) *redis.Client {
	c := redis.NewClient(&redis.Options{
		Addr:          "127.0.0.1:1",
		DialTimeout:   200 * time.Millisecond,
		DialerRetries: 1,
		MaxRetries:    -1,
	})
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// syncBuffer is a bytes.Buffer safe for concurrent writes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func bufferLogger() (*slog.Logger, *syncBuffer) {
	buf := &syncBuffer{}
	return slog.New(slog.NewTextHandler(buf, &slog.HandlerOptions{Level: slog.LevelDebug})), buf
}

func TestFallbackToMemoryWhenRedisDown(t *testing.T) {
	logger, logs := bufferLogger()
	clock := newFakeClock()
	l := NewFallback(NewRedis(closedRedis(t)), NewMemory(100, clock.Now), logger)
	rule := Rule{Name: "login-ip", Limit: 2, Period: time.Minute}

	mustAllow(t, l, rule, "192.0.2.1")
	mustAllow(t, l, rule, "192.0.2.1")
	if retry := mustRefuse(t, l, rule, "192.0.2.1"); retry != 30*time.Second {
		t.Fatalf("retryAfter = %s, want 30s", retry)
	}
	mustAllow(t, l, rule, "192.0.2.2")

	out := logs.String()
	if n := strings.Count(out, "shared limiter unavailable"); n != 1 {
		t.Fatalf("outage logged %d times, want once; logs:\n%s", n, out)
	}
	if !strings.Contains(out, "level=WARN") || !strings.Contains(out, "127.0.0.1:1") {
		t.Fatalf("outage log lacks level or cause:\n%s", out)
	}
	if strings.Contains(out, "192.0.2.") {
		t.Fatalf("logs contain a rate-limit key:\n%s", out)
	}
}

// flakyLimiter fails while down is set: an outage of the shared limiter that
// a test can end.
type flakyLimiter struct {
	down  atomic.Bool
	inner Limiter
}

func (f *flakyLimiter) Allow(ctx context.Context, rule Rule, key string) (bool, time.Duration, error) {
	if f.down.Load() {
		return false, 0, errors.New("primary secret failure")
	}
	return f.inner.Allow(ctx, rule, key)
}

func TestFallbackLogsOutageAndRecoveryOnce(t *testing.T) {
	logger, logs := bufferLogger()
	clock := newFakeClock()
	primary := &flakyLimiter{inner: NewMemory(100, clock.Now)}
	l := NewFallback(primary, NewMemory(100, clock.Now), logger)
	rule := Rule{Name: "resend-email", Limit: 100, Period: time.Minute}

	for round := range 2 {
		primary.down.Store(true)
		for range 3 {
			mustAllow(t, l, rule, "k")
		}
		primary.down.Store(false)
		for range 3 {
			mustAllow(t, l, rule, "k")
		}
		out := logs.String()
		if n := strings.Count(out, "shared limiter unavailable"); n != round+1 {
			t.Fatalf("round %d: %d outages logged, want %d:\n%s", round, n, round+1, out)
		}
		if n := strings.Count(out, "shared limiter is back"); n != round+1 {
			t.Fatalf("round %d: %d recoveries logged, want %d:\n%s", round, n, round+1, out)
		}
	}

	// A caller giving up is no outage; the call is still decided.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	primary.down.Store(true)
	before := logs.String()
	if ok, _, err := l.Allow(ctx, rule, "k"); !ok || err != nil {
		t.Fatalf("Allow with a cancelled context = %v, %v", ok, err)
	}
	if logs.String() != before {
		t.Fatalf("cancelled call logged an outage:\n%s", logs.String())
	}
}

func TestFallbackErrors(t *testing.T) {
	logger, _ := bufferLogger()
	primary := &flakyLimiter{}
	primary.down.Store(true)
	broken := &flakyLimiter{}
	broken.down.Store(true)
	l := NewFallback(primary, broken, logger)

	// Both down: an error (the caller refuses), never a silent allow.
	ok, _, err := l.Allow(context.Background(), Rule{Name: "x", Limit: 1, Period: time.Second}, "k")
	if ok || err == nil {
		t.Fatalf("Allow with both limiters down = %v, %v; want an error", ok, err)
	}
	// A bad rule is reported as such.
	ok, _, err = l.Allow(context.Background(), Rule{Name: "x"}, "k")
	if ok || !errors.Is(err, ErrInvalidRule) {
		t.Fatalf("Allow(bad rule) = %v, %v", ok, err)
	}
}

func TestOpenMemoryOnly(t *testing.T) {
	clock := newFakeClock()
	l, closeFn, err := Open(context.Background(), "", nil, clock.Now)
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := closeFn(); err != nil {
			t.Error(err)
		}
	}()
	if _, ok := l.(*Memory); !ok {
		t.Fatalf("Open(\"\") = %T, want *Memory", l)
	}
	rule := Rule{Name: "login-ip", Limit: 1, Period: time.Minute}
	mustAllow(t, l, rule, "k")
	mustRefuse(t, l, rule, "k")
}

func TestOpenInvalidURL(t *testing.T) {
	for _, u := range []string{
		"http://127.0.0.1:6379",
		"redis://user:hunter2@127.0.0.1:6379/notadb",
		"redis://user:hunter2@127.0.0.1:port/0",
		"redis://127.0.0.1:6379/0?dial_timeout=soon",
	} {
		l, closeFn, err := Open(context.Background(), u, nil, nil)
		if err == nil {
			_ = closeFn()
			t.Errorf("Open(%q) = %T, nil; want an error", u, l)
			continue
		}
		if !strings.Contains(err.Error(), "REDIS_URL") {
			t.Errorf("Open(%q) error %q does not name REDIS_URL", u, err)
		}
		if strings.Contains(err.Error(), "hunter2") {
			t.Errorf("Open(%q) error %q leaks the password", u, err)
		}
	}
}

func TestOpenRedis(t *testing.T) {
	client := newTestRedis(t) // skips without Redis
	logger, logs := bufferLogger()
	l, closeFn, err := Open(context.Background(), testRedisURL(), logger, nil)
	if err != nil {
		t.Fatal(err)
	}
	rule := randomRule(t, 2, time.Minute)
	cleanupRule(t, client, rule)
	other := NewRedis(client) // another instance
	mustAllow(t, l, rule, "k")
	mustAllow(t, other, rule, "k")
	mustRefuse(t, l, rule, "k")
	if err := closeFn(); err != nil {
		t.Fatal(err)
	}
	if logs.String() != "" {
		t.Fatalf("unexpected logs:\n%s", logs.String())
	}
}

func TestOpenRedisDownAtStartup(t *testing.T) {
	logger, logs := bufferLogger()
	start := time.Now()
	l, closeFn, err := Open(context.Background(), "redis://127.0.0.1:1/0", logger, newFakeClock().Now)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = closeFn() }()
	rule := Rule{Name: "register-ip", Limit: 1, Period: time.Minute}
	mustAllow(t, l, rule, "k")
	mustRefuse(t, l, rule, "k")
	// Open's client settings keep an outage cheap for the sign-in path.
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("Open and two checks against a closed port took %s", d)
	}
	out := logs.String()
	if n := strings.Count(out, "unavailable") + strings.Count(out, "unreachable"); n != 1 {
		t.Fatalf("outage logged %d times, want once:\n%s", n, out)
	}
}
