package password

import (
	"context"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
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

// TestLowPriorityThreadsDoTheWork: the CPU time of argon2id hashes is
// spent on the low-priority threads themselves, not on goroutines they
// start, which would run on ordinary threads (x/crypto starts one per lane).
func TestLowPriorityThreadsDoTheWork(t *testing.T) {
	h := mustNew(t, Config{Argon2Memory: 4096, Argon2Time: 3, Argon2Threads: 2, Concurrency: 1, LowPriority: true})
	defer h.Close()
	ctx := context.Background()
	if _, err := h.Hash(ctx, "Correct-Horse-1"); err != nil { // starts the thread
		t.Fatal(err)
	}
	threads := h.LowPriorityThreads()
	if len(threads) != 1 {
		t.Fatalf("%d hashing threads, want 1", len(threads))
	}
	task := "task/" + strconv.Itoa(threads[0])
	hashing, process := threadCPUTicks(t, task), threadCPUTicks(t, "self")
	for range 60 {
		if _, err := h.Hash(ctx, "Correct-Horse-1"); err != nil {
			t.Fatal(err)
		}
	}
	hashing, process = threadCPUTicks(t, task)-hashing, threadCPUTicks(t, "self")-process
	if process < 10 {
		t.Skipf("60 hashes took %d clock ticks of CPU: too few to tell", process)
	}
	// Lanes on goroutines of their own (x/crypto's way) would leave the
	// thread next to nothing. The rest of the process (scheduler, GC,
	// sysmon) takes more when other processes load the machine: 17 of 25
	// ticks were seen while a CI run shared the cores, hence 60 % and not
	// more.
	t.Logf("the low-priority thread: %d of the process's %d ticks", hashing, process)
	if hashing*10 < process*6 {
		t.Fatalf("the low-priority thread spent %d of the process's %d ticks: the hashes ran elsewhere", hashing, process)
	}
}

// statFields reads /proc/self/<task>/stat ("self" for the whole process or
// its main thread) and returns its fields from field 3 on: the command name
// (field 2) is in parentheses and may contain spaces.
func statFields(task string) (fields []string, path string, err error) {
	path = "/proc/self/stat"
	if task != "self" {
		path = "/proc/self/" + task + "/stat"
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, path, err
	}
	return strings.Fields(string(raw[strings.LastIndexByte(string(raw), ')')+1:])), path, nil
}

// threadCPUTicks is utime+stime (fields 14 and 15) of /proc/self/<task>/stat,
// or of the whole process for "self".
func threadCPUTicks(t *testing.T, task string) int {
	t.Helper()
	f, path, err := statFields(task)
	if err != nil {
		t.Fatal(err)
	}
	utime, err1 := strconv.Atoi(f[11])
	stime, err2 := strconv.Atoi(f[12])
	if err1 != nil || err2 != nil {
		t.Fatalf("parse %s: %v %v", path, err1, err2)
	}
	return utime + stime
}

// threadNiceness reads field 19 of /proc/self/<task>/stat ("self" for the
// process's main thread).
func threadNiceness(t *testing.T, task string) int {
	t.Helper()
	f, path, err := statFields(task)
	if err != nil {
		return 0 // the thread ended meanwhile
	}
	nice, err := strconv.Atoi(f[16]) // f[0] is field 3
	if err != nil {
		t.Fatalf("%s: niceness %q", path, f[16])
	}
	return nice
}

// TestBusyNotifications: Busy hears true before the first of overlapping
// hashes and false once, a linger after the last; a hash after that raises
// again, and Close lowers at once.
func TestBusyNotifications(t *testing.T) {
	calls := make(chan bool, 8)
	h := mustNew(t, Config{Argon2Memory: 64, Argon2Time: 1, Concurrency: 2, LowPriority: true,
		BusyLinger: 50 * time.Millisecond, Busy: func(b bool) { calls <- b }})
	defer h.Close()
	ctx := context.Background()
	next := func(want bool) {
		t.Helper()
		select {
		case got := <-calls:
			if got != want {
				t.Fatalf("Busy(%v), want Busy(%v)", got, want)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("no Busy(%v)", want)
		}
	}
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			if _, err := h.Hash(ctx, "Correct-Horse-1"); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	// Raised before the first; lowered a linger after the last. Between
	// two hashes a slow machine may let the linger pass, so more pairs may
	// come, but always alternating and ending lowered.
	for want := true; ; want = !want {
		next(want)
		if !want && len(calls) == 0 {
			break
		}
	}
	if _, err := h.Hash(ctx, "Correct-Horse-1"); err != nil {
		t.Fatal(err)
	}
	next(true)
	h.Close()
	next(false)
	select {
	case b := <-calls:
		t.Fatalf("Busy(%v) after Close", b)
	default:
	}
}
