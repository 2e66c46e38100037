package argon2

import (
	"bytes"
	"fmt"
	"runtime"
	"testing"

	xargon2 "golang.org/x/crypto/argon2"
)

// TestPoolMatchesXCrypto runs one pool through computations of several sizes,
// in an order that hands a used, larger buffer to a smaller one and a smaller
// one to a larger: every key must equal x/crypto's, which starts from fresh
// zeroed memory each time. Lent memory is not cleared, so a block read
// before it is written would show here.
func TestPoolMatchesXCrypto(t *testing.T) {
	var p Pool
	params := []struct {
		time, memory uint32
		threads      uint8
	}{
		{2, 1024, 1}, {1, 64, 1}, {3, 256, 2}, {2, 1024, 1}, {1, 2048, 4}, {2, 19 * 1024, 1}, {2, 19 * 1024, 1}, {1, 32, 4},
	}
	for i, pr := range params {
		pw := []byte(fmt.Sprintf("password %d", i))
		salt := []byte(fmt.Sprintf("saltsaltsalt%04d", i))
		got := p.IDKey(pw, salt, pr.time, pr.memory, pr.threads, 32)
		want := xargon2.IDKey(pw, salt, pr.time, pr.memory, pr.threads, 32)
		if !bytes.Equal(got, want) {
			t.Fatalf("params %+v: pool key %x, x/crypto %x", pr, got, want)
		}
		if again := IDKey(pw, salt, pr.time, pr.memory, pr.threads, 32); !bytes.Equal(again, want) {
			t.Fatalf("params %+v: IDKey %x, x/crypto %x", pr, again, want)
		}
	}
}

// TestPoolReusesMemory: computations of the same size after the first
// allocate far less than their 4 MiB of blocks (what the pool is for).
func TestPoolReusesMemory(t *testing.T) {
	var p Pool
	pw, salt := []byte("password"), []byte("saltsaltsaltsalt")
	const memory = 4096 // KiB
	p.IDKey(pw, salt, 1, memory, 1, 32)
	const runs = 20
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	for range runs {
		p.IDKey(pw, salt, 1, memory, 1, 32)
	}
	runtime.ReadMemStats(&after)
	// A garbage collection between two runs may empty the pool now and then;
	// without the pool every run would allocate the whole array.
	perRun := (after.TotalAlloc - before.TotalAlloc) / runs
	if perRun > memory<<10/4 {
		t.Fatalf("a pooled computation allocates %d bytes on average, the blocks are %d", perRun, memory<<10)
	}
	runtime.ReadMemStats(&before)
	IDKey(pw, salt, 1, memory, 1, 32)
	runtime.ReadMemStats(&after)
	if fresh := after.TotalAlloc - before.TotalAlloc; fresh < memory<<10 {
		t.Fatalf("an unpooled computation allocates %d bytes, less than its blocks: the check above proves nothing", fresh)
	}
}

// TestPoolFreesWhenIdle: memory nobody used before a garbage collection is
// freed by it, so a burst of sign-ins does not keep its memory for good.
func TestPoolFreesWhenIdle(t *testing.T) {
	var p Pool
	pw, salt := []byte("password"), []byte("saltsaltsaltsalt")
	const memory = 4096 // KiB
	p.IDKey(pw, salt, 1, memory, 1, 32)
	runtime.GC()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	p.IDKey(pw, salt, 1, memory, 1, 32)
	runtime.ReadMemStats(&after)
	if got := after.TotalAlloc - before.TotalAlloc; got < memory<<10 {
		t.Fatalf("after a collection the pool still lent its memory (%d bytes allocated, the blocks are %d)", got, memory<<10)
	}
}

// TestPoolDropsOversized: memory more than twice what a computation needs
// (left by a stored hash with a larger m) is not lent to it, so it is freed
// instead of held for as long as hashing goes on.
func TestPoolDropsOversized(t *testing.T) {
	var p Pool
	pw, salt := []byte("password"), []byte("saltsaltsaltsalt")
	p.IDKey(pw, salt, 1, 8192, 1, 32)
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	got := p.IDKey(pw, salt, 1, 1024, 1, 32)
	runtime.ReadMemStats(&after)
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc < 1024<<10 {
		t.Fatalf("a 1 MiB computation allocated %d bytes: it was lent the 8 MiB", alloc)
	}
	if want := xargon2.IDKey(pw, salt, 1, 1024, 1, 32); !bytes.Equal(got, want) {
		t.Fatalf("key %x, x/crypto %x", got, want)
	}
}
