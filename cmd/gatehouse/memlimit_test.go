package main

import (
	"math"
	"os"
	"runtime/debug"
	"testing"

	"github.com/gatehouse-id/gatehouse/login/password"
)

// TestDefaultMemoryLimit: serve sets a soft limit from the hashing slots
// unless GOMEMLIMIT is set, in which case the runtime's stays.
func TestDefaultMemoryLimit(t *testing.T) {
	before := debug.SetMemoryLimit(-1)
	t.Cleanup(func() { debug.SetMemoryLimit(before) })
	h, err := password.New(password.Config{Concurrency: 2})
	if err != nil {
		t.Fatal(err)
	}
	if v, ok := os.LookupEnv("GOMEMLIMIT"); ok {
		os.Unsetenv("GOMEMLIMIT")
		t.Cleanup(func() { os.Setenv("GOMEMLIMIT", v) })
	}
	want := int64(28<<20) + 2*(19<<20+1<<20)
	if got := setDefaultMemoryLimit(h); got != want || debug.SetMemoryLimit(-1) != want {
		t.Fatalf("default limit %d (runtime %d), want %d", got, debug.SetMemoryLimit(-1), want)
	}
	debug.SetMemoryLimit(math.MaxInt64)
	t.Setenv("GOMEMLIMIT", "off")
	if got := setDefaultMemoryLimit(h); got != 0 || debug.SetMemoryLimit(-1) != math.MaxInt64 {
		t.Fatalf("with GOMEMLIMIT set: %d, runtime %d", got, debug.SetMemoryLimit(-1))
	}
}
