package password

import (
	"context"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// TestLowPriorityThreads: with LowPriority the hashes are computed (and
// verify) as before, on threads of niceness lowPriorityNice, one per slot,
// while the rest of the process keeps its priority.
func TestLowPriorityThreads(t *testing.T) {
	h := mustNew(t, Config{Argon2Memory: 64, Argon2Time: 1, Concurrency: 2, LowPriority: true})
	defer h.Close()
	ctx := context.Background()
	hash, err := h.Hash(ctx, "Correct-Horse-1")
	if err != nil {
		t.Fatal(err)
	}
	if ok, _, err := h.Verify(ctx, hash, "Correct-Horse-1"); !ok || err != nil {
		t.Fatalf("Verify = %v, %v", ok, err)
	}
	if ok, _, err := h.Verify(ctx, hash, "wrong"); ok || err != nil {
		t.Fatalf("Verify wrong password = %v, %v", ok, err)
	}
	if err := h.VerifyDummy(ctx, "x"); err != nil {
		t.Fatal(err)
	}
	if p := h.threadErr.Load(); p != nil {
		t.Fatalf("a hashing thread kept its priority: %v", *p)
	}
	h.threadsMu.Lock()
	threads := slices.Clone(h.threadIDs)
	h.threadsMu.Unlock()
	if len(threads) != 2 {
		t.Fatalf("%d hashing threads, want one per slot (2)", len(threads))
	}
	for _, tid := range threads {
		if tid == os.Getpid() {
			t.Error("a hashing thread is the process's main thread")
		}
		if nice := threadNiceness(t, "task/"+strconv.Itoa(tid)); nice != lowPriorityNice {
			t.Errorf("hashing thread %d has niceness %d, want %d", tid, nice, lowPriorityNice)
		}
	}
	if nice := threadNiceness(t, "self"); nice == lowPriorityNice {
		t.Fatal("the main thread's priority was lowered too")
	}
}

// threadNiceness reads field 19 of /proc/self/<task>/stat ("self" for the
// process's main thread).
func threadNiceness(t *testing.T, task string) int {
	t.Helper()
	path := "/proc/self/stat"
	if task != "self" {
		path = "/proc/self/" + task + "/stat"
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		return 0 // the thread ended meanwhile
	}
	// The command name (field 2) is in parentheses and may contain spaces.
	f := strings.Fields(string(raw[strings.LastIndexByte(string(raw), ')')+2:]))
	nice, err := strconv.Atoi(f[16]) // f[0] is field 3
	if err != nil {
		t.Fatalf("%s: niceness %q", path, f[16])
	}
	return nice
}
