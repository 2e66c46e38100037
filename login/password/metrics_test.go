package password

import (
	"context"
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
	if err := h.acquire(ctx); err != nil {
		t.Fatal(err)
	}
	const held = 50 * time.Millisecond
	go func() {
		time.Sleep(held) // the slot is held this long: the wait being measured
		h.release()
	}()
	h.VerifyDummy(ctx, "x")

	var out dto.Metric
	if err := m.wait.Write(&out); err != nil {
		t.Fatal(err)
	}
	// Hash, Verify, our own acquire and VerifyDummy.
	if n := out.GetHistogram().GetSampleCount(); n != 4 {
		t.Fatalf("wait histogram has %d samples, want 4", n)
	}
	if s := out.GetHistogram().GetSampleSum(); s < held.Seconds() {
		t.Fatalf("total wait %.3fs, want at least the %v the slot was held", s, held)
	}
}
