package ratelimit

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// fakeClock is a settable clock, safe for concurrent use.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newFakeClock() *fakeClock {
	return &fakeClock{t: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func mustAllow(t *testing.T, l Limiter, rule Rule, key string) {
	t.Helper()
	ok, retry, err := l.Allow(context.Background(), rule, key)
	if err != nil || !ok || retry != 0 {
		t.Fatalf("Allow(%s, %q) = %v, %v, %v; want allowed", rule.Name, key, ok, retry, err)
	}
}

func mustRefuse(t *testing.T, l Limiter, rule Rule, key string) time.Duration {
	t.Helper()
	ok, retry, err := l.Allow(context.Background(), rule, key)
	if err != nil || ok || retry <= 0 {
		t.Fatalf("Allow(%s, %q) = %v, %v, %v; want refused with retryAfter > 0", rule.Name, key, ok, retry, err)
	}
	return retry
}

func TestMemoryLimitAndRetryAfter(t *testing.T) {
	clock := newFakeClock()
	m := NewMemory(100, clock.Now)
	rule := Rule{Name: "login-email", Limit: 3, Period: time.Minute}

	for range 3 {
		mustAllow(t, m, rule, "a@example.com")
	}
	// One event every 20s; the burst is spent, so the next is 20s away.
	if retry := mustRefuse(t, m, rule, "a@example.com"); retry != 20*time.Second {
		t.Fatalf("retryAfter = %s, want 20s", retry)
	}
	// Refusals consume nothing: the wait only shrinks as time passes.
	clock.Advance(5 * time.Second)
	if retry := mustRefuse(t, m, rule, "a@example.com"); retry != 15*time.Second {
		t.Fatalf("retryAfter = %s, want 15s", retry)
	}
}

func TestMemoryRefills(t *testing.T) {
	clock := newFakeClock()
	m := NewMemory(100, clock.Now)
	rule := Rule{Name: "login-ip", Limit: 3, Period: time.Minute}

	for range 3 {
		mustAllow(t, m, rule, "192.0.2.1")
	}
	retry := mustRefuse(t, m, rule, "192.0.2.1")

	clock.Advance(retry - time.Nanosecond)
	mustRefuse(t, m, rule, "192.0.2.1")
	clock.Advance(time.Nanosecond)
	mustAllow(t, m, rule, "192.0.2.1") // exactly one event came back
	mustRefuse(t, m, rule, "192.0.2.1")

	clock.Advance(time.Minute) // a whole period: the whole burst again, no more
	for range 3 {
		mustAllow(t, m, rule, "192.0.2.1")
	}
	mustRefuse(t, m, rule, "192.0.2.1")

	clock.Advance(time.Hour) // idle for long: still no more than one burst
	for range 3 {
		mustAllow(t, m, rule, "192.0.2.1")
	}
	mustRefuse(t, m, rule, "192.0.2.1")
}

func TestMemoryKeysAndRulesIndependent(t *testing.T) {
	clock := newFakeClock()
	m := NewMemory(100, clock.Now)
	ip := Rule{Name: "login-ip", Limit: 2, Period: time.Minute}
	email := Rule{Name: "login-email", Limit: 2, Period: time.Minute}

	mustAllow(t, m, ip, "k")
	mustAllow(t, m, ip, "k")
	mustRefuse(t, m, ip, "k")

	// Another key under the same rule, and the same key under another rule,
	// have budgets of their own.
	mustAllow(t, m, ip, "k2")
	mustAllow(t, m, ip, "k2")
	mustRefuse(t, m, ip, "k2")
	mustAllow(t, m, email, "k")
	mustAllow(t, m, email, "k")
	mustRefuse(t, m, email, "k")

	// The namespacing is not fooled by moving characters across the
	// rule/key boundary.
	a := Rule{Name: "ab", Limit: 1, Period: time.Minute}
	b := Rule{Name: "a", Limit: 1, Period: time.Minute}
	mustAllow(t, m, a, "c")
	mustAllow(t, m, b, "bc")
}

func TestMemoryKeyBound(t *testing.T) {
	clock := newFakeClock()
	const maxKeys = 50
	m := NewMemory(maxKeys, clock.Now)
	rule := Rule{Name: "register-ip", Limit: 5, Period: time.Hour}

	for i := range maxKeys * 3 {
		mustAllow(t, m, rule, fmt.Sprintf("key-%d", i))
		if n := m.Len(); n > maxKeys {
			t.Fatalf("after %d keys Len() = %d > maxKeys %d", i+1, n, maxKeys)
		}
		if i%7 == 0 {
			clock.Advance(time.Minute)
		}
	}
	if n, l := m.Len(), m.lru.Len(); n != maxKeys || l != maxKeys {
		t.Fatalf("Len() = %d, list %d; want %d", n, l, maxKeys)
	}
}

func TestMemoryEvictsIdleBeforeBusy(t *testing.T) {
	clock := newFakeClock()
	const maxKeys = 10
	m := NewMemory(maxKeys, clock.Now)
	strict := Rule{Name: "forgot-email", Limit: 1, Period: time.Hour}
	short := Rule{Name: "resend-ip", Limit: 1, Period: time.Second}

	// The least recently used key still holds a spent budget...
	mustAllow(t, m, strict, "victim@example.com")
	mustRefuse(t, m, strict, "victim@example.com")
	// ...while a flood of keys fills the limiter; their budgets refill
	// quickly, so they are the ones to go, not the victim.
	for i := range maxKeys * 5 {
		mustAllow(t, m, short, fmt.Sprintf("flood-%d", i))
		clock.Advance(2 * time.Second)
	}
	mustRefuse(t, m, strict, "victim@example.com")

	// A key touched recently survives a flood of live keys too (LRU).
	for i := range maxKeys * 5 {
		mustAllow(t, m, strict, fmt.Sprintf("live-%d", i))
		mustRefuse(t, m, strict, "victim@example.com")
	}
	if n := m.Len(); n > maxKeys {
		t.Fatalf("Len() = %d > %d", n, maxKeys)
	}
}

func TestMemoryConcurrent(t *testing.T) {
	clock := newFakeClock()
	m := NewMemory(64, clock.Now)
	shared := Rule{Name: "login-ip", Limit: 100, Period: time.Hour}
	churn := Rule{Name: "login-email", Limit: 3, Period: time.Minute}

	var allowed atomic.Int64
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 500 {
				ok, _, err := m.Allow(context.Background(), shared, "198.51.100.9")
				if err != nil {
					t.Error(err)
					return
				}
				if ok {
					allowed.Add(1)
				}
				if _, _, err := m.Allow(context.Background(), churn, fmt.Sprintf("u%d-%d@example.com", g, i%40)); err != nil {
					t.Error(err)
					return
				}
				if i%100 == 0 {
					clock.Advance(time.Millisecond)
					_ = m.Len()
				}
			}
		})
	}
	wg.Wait()
	// The clock moved by at most 40ms: far too little to refill an event of
	// the shared rule (one every 36s), so exactly the burst got through.
	if got := allowed.Load(); got != 100 {
		t.Fatalf("allowed %d events of a 100-event budget", got)
	}
	if n := m.Len(); n > 64 {
		t.Fatalf("Len() = %d > 64", n)
	}
}

func TestInvalidRules(t *testing.T) {
	m := NewMemory(10, nil)
	for _, r := range []Rule{
		{Name: "", Limit: 1, Period: time.Second},
		{Name: "x", Limit: 0, Period: time.Second},
		{Name: "x", Limit: -1, Period: time.Second},
		{Name: "x", Limit: 1, Period: 0},
		{Name: "x", Limit: 10, Period: 5 * time.Nanosecond},
	} {
		ok, _, err := m.Allow(context.Background(), r, "k")
		if ok || !errors.Is(err, ErrInvalidRule) {
			t.Errorf("Allow(%+v) = %v, %v; want ErrInvalidRule", r, ok, err)
		}
	}
}
