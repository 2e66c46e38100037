// Package password hashes and verifies user passwords.
//
// New hashes use the configured algorithm: argon2id (the default, OWASP's
// parameters m=19 MiB, t=2, p=1) or bcrypt (cost 12 by default, never below 10).
// Verification reads the algorithm and its parameters from the stored hash, so
// bcrypt hashes imported from bcryptjs / Auth.js applications ($2a$, $2b$, $2y$)
// keep working, and Verify reports when a hash should be replaced by one made
// with the current configuration.
//
// Every hash computation (Hash, Verify, VerifyDummy) runs in one of
// Config.Concurrency slots, by default one fewer than GOMAXPROCS, so that a
// flood of sign-ins leaves a processor to everything else (docs/design.md,
// "Password hashing under load"). The wait for a slot is bounded: a caller
// that finds Config.MaxQueue others waiting, or waits Config.MaxWait, gets
// ErrBusy, which the sign-in pages answer with 503 and Retry-After instead of
// piling up requests. A request that hashes after other checks holds its slot
// from before those checks with Reserve.
package password

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gatehouse-id/gatehouse/internal/argon2"
	"golang.org/x/crypto/bcrypt"
)

// Algorithm names accepted in Config.Algorithm.
const (
	Argon2id = "argon2id"
	Bcrypt   = "bcrypt"
)

// Defaults.
const (
	DefaultBcryptCost    = 12
	MinBcryptCost        = 10
	DefaultArgon2Memory  = 19 * 1024 // KiB
	DefaultArgon2Time    = 2
	DefaultArgon2Threads = 1
	argon2KeyLen         = 32
	argon2SaltLen        = 16
	// bcryptMaxPassword is the longest password bcrypt accepts (bytes).
	bcryptMaxPassword = 72
)

// Limits for parameters read from stored hashes: a corrupt or hostile hash must
// not make Verify allocate gigabytes or spin for minutes.
const (
	maxArgon2Memory = 1 << 20 // KiB (1 GiB)
	maxArgon2Time   = 64
	minArgon2Salt   = 8
	minArgon2Key    = 16
	maxArgon2Key    = 1024
)

// Bounds of the wait for a hashing slot.
const (
	// DefaultMaxWait is how long a hash waits for a slot before ErrBusy. A
	// slot frees every few tens of milliseconds per core, so a wait this
	// long means a queue the hashing cannot keep up with, and a person at a
	// sign-in form would rather be told to try again than watch a spinner;
	// it is also well below the timeouts of proxies and browsers.
	DefaultMaxWait = 3 * time.Second
	// defaultQueuePerSlot bounds the callers waiting, per slot, when
	// Config.MaxQueue is zero: 64 argon2id hashes of the defaults take
	// about 2 s on a core, so a longer queue would mostly end in ErrBusy
	// after DefaultMaxWait anyway; refusing at once spares the wait and the
	// request's goroutine and connection.
	defaultQueuePerSlot = 64
)

var (
	// ErrBusy is returned (unwrapped) when no hashing slot was free in time
	// (Config.MaxWait) or too many callers were already waiting
	// (Config.MaxQueue): the server is overloaded, not the request wrong.
	ErrBusy = errors.New("password: too many password hashes waiting; try again in a moment")
	// ErrMalformedHash is returned (wrapped) by Verify for hashes it cannot parse.
	ErrMalformedHash = errors.New("password: malformed hash")
	// ErrUnsupportedHash is returned (wrapped) by Verify for hash formats it does not know.
	ErrUnsupportedHash = errors.New("password: unsupported hash algorithm")
	// ErrPasswordTooLong is returned by Hash when bcrypt is configured and the
	// password is longer than 72 bytes, which bcrypt would silently truncate.
	ErrPasswordTooLong = errors.New("password: bcrypt accepts at most 72 bytes; choose a shorter password")
)

// Config selects the algorithm and its cost. The zero value means argon2id with
// OWASP's parameters, DefaultConcurrency concurrent hashes and the default
// bounds on waiting for one.
type Config struct {
	Algorithm  string // "argon2id" (default) or "bcrypt"
	BcryptCost int    // default 12, never below 10 (error)

	// argon2id parameters; zero means OWASP's defaults (19 MiB, 2 passes, 1 lane).
	// The key is 32 bytes and the salt 16 bytes.
	Argon2Memory  uint32 // KiB
	Argon2Time    uint32
	Argon2Threads uint8

	// Concurrency is the maximum number of hashes computed at once; zero
	// means DefaultConcurrency().
	Concurrency int
	// MaxWait bounds the wait for a free slot (ErrBusy after it); zero
	// means DefaultMaxWait.
	MaxWait time.Duration
	// MaxQueue bounds the callers waiting for a slot: one more gets ErrBusy
	// at once. Zero means 64 per slot.
	MaxQueue int

	// LowPriority computes hashes on Concurrency threads of their own whose
	// operating-system priority is lowered (niceness lowPriorityNice; Linux
	// only, see LowPrioritySupported), so that the kernel runs request
	// threads first whenever both want a core. It only helps when the Go
	// scheduler has processors beyond the hashing threads while they hash
	// (Busy): see docs/design.md, "Password hashing under load".
	// Call Close to end the threads.
	LowPriority bool
	// Busy, with LowPriority, is told when hashing starts and stops: true
	// before a hash when none was running or lingering, false once none has
	// run for BusyLinger. The caller raises GOMAXPROCS by the hashing threads
	// only meanwhile (cmd/gatehouse): a hashing thread holds a processor
	// while it computes, but processors beyond the cores cost every request
	// CPU the rest of the time (an SSO sign-in 23 % more, measured).
	Busy func(busy bool)
	// BusyLinger is how long hashing must be idle before Busy(false); zero
	// means one second, so a flood raises and lowers once, not per hash.
	BusyLinger time.Duration

	// Metrics measures the wait for a hashing slot and counts refusals; nil
	// measures nothing.
	Metrics *Metrics
}

// lowPriorityNice is the niceness of low-priority hashing threads, the lowest
// there is: a nice-19 thread weighs 15 against the 1024 of a default one, so
// a request thread sharing its core gets about 98.5 % of it, while hashing
// alone on the machine still gets all of it.
const lowPriorityNice = 19

// DefaultConcurrency is GOMAXPROCS−1, at least 1: hashing never occupies
// every processor the Go scheduler has. With all of them hashing, a token
// request waits for a time slice to end (10 ms) before it even runs, and the
// network poller is consulted only every 10 ms (docs/design.md, "Password
// hashing under load").
func DefaultConcurrency() int { return max(runtime.GOMAXPROCS(0)-1, 1) }

// Hasher hashes and verifies passwords. It is safe for concurrent use.
type Hasher struct {
	algorithm  string
	bcryptCost int
	memory     uint32
	time       uint32
	threads    uint8
	sem        chan struct{}
	// blocks lends each argon2id computation the memory of a finished one:
	// allocating 19 MiB per password checked would start a garbage collection
	// every few sign-ins (internal/argon2).
	blocks   argon2.Pool
	maxWait  time.Duration
	maxQueue int64
	waiting  atomic.Int64 // callers waiting for a slot
	metrics  *Metrics

	// jobs feeds the low-priority hashing threads (Config.LowPriority); nil
	// computes on the caller's goroutine.
	jobs      chan func()
	startOnce sync.Once
	closeOnce sync.Once
	threadErr atomic.Pointer[error] // the first thread that could not lower its priority
	threadsMu sync.Mutex
	threadIDs []int // their thread IDs, for the tests
	busy      busyTracker

	// dummyBcrypt is a well-formed bcrypt hash with the configured cost that no
	// password matches; VerifyDummy compares against it.
	dummyBcrypt []byte
}

// New validates cfg, fills in defaults and returns a Hasher.
func New(cfg Config) (*Hasher, error) {
	h := &Hasher{
		algorithm:  cfg.Algorithm,
		bcryptCost: cfg.BcryptCost,
		memory:     cfg.Argon2Memory,
		time:       cfg.Argon2Time,
		threads:    cfg.Argon2Threads,
		metrics:    cfg.Metrics,
	}
	if h.algorithm == "" {
		h.algorithm = Argon2id
	}
	if h.algorithm != Argon2id && h.algorithm != Bcrypt {
		return nil, fmt.Errorf("password: unknown algorithm %q (want %q or %q)", cfg.Algorithm, Argon2id, Bcrypt)
	}
	if h.bcryptCost == 0 {
		h.bcryptCost = DefaultBcryptCost
	}
	if h.bcryptCost < MinBcryptCost || h.bcryptCost > bcrypt.MaxCost {
		return nil, fmt.Errorf("password: bcrypt cost %d out of range [%d, %d]", h.bcryptCost, MinBcryptCost, bcrypt.MaxCost)
	}
	if h.memory == 0 {
		h.memory = DefaultArgon2Memory
	}
	if h.time == 0 {
		h.time = DefaultArgon2Time
	}
	if h.threads == 0 {
		h.threads = DefaultArgon2Threads
	}
	if h.memory < 8*uint32(h.threads) || h.memory > maxArgon2Memory || h.time > maxArgon2Time {
		return nil, fmt.Errorf("password: argon2id parameters out of range (m=%d KiB, t=%d, p=%d)", h.memory, h.time, h.threads)
	}
	n := cfg.Concurrency
	if n == 0 {
		n = DefaultConcurrency()
	}
	if n < 0 {
		return nil, fmt.Errorf("password: negative concurrency %d", n)
	}
	h.sem = make(chan struct{}, n)
	h.maxWait = cfg.MaxWait
	if h.maxWait == 0 {
		h.maxWait = DefaultMaxWait
	}
	if h.maxWait < 0 || cfg.MaxQueue < 0 {
		return nil, fmt.Errorf("password: negative max wait %v or queue %d", cfg.MaxWait, cfg.MaxQueue)
	}
	h.maxQueue = int64(cfg.MaxQueue)
	if h.maxQueue == 0 {
		h.maxQueue = int64(n) * defaultQueuePerSlot
	}
	if cfg.LowPriority {
		if !LowPrioritySupported {
			return nil, lowerThreadPriority()
		}
		h.jobs = make(chan func())
		h.busy = busyTracker{notify: cfg.Busy, linger: cfg.BusyLinger}
		if h.busy.linger == 0 {
			h.busy.linger = time.Second
		}
	}

	// A real bcrypt hash at the minimum cost (about a millisecond), relabelled
	// with the configured cost: comparing against it costs exactly as much as a
	// real comparison and never matches.
	d, err := bcrypt.GenerateFromPassword(randomBytes(16), bcrypt.MinCost)
	if err != nil {
		return nil, fmt.Errorf("password: dummy hash: %w", err)
	}
	h.dummyBcrypt = []byte(fmt.Sprintf("$2a$%02d$%s", h.bcryptCost, d[7:]))
	return h, nil
}

// Algorithm reports the algorithm new hashes use.
func (h *Hasher) Algorithm() string { return h.algorithm }

// Concurrency reports the number of hashing slots.
func (h *Hasher) Concurrency() int { return cap(h.sem) }

// MemoryPerHash is the memory one hash computation takes, in bytes: the
// argon2id parameter, or nothing worth counting for bcrypt.
func (h *Hasher) MemoryPerHash() int64 {
	if h.algorithm != Argon2id {
		return 0
	}
	return int64(h.memory) << 10
}

// heldSlot is a slot reserved by Reserve, carried in the context of the
// request that holds it.
type heldSlot struct {
	h        *Hasher
	released atomic.Bool
}

type slotKey struct{}

// Reserve waits for a hashing slot as Hash and Verify would (ErrBusy, or ctx's
// error) and holds it until release is called. Hash, Verify and VerifyDummy
// called with the returned context use that slot instead of waiting again;
// they must run one after another, as the steps of one request do. The sign-in
// form reserves its slot before it counts the attempt against the lockout, so
// that an attempt refused as busy has counted nothing. release may be called
// more than once.
func (h *Hasher) Reserve(ctx context.Context) (context.Context, func(), error) {
	if err := h.wait(ctx); err != nil {
		return ctx, func() {}, err
	}
	s := &heldSlot{h: h}
	return context.WithValue(ctx, slotKey{}, s), func() {
		if s.released.CompareAndSwap(false, true) {
			h.release()
		}
	}, nil
}

// acquire returns a slot for one hash: the one ctx holds (Reserve), with a
// release that does nothing, or a newly taken one.
func (h *Hasher) acquire(ctx context.Context) (release func(), err error) {
	if s, ok := ctx.Value(slotKey{}).(*heldSlot); ok && s.h == h && !s.released.Load() {
		return func() {}, nil
	}
	if err := h.wait(ctx); err != nil {
		return nil, err
	}
	return h.release, nil
}

// wait takes a slot, waiting at most maxWait and not at all when maxQueue
// callers are already waiting. The wait is measured whether or not a slot
// came: a wait that ends in a refusal is the worst kind.
func (h *Hasher) wait(ctx context.Context) error {
	select {
	case h.sem <- struct{}{}:
		h.metrics.waited(0)
		return nil
	default:
	}
	start := time.Now() // before joining the queue: a waiter seen there has its clock running
	if h.waiting.Add(1) > h.maxQueue {
		h.waiting.Add(-1)
		h.metrics.waited(0)
		h.metrics.refused(refusedQueueFull)
		return ErrBusy
	}
	defer h.waiting.Add(-1)
	defer func() { h.metrics.waited(time.Since(start)) }()
	t := time.NewTimer(h.maxWait)
	defer t.Stop()
	select {
	case h.sem <- struct{}{}:
		return nil
	case <-t.C:
		h.metrics.refused(refusedMaxWait)
		return ErrBusy
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (h *Hasher) release() { <-h.sem }

// compute runs fn, a hash computation, in the caller's slot: on the caller's
// goroutine, or with Config.LowPriority on one of the hashing threads (there
// are as many as slots, so one is free for every slot holder).
func (h *Hasher) compute(fn func()) {
	if h.jobs == nil {
		fn()
		return
	}
	h.startOnce.Do(h.startThreads)
	h.busy.start()
	defer h.busy.done()
	done := make(chan struct{})
	h.jobs <- func() {
		defer close(done)
		fn()
	}
	<-done
}

// startThreads starts the low-priority hashing threads and returns once each
// has lowered its priority. Each goroutine stays locked to its thread for
// good: a thread's niceness cannot be raised back without privileges, so the
// thread must never run other goroutines, and it ends with its goroutine
// (Close).
func (h *Hasher) startThreads() {
	ready := make(chan struct{})
	for range cap(h.sem) {
		h.startThread(ready)
	}
	for range cap(h.sem) {
		<-ready
	}
}

func (h *Hasher) startThread(ready chan<- struct{}) {
	go func() {
		runtime.LockOSThread()
		if onMainThread() {
			// Not this one: ps and top would show the whole process as
			// niced. While this goroutine holds it, the next one starts
			// elsewhere.
			h.startThread(ready)
			runtime.UnlockOSThread()
			return
		}
		if err := lowerThreadPriority(); err != nil {
			h.threadErr.CompareAndSwap(nil, &err)
		}
		h.threadsMu.Lock()
		h.threadIDs = append(h.threadIDs, threadID())
		h.threadsMu.Unlock()
		ready <- struct{}{}
		for job := range h.jobs {
			job()
		}
	}()
}

// busyTracker tells Config.Busy when hashing starts and, after a linger,
// stops. Calls to notify are serialised and alternate true, false.
type busyTracker struct {
	notify  func(bool)
	linger  time.Duration
	mu      sync.Mutex
	running int
	raised  bool
	idle    *time.Timer
	// gen counts the idle timers armed: a timer's callback lowers only if
	// it is still the newest, since Stop cannot stop one already firing
	// (it would otherwise lower a linger early, after a later hash).
	gen uint64
}

func (b *busyTracker) start() {
	if b.notify == nil {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.running++
	if b.idle != nil {
		b.idle.Stop() // a timer already firing finds running > 0
	}
	if !b.raised {
		b.raised = true
		b.notify(true)
	}
}

func (b *busyTracker) done() {
	if b.notify == nil {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.running--; b.running == 0 {
		b.gen++
		gen := b.gen
		b.idle = time.AfterFunc(b.linger, func() { b.lower(gen) })
	}
}

func (b *busyTracker) lower(gen uint64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if gen == b.gen && b.running == 0 && b.raised {
		b.raised = false
		b.notify(false)
	}
}

// stop lowers at once if raised (Close).
func (b *busyTracker) stop() {
	if b.notify == nil {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.idle != nil {
		b.idle.Stop()
	}
	if b.raised {
		b.raised = false
		b.notify(false)
	}
}

// LowPriorityThreads returns the operating-system thread IDs of the
// low-priority hashing threads started so far (none without
// Config.LowPriority, or before the first hash).
func (h *Hasher) LowPriorityThreads() []int {
	h.threadsMu.Lock()
	defer h.threadsMu.Unlock()
	return slices.Clone(h.threadIDs)
}

// Close ends the low-priority hashing threads; the Hasher must not be used
// afterwards. Without Config.LowPriority it does nothing.
func (h *Hasher) Close() {
	if h.jobs != nil {
		h.closeOnce.Do(func() {
			close(h.jobs)
			h.busy.stop()
		})
	}
}

// Hash returns a self-describing hash of password made with the configured
// algorithm. It waits for a free slot, within the bounds of Config (ErrBusy)
// and ctx (its error).
func (h *Hasher) Hash(ctx context.Context, password string) (string, error) {
	if h.algorithm == Bcrypt && len(password) > bcryptMaxPassword {
		return "", ErrPasswordTooLong
	}
	release, err := h.acquire(ctx)
	if err != nil {
		return "", err
	}
	defer release()
	if h.algorithm == Bcrypt {
		var b []byte
		h.compute(func() { b, err = bcrypt.GenerateFromPassword([]byte(password), h.bcryptCost) })
		if err != nil {
			return "", fmt.Errorf("password: bcrypt: %w", err)
		}
		return string(b), nil
	}
	salt := randomBytes(argon2SaltLen)
	var key []byte
	h.compute(func() { key = h.blocks.IDKey([]byte(password), salt, h.time, h.memory, h.threads, argon2KeyLen) })
	return encodeArgon2(argon2Params{memory: h.memory, time: h.time, threads: h.threads}, salt, key), nil
}

// Verify checks password against a self-describing hash: argon2id in PHC form
// ($argon2id$v=19$m=…,t=…,p=…$salt$hash, unpadded standard base64) or bcrypt
// ($2a$, $2b$, $2y$). A wrong password is ok=false with a nil error; a hash that
// cannot be parsed is an error (never a panic). needsRehash is true when the
// password matched and the hash uses another algorithm or weaker parameters than
// configured. Without a slot in time it returns ErrBusy or ctx's error, as Hash.
func (h *Hasher) Verify(ctx context.Context, hash, password string) (ok, needsRehash bool, err error) {
	switch {
	case strings.HasPrefix(hash, "$argon2"):
		p, salt, key, err := parseArgon2(hash)
		if err != nil {
			return false, false, err
		}
		release, err := h.acquire(ctx)
		if err != nil {
			return false, false, err
		}
		var got []byte
		h.compute(func() { got = h.blocks.IDKey([]byte(password), salt, p.time, p.memory, p.threads, uint32(len(key))) })
		release()
		if subtle.ConstantTimeCompare(got, key) != 1 {
			return false, false, nil
		}
		weaker := p.memory < h.memory || p.time < h.time || len(salt) < argon2SaltLen || len(key) < argon2KeyLen
		return true, h.algorithm != Argon2id || weaker, nil

	case strings.HasPrefix(hash, "$2"):
		cost, err := parseBcrypt(hash)
		if err != nil {
			return false, false, err
		}
		release, err := h.acquire(ctx)
		if err != nil {
			return false, false, err
		}
		// CompareHashAndPassword compares in constant time. Passwords longer
		// than 72 bytes are not rejected here: bcryptjs silently used their
		// first 72 bytes, and so does this comparison.
		h.compute(func() { err = bcrypt.CompareHashAndPassword([]byte(hash), []byte(password)) })
		release()
		switch {
		case err == nil:
			return true, h.algorithm != Bcrypt || cost < h.bcryptCost, nil
		case errors.Is(err, bcrypt.ErrMismatchedHashAndPassword):
			return false, false, nil
		default:
			return false, false, fmt.Errorf("%w: bcrypt: %v", ErrMalformedHash, err)
		}

	case hash == "":
		return false, false, fmt.Errorf("%w: empty", ErrMalformedHash)
	default:
		return false, false, ErrUnsupportedHash
	}
}

// VerifyDummy spends the time of a failed Verify against a hash made with the
// configured algorithm and parameters. Call it when the email is unknown so the
// response time does not reveal whether an account exists. Like Verify it
// fails only without a slot (ErrBusy, ctx's error), and then the caller must
// not answer as if the check had run.
func (h *Hasher) VerifyDummy(ctx context.Context, password string) error {
	release, err := h.acquire(ctx)
	if err != nil {
		return err
	}
	defer release()
	if h.algorithm == Bcrypt {
		h.compute(func() { _ = bcrypt.CompareHashAndPassword(h.dummyBcrypt, []byte(password)) })
		return nil
	}
	salt := randomBytes(argon2SaltLen)
	h.compute(func() {
		got := h.blocks.IDKey([]byte(password), salt, h.time, h.memory, h.threads, argon2KeyLen)
		_ = subtle.ConstantTimeCompare(got, salt) // keep the shape of a real comparison
	})
	return nil
}

type argon2Params struct {
	memory  uint32
	time    uint32
	threads uint8
}

var b64 = base64.RawStdEncoding

func encodeArgon2(p argon2Params, salt, key []byte) string {
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s",
		argon2.Version, p.memory, p.time, p.threads, b64.EncodeToString(salt), b64.EncodeToString(key))
}

func parseArgon2(hash string) (p argon2Params, salt, key []byte, err error) {
	bad := func(why string) (argon2Params, []byte, []byte, error) {
		return argon2Params{}, nil, nil, fmt.Errorf("%w: argon2: %s", ErrMalformedHash, why)
	}
	// The base64 decoder skips line breaks; a hash Hash wrote has none.
	if strings.ContainsAny(hash, "\r\n") {
		return bad("line break")
	}
	parts := strings.Split(hash, "$")
	// "", "argon2id", "v=19", "m=..,t=..,p=..", salt, hash
	if len(parts) != 6 || parts[0] != "" {
		return bad("want $argon2id$v=19$m=…,t=…,p=…$salt$hash")
	}
	if parts[1] != "argon2id" {
		return argon2Params{}, nil, nil, fmt.Errorf("%w: %s", ErrUnsupportedHash, parts[1])
	}
	if parts[2] != "v="+strconv.Itoa(argon2.Version) {
		return bad("unsupported version " + parts[2])
	}
	kv := strings.Split(parts[3], ",")
	if len(kv) != 3 {
		return bad("want m=…,t=…,p=…")
	}
	var vals [3]uint64
	for i, name := range []string{"m", "t", "p"} {
		k, v, ok := strings.Cut(kv[i], "=")
		if !ok || k != name {
			return bad("want m=…,t=…,p=…")
		}
		n, err := strconv.ParseUint(v, 10, 32)
		if err != nil {
			return bad("parameter " + name + " is not a number")
		}
		vals[i] = n
	}
	m, t, th := vals[0], vals[1], vals[2]
	if t < 1 || t > maxArgon2Time || th < 1 || th > 255 || m < 8*th || m > maxArgon2Memory {
		return bad("parameters out of range")
	}
	salt, err = b64.Strict().DecodeString(parts[4])
	if err != nil || len(salt) < minArgon2Salt {
		return bad("bad salt")
	}
	key, err = b64.Strict().DecodeString(parts[5])
	if err != nil || len(key) < minArgon2Key || len(key) > maxArgon2Key {
		return bad("bad hash")
	}
	return argon2Params{memory: uint32(m), time: uint32(t), threads: uint8(th)}, salt, key, nil
}

// MaxImportBcryptCost is the highest bcrypt cost CheckBcrypt accepts. Each
// step doubles the work of every sign-in to the account, and bcrypt cannot
// be interrupted: one attempt against a cost-31 hash holds a hashing slot
// for days, so a few attempts at such an account (by anyone who knows the
// address) would stop password sign-in for everybody. Real apps use 10–14;
// 16 takes a few seconds.
const MaxImportBcryptCost = 16

// ErrHashTooCostly is returned (wrapped) by CheckBcrypt for a bcrypt hash
// whose cost is above MaxImportBcryptCost.
var ErrHashTooCostly = errors.New("password: bcrypt cost too high")

// CheckBcrypt reports whether hash is a bcrypt hash Verify accepts ($2a$,
// $2b$ or $2y$, a cost from 4 to MaxImportBcryptCost, 53 characters of
// bcrypt's base64), so that an import can refuse a hash up front instead of
// storing one nobody could ever sign in with, or one whose every check
// costs minutes. The error wraps ErrUnsupportedHash for another format,
// ErrMalformedHash for a broken bcrypt string and ErrHashTooCostly for a
// cost above MaxImportBcryptCost.
func CheckBcrypt(hash string) error {
	if !strings.HasPrefix(hash, "$2") {
		return ErrUnsupportedHash
	}
	cost, err := parseBcrypt(hash)
	if err != nil {
		return err
	}
	if cost > MaxImportBcryptCost {
		return fmt.Errorf("%w: %d, at most %d", ErrHashTooCostly, cost, MaxImportBcryptCost)
	}
	return nil
}

// parseBcrypt checks the modular-crypt shape $2a$/$2b$/$2y$ NN $ 53 chars and
// returns the cost. $2y$ (PHP, bcryptjs) and $2b$ are the same algorithm as $2a$.
func parseBcrypt(hash string) (int, error) {
	bad := func(why string) (int, error) {
		return 0, fmt.Errorf("%w: bcrypt: %s", ErrMalformedHash, why)
	}
	if len(hash) != 60 {
		return bad("want 60 characters")
	}
	switch hash[:4] {
	case "$2a$", "$2b$", "$2y$":
	default:
		return 0, fmt.Errorf("%w: bcrypt variant %q", ErrUnsupportedHash, hash[:4])
	}
	if hash[6] != '$' {
		return bad("want $2x$NN$")
	}
	cost, err := strconv.Atoi(hash[4:6])
	if err != nil || cost < bcrypt.MinCost || cost > bcrypt.MaxCost {
		return bad("bad cost")
	}
	for _, c := range hash[7:] {
		if !strings.ContainsRune("./ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789", c) {
			return bad("bad character")
		}
	}
	return cost, nil
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	_, _ = rand.Read(b) // crypto/rand.Read never fails (Go 1.24+)
	return b
}
