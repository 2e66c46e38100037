package password

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"runtime"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"
)

// fast argon2id parameters for tests that are not about the parameters.
func fastArgon(t testing.TB) *Hasher {
	t.Helper()
	h, err := New(Config{Argon2Memory: 64, Argon2Time: 1})
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// cheapBcrypt returns a bcrypt Hasher with a cost below the allowed minimum,
// so that the race-enabled test run stays quick. Only tests can do this.
func cheapBcrypt(t testing.TB, cost int) *Hasher {
	t.Helper()
	h := mustNew(t, Config{Algorithm: Bcrypt, BcryptCost: MinBcryptCost})
	h.bcryptCost = cost
	h.dummyBcrypt = []byte(fmt.Sprintf("$2a$%02d$%s", cost, h.dummyBcrypt[7:]))
	return h
}

func mustNew(t testing.TB, cfg Config) *Hasher {
	t.Helper()
	h, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func TestNewDefaults(t *testing.T) {
	h := mustNew(t, Config{})
	if h.algorithm != Argon2id || h.memory != 19*1024 || h.time != 2 || h.threads != 1 || h.bcryptCost != 12 {
		t.Fatalf("defaults: %+v", h)
	}
	if cap(h.sem) < 1 {
		t.Fatalf("concurrency %d", cap(h.sem))
	}
}

func TestNewRejects(t *testing.T) {
	for _, cfg := range []Config{
		{Algorithm: "md5"},
		{Algorithm: Bcrypt, BcryptCost: 9},
		{Algorithm: Bcrypt, BcryptCost: 4},
		{Algorithm: Bcrypt, BcryptCost: 32},
		{Concurrency: -1},
		{MaxWait: -time.Second},
		{MaxQueue: -1},
		{Argon2Memory: 4, Argon2Threads: 1},
	} {
		if _, err := New(cfg); err == nil {
			t.Errorf("New(%+v) succeeded", cfg)
		}
	}
}

func TestArgon2idRoundTrip(t *testing.T) {
	ctx := context.Background()
	h := mustNew(t, Config{}) // OWASP parameters, the real thing
	hash, err := h.Hash(ctx, "correct horse battery staple")
	if err != nil {
		t.Fatal(err)
	}
	re := regexp.MustCompile(`^\$argon2id\$v=19\$m=19456,t=2,p=1\$[A-Za-z0-9+/]{22}\$[A-Za-z0-9+/]{43}$`)
	if !re.MatchString(hash) {
		t.Fatalf("hash %q does not look like a PHC argon2id string", hash)
	}
	ok, rehash, err := h.Verify(ctx, hash, "correct horse battery staple")
	if err != nil || !ok || rehash {
		t.Fatalf("Verify(right) = %v, %v, %v", ok, rehash, err)
	}
	ok, rehash, err = h.Verify(ctx, hash, "correct horse battery stapler")
	if err != nil || ok || rehash {
		t.Fatalf("Verify(wrong) = %v, %v, %v", ok, rehash, err)
	}
	hash2, _ := h.Hash(ctx, "correct horse battery staple")
	if hash2 == hash {
		t.Fatal("two hashes of one password are equal: salt not random")
	}
}

// A vector from the reference implementation's test suite (phc-winner-argon2
// src/test.c: argon2id v=19, t=2, m=2^16 KiB, p=1, "password", "somesalt").
func TestArgon2idKnownVector(t *testing.T) {
	h := fastArgon(t)
	const hash = "$argon2id$v=19$m=65536,t=2,p=1$c29tZXNhbHQ$CTFhFdXPJO1aFaMaO6Mm5c8y7cJHAph8ArZWb2GRPPc"
	ok, _, err := h.Verify(context.Background(), hash, "password")
	if err != nil || !ok {
		t.Fatalf("Verify = %v, %v", ok, err)
	}
}

func TestBcryptRoundTrip(t *testing.T) {
	ctx := context.Background()
	h := cheapBcrypt(t, 5)
	hash, err := h.Hash(ctx, "hunter2hunter2")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(hash, "$2a$05$") {
		t.Fatalf("hash %q", hash)
	}
	ok, rehash, err := h.Verify(ctx, hash, "hunter2hunter2")
	if err != nil || !ok || rehash {
		t.Fatalf("Verify(right) = %v, %v, %v", ok, rehash, err)
	}
	ok, _, err = h.Verify(ctx, hash, "hunter2hunter3")
	if err != nil || ok {
		t.Fatalf("Verify(wrong) = %v, %v", ok, err)
	}
}

func TestBcryptTooLong(t *testing.T) {
	h := cheapBcrypt(t, 4)
	if _, err := h.Hash(context.Background(), strings.Repeat("a", 72)); err != nil {
		t.Fatal(err)
	}
	_, err := h.Hash(context.Background(), strings.Repeat("a", 73))
	if !errors.Is(err, ErrPasswordTooLong) {
		t.Fatalf("err = %v", err)
	}
	if !strings.Contains(err.Error(), "72 bytes") {
		t.Fatalf("error is not clear: %v", err)
	}
	// argon2id has no such limit.
	if _, err := fastArgon(t).Hash(context.Background(), strings.Repeat("a", 200)); err != nil {
		t.Fatal(err)
	}
}

// bcryptjs writes $2b$ (v2.4+ default) or $2y$ is what PHP and some ports emit;
// both are the same algorithm as Go's $2a$, so a Go hash with the prefix
// swapped is byte-for-byte what those libraries produce for that salt.
func TestBcryptImportedPrefixes(t *testing.T) {
	ctx := context.Background()
	h := fastArgon(t) // configured for argon2id: imported hashes verify, then need rehash
	base, err := bcrypt.GenerateFromPassword([]byte("Passw0rd!"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	for _, prefix := range []string{"$2a$", "$2b$", "$2y$"} {
		hash := prefix + string(base[4:])
		ok, rehash, err := h.Verify(ctx, hash, "Passw0rd!")
		if err != nil || !ok || !rehash {
			t.Errorf("%s: Verify(right) = %v, %v, %v", prefix, ok, rehash, err)
		}
		ok, rehash, err = h.Verify(ctx, hash, "passw0rd!")
		if err != nil || ok || rehash {
			t.Errorf("%s: Verify(wrong) = %v, %v, %v", prefix, ok, rehash, err)
		}
	}
}

// CheckBcrypt accepts exactly what Verify can check as bcrypt, and says why
// it refuses the rest (an import reports the reason).
func TestCheckBcrypt(t *testing.T) {
	base, err := bcrypt.GenerateFromPassword([]byte("Passw0rd!"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	for _, prefix := range []string{"$2a$", "$2b$", "$2y$"} {
		if err := CheckBcrypt(prefix + string(base[4:])); err != nil {
			t.Errorf("%s: %v", prefix, err)
		}
	}
	for hash, want := range map[string]error{
		"":                                   ErrUnsupportedHash,
		"5f4dcc3b5aa765d61d8327deb882cf99":   ErrUnsupportedHash, // md5
		"$argon2id$v=19$m=19456,t=2,p=1$x$y": ErrUnsupportedHash,
		"$2x$" + string(base[4:]):            ErrUnsupportedHash,
		"$2a$" + string(base[4:59]):          ErrMalformedHash, // one character short
		"$2a$99" + string(base[6:]):          ErrMalformedHash,
		"$2a$04$" + strings.Repeat("!", 53):  ErrMalformedHash,
	} {
		if err := CheckBcrypt(hash); !errors.Is(err, want) {
			t.Errorf("CheckBcrypt(%q) = %v, want %v", hash, err, want)
		}
	}
}

// The example from PHP's password_verify documentation ($2y$, cost 7).
func TestBcryptPHPVector(t *testing.T) {
	h := mustNew(t, Config{Algorithm: Bcrypt, BcryptCost: 10})
	const hash = "$2y$07$BCryptRequires22Chrcte/VlQH0piJtjXl.0t1XkA8pw9dMXTpOq"
	ok, rehash, err := h.Verify(context.Background(), hash, "rasmuslerdorf")
	if err != nil || !ok || !rehash { // cost 7 < 10 ⇒ rehash
		t.Fatalf("Verify = %v, %v, %v", ok, rehash, err)
	}
}

// A bcryptjs hash of a password longer than 72 bytes was made from its first 72
// bytes; it must still verify (then be rehashed).
func TestBcryptLongImportedPassword(t *testing.T) {
	long := strings.Repeat("é", 40) // 80 bytes
	base, err := bcrypt.GenerateFromPassword([]byte(long[:72]), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	ok, rehash, err := fastArgon(t).Verify(context.Background(), "$2b$"+string(base[4:]), long)
	if err != nil || !ok || !rehash {
		t.Fatalf("Verify = %v, %v, %v", ok, rehash, err)
	}
}

func TestNeedsRehash(t *testing.T) {
	ctx := context.Background()
	weak := mustNew(t, Config{Argon2Memory: 64, Argon2Time: 1})
	strong := mustNew(t, Config{Argon2Memory: 128, Argon2Time: 2})
	bc10 := cheapBcrypt(t, 4) // stands for cost 10
	bc11 := cheapBcrypt(t, 5) // stands for cost 11

	weakHash, _ := weak.Hash(ctx, "pw")
	strongHash, _ := strong.Hash(ctx, "pw")
	bc10Hash, _ := bc10.Hash(ctx, "pw")
	bc11Hash, _ := bc11.Hash(ctx, "pw")

	cases := []struct {
		name   string
		h      *Hasher
		hash   string
		rehash bool
	}{
		{"argon2 same params", weak, weakHash, false},
		{"argon2 stronger stored", weak, strongHash, false},
		{"argon2 weaker stored", strong, weakHash, true},
		{"argon2 stored, bcrypt configured", bc10, weakHash, true},
		{"bcrypt stored, argon2 configured", weak, bc10Hash, true},
		{"bcrypt same cost", bc10, bc10Hash, false},
		{"bcrypt higher cost stored", bc10, bc11Hash, false},
		{"bcrypt lower cost stored", bc11, bc10Hash, true},
	}
	for _, c := range cases {
		ok, rehash, err := c.h.Verify(ctx, c.hash, "pw")
		if err != nil || !ok || rehash != c.rehash {
			t.Errorf("%s: Verify = %v, %v, %v; want rehash=%v", c.name, ok, rehash, err, c.rehash)
		}
		// A wrong password never asks for a rehash.
		if ok, rehash, _ := c.h.Verify(ctx, c.hash, "nope"); ok || rehash {
			t.Errorf("%s: wrong password gave %v, %v", c.name, ok, rehash)
		}
	}
}

func TestMalformedHashes(t *testing.T) {
	h := fastArgon(t)
	good, _ := h.Hash(context.Background(), "pw")
	parts := strings.Split(good, "$")
	salt, key := parts[4], parts[5]
	for _, hash := range []string{
		"",
		"plaintext",
		"$",
		"$$$$$",
		"$argon2id",
		"$argon2id$",
		"$argon2id$v=19$m=64,t=1,p=1$" + salt,
		"$argon2id$v=19$m=64,t=1,p=1$" + salt + "$" + key + "$",
		"$argon2id$v=16$m=64,t=1,p=1$" + salt + "$" + key,
		"$argon2id$m=64,t=1,p=1$" + salt + "$" + key,
		"$argon2id$v=19$m=64,t=0,p=1$" + salt + "$" + key,
		"$argon2id$v=19$m=64,t=1,p=0$" + salt + "$" + key,
		"$argon2id$v=19$m=64,t=1,p=256$" + salt + "$" + key,
		"$argon2id$v=19$m=4,t=1,p=1$" + salt + "$" + key,
		"$argon2id$v=19$m=99999999999,t=1,p=1$" + salt + "$" + key,
		"$argon2id$v=19$m=4294967295,t=1,p=1$" + salt + "$" + key,
		"$argon2id$v=19$m=64,t=4294967295,p=1$" + salt + "$" + key,
		"$argon2id$v=19$m=-1,t=1,p=1$" + salt + "$" + key,
		"$argon2id$v=19$t=1,m=64,p=1$" + salt + "$" + key,
		"$argon2id$v=19$m=64,t=1$" + salt + "$" + key,
		"$argon2id$v=19$m=64,t=1,p=1$!!!$" + key,
		"$argon2id$v=19$m=64,t=1,p=1$" + salt + "$!!!",
		"$argon2id$v=19$m=64,t=1,p=1$" + salt + "$",
		"$argon2id$v=19$m=64,t=1,p=1$$" + key,
		"$argon2id$v=19$m=64,t=1,p=1$" + salt + "==$" + key,
		"$argon2id$v=19$m=64,t=1,p=1$" + salt + "$" + key[:5] + "\n" + key[5:], // the base64 decoder skips it
		"$argon2i$v=19$m=64,t=1,p=1$" + salt + "$" + key,
		"$argon2d$v=19$m=64,t=1,p=1$" + salt + "$" + key,
		"$2a$",
		"$2a$10$",
		"$2a$10$abc",
		"$2x$10$" + strings.Repeat("a", 53),
		"$2$10$" + strings.Repeat("a", 54),
		"$2a$99$" + strings.Repeat("a", 53),
		"$2a$03$" + strings.Repeat("a", 53),
		"$2a$1x$" + strings.Repeat("a", 53),
		"$2a$10x" + strings.Repeat("a", 53),
		"$2a$10$" + strings.Repeat("!", 53),
		"$2a$10$" + strings.Repeat("a", 54),
		"$1$saltsalt$hash",
		"$5$rounds=5000$salt$hash",
		"{SSHA}abcdef",
	} {
		func() {
			defer func() {
				if r := recover(); r != nil {
					t.Errorf("Verify(%q) panicked: %v", hash, r)
				}
			}()
			ok, rehash, err := h.Verify(context.Background(), hash, "pw")
			if err == nil || ok || rehash {
				t.Errorf("Verify(%q) = %v, %v, %v; want an error", hash, ok, rehash, err)
			}
			if !errors.Is(err, ErrMalformedHash) && !errors.Is(err, ErrUnsupportedHash) {
				t.Errorf("Verify(%q) error %v is neither ErrMalformedHash nor ErrUnsupportedHash", hash, err)
			}
		}()
	}
}

func TestVerifyDummy(t *testing.T) {
	ctx := context.Background()
	if d := mustNew(t, Config{Algorithm: Bcrypt, BcryptCost: 11}).dummyBcrypt; !strings.HasPrefix(string(d), "$2a$11$") || len(d) != 60 {
		t.Fatalf("dummy hash %q does not carry the configured cost", d)
	}
	for _, h := range []*Hasher{fastArgon(t), cheapBcrypt(t, 4)} {
		h.VerifyDummy(ctx, "anything")
		if h.algorithm != Bcrypt {
			continue
		}
		// The dummy bcrypt hash is well formed and matches nothing.
		if ok, _, err := h.Verify(ctx, string(h.dummyBcrypt), "anything"); err != nil || ok {
			t.Fatalf("dummy hash: %v, %v", ok, err)
		}
	}
}

// VerifyDummy must cost about what a real failed Verify costs. Compare the
// fastest of a few runs with generous bounds so the test does not flake.
// TestVerifyDummyCost: the dummy check for unknown emails must cost what a
// real check costs. For bcrypt that is the cost factor of the dummy hash; for
// argon2id VerifyDummy runs argon2.IDKey with the hasher's own parameters.
// (A wall-clock comparison was flaky under a loaded CI machine; the timing
// itself is measured by BenchmarkHash.)
func TestVerifyDummyCost(t *testing.T) {
	for _, cost := range []int{10, 12} {
		h := mustNew(t, Config{Algorithm: Bcrypt, BcryptCost: cost})
		got, err := bcrypt.Cost(h.dummyBcrypt)
		if err != nil || got != cost {
			t.Errorf("bcrypt cost %d: dummy hash has cost %d (%v)", cost, got, err)
		}
		if bcrypt.CompareHashAndPassword(h.dummyBcrypt, []byte("anything")) == nil {
			t.Error("the dummy hash matches a password")
		}
	}
}

func TestSemaphoreHonoursContext(t *testing.T) {
	h := mustNew(t, Config{Argon2Memory: 64, Argon2Time: 1, Concurrency: 1})
	h.sem <- struct{}{} // someone else is hashing
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := h.Hash(ctx, "pw"); !errors.Is(err, context.Canceled) {
		t.Fatalf("Hash err = %v", err)
	}
	good := "$argon2id$v=19$m=64,t=1,p=1$c29tZXNhbHRzb21lc2FsdA$CTFhFdXPJO1aFaMaO6Mm5c8y7cJHAph8ArZWb2GRPPc"
	if _, _, err := h.Verify(ctx, good, "pw"); !errors.Is(err, context.Canceled) {
		t.Fatalf("Verify err = %v", err)
	}
	h.VerifyDummy(ctx, "pw") // returns instead of blocking
	<-h.sem
	if _, err := h.Hash(context.Background(), "pw"); err != nil {
		t.Fatal(err)
	}
	if len(h.sem) != 0 {
		t.Fatal("slot leaked")
	}
}

func TestSemaphoreBoundsConcurrency(t *testing.T) {
	h := mustNew(t, Config{Argon2Memory: 64, Argon2Time: 1, Concurrency: 2})
	h.sem <- struct{}{}
	h.sem <- struct{}{} // two hashes in flight: a third must wait
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if _, err := h.Hash(ctx, "pw"); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("third hash did not wait: %v", err)
	}
	<-h.sem
	if _, err := h.Hash(context.Background(), "pw"); err != nil {
		t.Fatal(err)
	}
}

// TestDefaultConcurrency: hashing leaves one of the scheduler's processors
// free, and never has no slot at all.
func TestDefaultConcurrency(t *testing.T) {
	prev := runtime.GOMAXPROCS(0)
	t.Cleanup(func() { runtime.GOMAXPROCS(prev) })
	for procs, want := range map[int]int{1: 1, 2: 1, 4: 3, 16: 15} {
		runtime.GOMAXPROCS(procs)
		if got := mustNew(t, Config{}).Concurrency(); got != want {
			t.Errorf("GOMAXPROCS %d: %d slots, want %d", procs, got, want)
		}
	}
	if got := mustNew(t, Config{Concurrency: 5}).Concurrency(); got != 5 {
		t.Errorf("Concurrency 5 gave %d slots", got)
	}
}

// TestMaxWait: with every slot taken, a hash waits MaxWait and is then
// refused with ErrBusy, whatever its own context allows.
func TestMaxWait(t *testing.T) {
	const maxWait = 30 * time.Millisecond
	h := mustNew(t, Config{Argon2Memory: 64, Argon2Time: 1, Concurrency: 1, MaxWait: maxWait})
	h.sem <- struct{}{} // someone else is hashing
	start := time.Now()
	if _, err := h.Hash(context.Background(), "pw"); err != ErrBusy {
		t.Fatalf("Hash err = %v, want ErrBusy", err)
	}
	if waited := time.Since(start); waited < maxWait {
		t.Fatalf("refused after %v, before the max wait %v", waited, maxWait)
	}
	good := "$argon2id$v=19$m=64,t=1,p=1$c29tZXNhbHRzb21lc2FsdA$CTFhFdXPJO1aFaMaO6Mm5c8y7cJHAph8ArZWb2GRPPc"
	if _, _, err := h.Verify(context.Background(), good, "pw"); err != ErrBusy {
		t.Fatalf("Verify err = %v, want ErrBusy", err)
	}
	<-h.sem
	if _, err := h.Hash(context.Background(), "pw"); err != nil {
		t.Fatalf("Hash with a free slot: %v", err)
	}
	if h.waiting.Load() != 0 || len(h.sem) != 0 {
		t.Fatalf("after refusals: %d waiting, %d slots taken", h.waiting.Load(), len(h.sem))
	}
}

// TestQueueFull: a caller that finds MaxQueue others waiting is refused at
// once, without joining the queue; the ones waiting keep their place.
func TestQueueFull(t *testing.T) {
	h := mustNew(t, Config{Argon2Memory: 64, Argon2Time: 1, Concurrency: 1, MaxQueue: 1, MaxWait: time.Hour})
	h.sem <- struct{}{} // someone else is hashing
	waiter := make(chan error, 1)
	go func() {
		_, err := h.Hash(context.Background(), "pw")
		waiter <- err
	}()
	for h.waiting.Load() != 1 { // the waiter has joined the queue
		runtime.Gosched()
	}
	start := time.Now()
	if _, err := h.Hash(context.Background(), "pw"); err != ErrBusy {
		t.Fatalf("Hash err = %v, want ErrBusy", err)
	}
	// "At once": far below the hour the waiter may wait.
	if d := time.Since(start); d > 10*time.Second {
		t.Fatalf("refusal took %v", d)
	}
	<-h.sem // the slot frees: the waiter hashes
	if err := <-waiter; err != nil {
		t.Fatalf("the waiting hash: %v", err)
	}
	if h.waiting.Load() != 0 || len(h.sem) != 0 {
		t.Fatalf("after the queue drained: %d waiting, %d slots taken", h.waiting.Load(), len(h.sem))
	}
}

// TestReserve: the hashes of a context that holds a slot use it without
// waiting (with the only slot held, waiting would end in ErrBusy), and
// release frees it once, however often it is called.
func TestReserve(t *testing.T) {
	h := mustNew(t, Config{Argon2Memory: 64, Argon2Time: 1, Concurrency: 1, MaxWait: time.Millisecond})
	ctx, release, err := h.Reserve(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	hash, err := h.Hash(ctx, "Correct-Horse-1")
	if err != nil {
		t.Fatalf("Hash in the reserved slot: %v", err)
	}
	if ok, _, err := h.Verify(ctx, hash, "Correct-Horse-1"); !ok || err != nil {
		t.Fatalf("Verify in the reserved slot: %v %v", ok, err)
	}
	h.VerifyDummy(ctx, "x")
	if len(h.sem) != 1 {
		t.Fatalf("%d slots taken while reserved, want 1", len(h.sem))
	}
	// Another caller finds no slot.
	if _, err := h.Hash(context.Background(), "pw"); err != ErrBusy {
		t.Fatalf("Hash outside the reservation: %v, want ErrBusy", err)
	}
	if _, _, err := h.Reserve(context.Background()); err != ErrBusy {
		t.Fatalf("second Reserve: %v, want ErrBusy", err)
	}
	release()
	release()
	if len(h.sem) != 0 {
		t.Fatalf("%d slots taken after release", len(h.sem))
	}
	// After release the context is an ordinary one: a hash takes a slot and
	// gives it back.
	if _, err := h.Hash(ctx, "pw"); err != nil {
		t.Fatal(err)
	}
	if len(h.sem) != 0 {
		t.Fatalf("%d slots taken after a hash", len(h.sem))
	}
	// A slot of another hasher is not this one's.
	other := mustNew(t, Config{Argon2Memory: 64, Argon2Time: 1, Concurrency: 1, MaxWait: time.Millisecond})
	octx, orelease, err := other.Reserve(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer orelease()
	if _, err := h.Hash(octx, "pw"); err != nil || len(h.sem) != 0 {
		t.Fatalf("hash with another hasher's slot: %v, %d slots taken", err, len(h.sem))
	}
}

func BenchmarkHash(b *testing.B) {
	ctx := context.Background()
	for _, c := range []struct {
		name string
		cfg  Config
	}{
		{"argon2id", Config{}},
		{"bcrypt", Config{Algorithm: Bcrypt}},
	} {
		b.Run(c.name, func(b *testing.B) {
			h := mustNew(b, c.cfg)
			for b.Loop() {
				if _, err := h.Hash(ctx, "correct horse battery staple"); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkVerify(b *testing.B) {
	ctx := context.Background()
	for _, c := range []struct {
		name string
		cfg  Config
	}{
		{"argon2id", Config{}},
		{"bcrypt", Config{Algorithm: Bcrypt}},
	} {
		b.Run(c.name, func(b *testing.B) {
			h := mustNew(b, c.cfg)
			hash, _ := h.Hash(ctx, "correct horse battery staple")
			for b.Loop() {
				if ok, _, err := h.Verify(ctx, hash, "correct horse battery staple"); !ok || err != nil {
					b.Fatal(ok, err)
				}
			}
		})
	}
}

// An imported bcrypt hash with a huge cost is refused: bcrypt cannot be
// interrupted, and one sign-in attempt at cost 31 would hold a hashing slot
// for days (review of issue 12).
func TestReview12CheckBcryptRefusesHugeCost(t *testing.T) {
	base, err := bcrypt.GenerateFromPassword([]byte("Passw0rd!"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	for cost, want := range map[string]error{"31": ErrHashTooCostly, "17": ErrHashTooCostly, "16": nil, "12": nil} {
		if err := CheckBcrypt("$2b$" + cost + string(base[6:])); !errors.Is(err, want) {
			t.Errorf("cost %s: CheckBcrypt = %v, want %v", cost, err, want)
		}
	}
}
