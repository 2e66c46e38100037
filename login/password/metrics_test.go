package password

import (
	"context"
	"errors"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
)

// TestMetricsWait: every hash and check is measured, and a wait for a busy
// slot shows as at least the time the slot was held.
func TestMetricsWait(t *testing.T) {
	m := NewMetrics()
	h, err := New(Config{Concurrency: 1, Argon2Memory: 64, Argon2Time: 1, Metrics: m})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	hash, err := h.Hash(ctx, "Correct-Horse-1")
	if err != nil {
		t.Fatal(err)
	}
	if ok, _, err := h.Verify(ctx, hash, "wrong"); err != nil || ok {
		t.Fatalf("Verify wrong password: ok=%v err=%v", ok, err)
	}
	// Hold the only slot, then let a check wait for it.
	_, release, err := h.Reserve(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// The slot is released held after VerifyDummy has joined the queue (not
	// after this goroutine started, which a loaded machine may delay past
	// VerifyDummy's arrival): the wait measured is then about held.
	const held = 50 * time.Millisecond
	go func() {
		defer release()
		for deadline := time.Now().Add(10 * time.Second); h.waiting.Load() == 0; {
			if time.Now().After(deadline) {
				return // VerifyDummy never queued; the sample count below fails
			}
			time.Sleep(time.Millisecond)
		}
		time.Sleep(held)
	}()
	h.VerifyDummy(ctx, "x")

	var out dto.Metric
	if err := m.wait.Write(&out); err != nil {
		t.Fatal(err)
	}
	// Hash, Verify, our own Reserve and VerifyDummy.
	if n := out.GetHistogram().GetSampleCount(); n != 4 {
		t.Fatalf("wait histogram has %d samples, want 4", n)
	}
	// The waiter's clock starts before it joins the queue (h.waiting).
	if s := out.GetHistogram().GetSampleSum(); s < held.Seconds() {
		t.Fatalf("total wait %.3fs, want at least the %v the slot was held", s, held)
	}
}

// TestMetricsRefusals: both kinds of refusal are counted, each under its
// reason, and both start at zero.
func TestMetricsRefusals(t *testing.T) {
	m := NewMetrics()
	h := mustNew(t, Config{Concurrency: 1, MaxQueue: 1, MaxWait: time.Millisecond, Argon2Memory: 64, Argon2Time: 1, Metrics: m})
	if got := refusals(t, m, refusedQueueFull) + refusals(t, m, refusedMaxWait); got != 0 {
		t.Fatalf("%v refusals before any hash", got)
	}
	h.sem <- struct{}{} // someone is hashing
	if _, err := h.Hash(context.Background(), "pw"); !errors.Is(err, ErrBusy) {
		t.Fatalf("Hash = %v, want ErrBusy after the max wait", err)
	}
	h.waiting.Add(1) // someone is waiting: the queue of one is full
	if _, err := h.Hash(context.Background(), "pw"); !errors.Is(err, ErrBusy) {
		t.Fatalf("Hash = %v, want ErrBusy for a full queue", err)
	}
	if q, w := refusals(t, m, refusedQueueFull), refusals(t, m, refusedMaxWait); q != 1 || w != 1 {
		t.Fatalf("refusals queue_full=%v max_wait=%v, want 1 and 1", q, w)
	}
}

func refusals(t *testing.T, m *Metrics, reason string) float64 {
	t.Helper()
	var out dto.Metric
	if err := m.refusals.WithLabelValues(reason).Write(&out); err != nil {
		t.Fatal(err)
	}
	return out.GetCounter().GetValue()
}
