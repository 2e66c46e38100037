package ratelimit

import (
	"context"
	"io"
	"net"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// TestOpenRedisOutage: the limiter of a deployment with REDIS_URL, talking to
// a real Redis through a proxy the test takes down (refusing connections,
// resetting them, or holding them without an answer) and brings back. While
// Redis is gone the limits still hold, from memory, and however many checks
// come the outage is logged once; once Redis is back the shared budget applies
// again and the recovery is logged once.
func TestOpenRedisOutage(t *testing.T) {
	client := newTestRedis(t) // skips without Redis
	for _, mode := range []proxyMode{refuse, reset, blackhole} {
		t.Run(mode.String(), func(t *testing.T) { testOutage(t, client, mode) })
	}
}

func testOutage(t *testing.T, client *redis.Client, mode proxyMode) {
	proxy := newTCPProxy(t, client.Options().Addr)
	u, err := url.Parse(testRedisURL())
	if err != nil {
		t.Fatal(err)
	}
	u.Host = proxy.addr()
	logger, logs := bufferLogger()
	ctx := context.Background()
	l, closeFn, err := Open(ctx, u.String(), logger, newFakeClock().Now)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = closeFn() }()
	rule := randomRule(t, 3, time.Hour)
	cleanupRule(t, client, rule)

	mustAllow(t, l, rule, "k")
	mustAllow(t, l, rule, "k") // one left in Redis
	if out := logs.String(); out != "" {
		t.Fatalf("logs while Redis answers:\n%s", out)
	}

	proxy.set(mode)
	const workers, calls = 4, 3
	var allowed atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	for range workers {
		wg.Go(func() {
			for range calls {
				ok, retry, err := l.Allow(ctx, rule, "k")
				switch {
				case err != nil:
					t.Errorf("Allow while Redis is down: %v", err)
					return
				case ok:
					allowed.Add(1)
				case retry <= 0:
					t.Errorf("refused with retryAfter %s", retry)
				}
			}
		})
	}
	wg.Wait()
	t.Logf("%d checks during the outage took %s", workers*calls, time.Since(start).Round(time.Millisecond))
	// The in-process budget is a fresh one of 3.
	if n := allowed.Load(); n != 3 {
		t.Errorf("allowed %d of %d checks while Redis was down, want 3 (the in-memory budget)", n, workers*calls)
	}
	out := logs.String()
	if n := strings.Count(out, "\n"); n != 1 || !strings.Contains(out, "level=WARN") ||
		!strings.Contains(out, "shared limiter unavailable") {
		t.Fatalf("want one warning for %d checks during the outage, got %d lines:\n%s", workers*calls, n, out)
	}

	proxy.set(up)
	// go-redis may wait before dialling again (after refused dials it probes
	// once a second): check until one call reaches Redis, within a deadline.
	probe := randomRule(t, 1000, time.Hour)
	cleanupRule(t, client, probe)
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(logs.String(), "shared limiter is back") {
		if time.Now().After(deadline) {
			t.Fatalf("recovery not seen within 10 s:\n%s", logs.String())
		}
		mustAllow(t, l, probe, "probe")
		time.Sleep(20 * time.Millisecond) // poll interval
	}
	// Redis's budget, not memory's (spent), decides again.
	mustAllow(t, l, rule, "k")
	mustRefuse(t, l, rule, "k")
	out = logs.String()
	if strings.Count(out, "\n") != 2 || strings.Count(out, "shared limiter is back") != 1 {
		t.Fatalf("want the outage and the recovery logged once each:\n%s", out)
	}
}

// proxyMode is how a tcpProxy treats connections.
type proxyMode int

const (
	up        proxyMode = iota // forward to the target
	refuse                     // nothing listens: connections are refused
	reset                      // accept and close at once
	blackhole                  // accept and never answer
)

func (m proxyMode) String() string {
	return [...]string{"up", "refused", "reset", "blackhole"}[m]
}

// tcpProxy forwards connections to target while up. Taken down, it drops
// every open connection and treats new ones as its mode says.
type tcpProxy struct {
	t       *testing.T
	target  string
	wg      sync.WaitGroup
	mu      sync.Mutex
	address string
	ln      net.Listener // nil while refusing
	mode    proxyMode
	conns   map[net.Conn]struct{}
}

func newTCPProxy(t *testing.T, target string) *tcpProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &tcpProxy{t: t, target: target, address: ln.Addr().String(), ln: ln, conns: map[net.Conn]struct{}{}}
	p.wg.Go(func() { p.serve(ln) })
	t.Cleanup(func() {
		p.set(refuse)
		p.wg.Wait()
	})
	return p
}

func (p *tcpProxy) addr() string { return p.address }

func (p *tcpProxy) set(mode proxyMode) {
	p.t.Helper()
	p.mu.Lock()
	defer p.mu.Unlock()
	p.mode = mode
	for c := range p.conns {
		c.Close()
	}
	clear(p.conns)
	switch {
	case mode == refuse && p.ln != nil:
		p.ln.Close()
		p.ln = nil
	case mode != refuse && p.ln == nil:
		// The port was just ours; Go listens with SO_REUSEADDR.
		ln, err := net.Listen("tcp", p.address)
		if err != nil {
			p.t.Fatalf("listen again on %s: %v", p.address, err)
		}
		p.ln = ln
		p.wg.Go(func() { p.serve(ln) })
	}
}

func (p *tcpProxy) serve(ln net.Listener) {
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		switch p.mode {
		case up:
			up, err := net.DialTimeout("tcp", p.target, time.Second)
			if err != nil {
				c.Close()
				break
			}
			p.conns[c], p.conns[up] = struct{}{}, struct{}{}
			p.wg.Go(func() { pipe(up, c) })
			p.wg.Go(func() { pipe(c, up) })
		case blackhole:
			p.conns[c] = struct{}{} // held open, never read
		default:
			c.Close()
		}
		p.mu.Unlock()
	}
}

// pipe copies until either side ends, then closes both.
func pipe(dst, src net.Conn) {
	_, _ = io.Copy(dst, src)
	dst.Close()
	src.Close()
}
