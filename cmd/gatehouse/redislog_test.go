package main

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// TestServeRedisLogsThroughSlog: `gatehouse serve` with an unreachable Redis
// logs the outage once as a warning, and go-redis's own lines (a failed dial
// each) go into the same log at debug level instead of plain text on the
// process's stderr.
func TestServeRedisLogsThroughSlog(t *testing.T) {
	prevLog := slog.Default()
	t.Cleanup(func() {
		slog.SetDefault(prevLog) // serve sets both
		redis.SetLogger(redisLog{prevLog})
	})
	vars := map[string]string{
		"GATEHOUSE_ADDR":         "127.0.0.1:0",
		"GATEHOUSE_METRICS_ADDR": "127.0.0.1:0", // the default port is one per machine
		"GATEHOUSE_DATA_DIR":     t.TempDir(),
		"GATEHOUSE_LOG_LEVEL":    "debug",
		"GATEHOUSE_LOG_FORMAT":   "json",
		"REDIS_URL":              "redis://127.0.0.1:1/0",
	}
	var stdout, stderr lockedBuffer
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan int, 1)
	go func() { done <- run(ctx, []string{"serve"}, strings.NewReader(""), &stdout, &stderr, mapEnv(vars)) }()

	deadline := time.After(15 * time.Second)
	for !strings.Contains(stderr.String(), "gatehouse listening") {
		select {
		case code := <-done:
			t.Fatalf("serve exited %d:\n%s", code, stderr.String())
		case <-deadline:
			t.Fatalf("serve did not start within 15 s:\n%s", stderr.String())
		case <-time.After(20 * time.Millisecond): // poll interval
		}
	}
	cancel()
	select {
	case code := <-done:
		if code != 0 {
			t.Fatalf("serve exited %d:\n%s", code, stderr.String())
		}
	case <-time.After(15 * time.Second):
		t.Fatal("serve did not stop within 15 s")
	}

	var dials, warnings int
	for _, line := range strings.Split(strings.TrimSpace(stderr.String()), "\n") {
		if !strings.HasPrefix(line, "{") {
			t.Errorf("not a JSON log line: %q", line)
		}
		if strings.Contains(line, `"msg":"redis client"`) && strings.Contains(line, "failed to dial") {
			dials++
			if !strings.Contains(line, `"level":"DEBUG"`) {
				t.Errorf("go-redis line not at debug level: %s", line)
			}
		}
		if strings.Contains(line, "unreachable at startup") {
			warnings++
		}
	}
	if dials == 0 || warnings != 1 {
		t.Fatalf("want go-redis's failed dials at debug and one outage warning; got %d and %d:\n%s",
			dials, warnings, stderr.String())
	}
}

// lockedBuffer is a bytes.Buffer safe for the server's concurrent writes.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
