package backchannel

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
)

var t0 = time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)

// countMetrics counts outcomes.
type countMetrics struct {
	mu sync.Mutex
	n  map[Outcome]int
}

func (m *countMetrics) Observe(clientID string, o Outcome) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.n == nil {
		m.n = map[Outcome]int{}
	}
	m.n[o]++
}

func (m *countMetrics) get(o Outcome) int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.n[o]
}

// scripted is a receiver answering the i-th request with statuses[i] (the
// last one thereafter), recording each request's logout_token.
type scripted struct {
	srv      *httptest.Server
	mu       sync.Mutex
	statuses []int
	tokens   []string
}

func newScripted(t *testing.T, statuses ...int) *scripted {
	s := &scripted{statuses: statuses}
	s.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		i := len(s.tokens)
		s.tokens = append(s.tokens, r.PostFormValue("logout_token"))
		status := s.statuses[min(i, len(s.statuses)-1)]
		s.mu.Unlock()
		w.WriteHeader(status)
	}))
	t.Cleanup(s.srv.Close)
	return s
}

func (s *scripted) received() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.tokens...)
}

type testEnv struct {
	outbox  *memOutbox
	clock   *fakeClock
	metrics *countMetrics
	logs    *bytes.Buffer
	worker  *Worker
}

func newTestEnv(t *testing.T, cfg WorkerConfig) *testEnv {
	t.Helper()
	e := &testEnv{outbox: &memOutbox{}, clock: &fakeClock{t: t0}, metrics: &countMetrics{}, logs: &bytes.Buffer{}}
	cfg.Now = e.clock.Now
	if cfg.Rand == nil {
		cfg.Rand = func() float64 { return 0 } // no jitter: exact schedules
	}
	cfg.Metrics = e.metrics
	cfg.Logger = slog.New(slog.NewJSONHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	if cfg.Client == nil {
		cfg.Client = NewHTTPClient(5 * time.Second)
	}
	e.worker = NewWorker(e.outbox, cfg)
	return e
}

func (e *testEnv) runOnce(t *testing.T, wantSent, wantFailed int) {
	t.Helper()
	sent, failed, err := e.worker.RunOnce(t.Context())
	if err != nil {
		t.Fatalf("RunOnce at +%v: %v", e.clock.Now().Sub(t0), err)
	}
	if sent != wantSent || failed != wantFailed {
		t.Fatalf("RunOnce at +%v: sent %d failed %d, want %d %d", e.clock.Now().Sub(t0), sent, failed, wantSent, wantFailed)
	}
}

// logLines returns the JSON log lines.
func (e *testEnv) logLines(t *testing.T) []map[string]any {
	t.Helper()
	var out []map[string]any
	for line := range strings.Lines(e.logs.String()) {
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		out = append(out, m)
	}
	return out
}

func delivery(id, uri string) Delivery {
	return Delivery{ID: id, ClientID: "client-" + id, URI: uri, Token: "token-" + id, CreatedAt: t0, ExpiresAt: t0.Add(24 * time.Hour)}
}

func TestWorkerRetriesUntilDelivered(t *testing.T) {
	rcv := newScripted(t, 503, 503, 200)
	e := newTestEnv(t, WorkerConfig{})
	e.outbox.add(delivery("d1", rcv.srv.URL))

	e.runOnce(t, 0, 1) // 503 at +0s: next at +10s
	if r := e.outbox.get("d1"); r.d.Attempts != 1 || !r.next.Equal(t0.Add(10*time.Second)) || r.lastStatus != 503 || !strings.Contains(r.lastErr, "503") {
		t.Fatalf("after the first 503: attempts %d next %v status %d err %q", r.d.Attempts, r.next, r.lastStatus, r.lastErr)
	}
	e.runOnce(t, 0, 0) // not due
	e.clock.Advance(9 * time.Second)
	e.runOnce(t, 0, 0) // +9s: still not due
	e.clock.Advance(time.Second)
	e.runOnce(t, 0, 1) // 503 at +10s: next at +30s (backoff doubled)
	if r := e.outbox.get("d1"); !r.next.Equal(t0.Add(30 * time.Second)) {
		t.Fatalf("second retry due at %v, want +30s", r.next.Sub(t0))
	}
	e.clock.Advance(19 * time.Second)
	e.runOnce(t, 0, 0)
	e.clock.Advance(time.Second)
	e.runOnce(t, 1, 0) // 200 at +30s
	e.clock.Advance(2 * time.Hour)
	e.runOnce(t, 0, 0) // nothing left

	if got := rcv.received(); len(got) != 3 || got[0] != "token-d1" || got[2] != "token-d1" {
		t.Errorf("receiver got %q, want the token exactly three times", got)
	}
	r := e.outbox.get("d1")
	if r.state != stateDone || r.lastStatus != 200 || strings.Join(r.recorded, ",") != "retry,retry,complete" {
		t.Errorf("state %s status %d recorded %v", r.state, r.lastStatus, r.recorded)
	}
	if e.metrics.get(Delivered) != 1 || e.metrics.get(Retry) != 2 || e.metrics.get(GiveUp) != 0 {
		t.Errorf("metrics %v", e.metrics.n)
	}
}

func TestWorkerGivesUpWhenRetriesEnd(t *testing.T) {
	rcv := newScripted(t, 503)
	e := newTestEnv(t, WorkerConfig{})
	d := delivery("d1", rcv.srv.URL+"/bcl?key=q-secret")
	d.ExpiresAt = t0.Add(time.Minute)
	d.SessionID = "sid-1"
	e.outbox.add(d)
	// Attempts at +0, +10 s, +30 s; the next would be at +70 s, after
	// ExpiresAt, so the third failure gives up.
	for i := 0; i < 10 && e.outbox.get("d1").state == statePending; i++ {
		e.clock.Set(e.outbox.get("d1").next)
		e.runOnce(t, 0, 1)
	}
	r := e.outbox.get("d1")
	if r.state != stateGaveUp || strings.Join(r.recorded, ",") != "retry,retry,give_up" {
		t.Fatalf("state %s recorded %v, want given up after three attempts", r.state, r.recorded)
	}
	if !strings.Contains(r.lastErr, "503") || !strings.Contains(r.lastErr, "retries ended") {
		t.Errorf("last error %q", r.lastErr)
	}
	if n := len(rcv.received()); n != 3 {
		t.Errorf("%d requests, want 3", n)
	}
	if e.metrics.get(GiveUp) != 1 || e.metrics.get(Retry) != 2 {
		t.Errorf("metrics %v", e.metrics.n)
	}
	if strings.Contains(e.logs.String(), "token-d1") || strings.Contains(e.logs.String(), "q-secret") {
		t.Errorf("the logs contain the token or the URI's query:\n%s", e.logs)
	}
	var gaveUp, warned int
	for _, l := range e.logLines(t) {
		if l["delivery_id"] != "d1" || l["client_id"] != "client-d1" || l["session_id"] != "sid-1" {
			t.Errorf("log line without the delivery, client and session: %v", l)
		}
		switch l["level"] {
		case "WARN":
			warned++
		case "ERROR":
			gaveUp++
			if !strings.Contains(l["msg"].(string), "given up") || l["status"] != float64(503) {
				t.Errorf("give-up line %v", l)
			}
		}
	}
	if gaveUp != 1 || warned != 2 {
		t.Errorf("%d give-up and %d retry lines, want 1 and 2:\n%s", gaveUp, warned, e.logs)
	}
}

func TestWorkerGivesUpOnRefusal(t *testing.T) {
	rcv := newScripted(t, 400, 200)
	e := newTestEnv(t, WorkerConfig{})
	e.outbox.add(delivery("d1", rcv.srv.URL))
	e.runOnce(t, 0, 1)
	e.clock.Advance(25 * time.Hour)
	e.runOnce(t, 0, 0)
	r := e.outbox.get("d1")
	if r.state != stateGaveUp || r.lastStatus != 400 || strings.Join(r.recorded, ",") != "give_up" {
		t.Errorf("state %s status %d recorded %v, want given up at once", r.state, r.lastStatus, r.recorded)
	}
	if n := len(rcv.received()); n != 1 {
		t.Errorf("%d requests, want 1", n)
	}
	if !strings.Contains(e.logs.String(), "refused") {
		t.Errorf("no give-up line:\n%s", e.logs)
	}
}

func TestWorkerConcurrentRunsSendEachOnce(t *testing.T) {
	const runs, batch = 5, 4
	const n = runs * batch
	var (
		mu      sync.Mutex
		got     = map[string]int{}
		release = make(chan struct{})
	)
	// Every receiver request waits until all runs have claimed, so every
	// claim happens while the others' deliveries are in flight: without
	// leases, later claims would hand out the same deliveries again.
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tok := r.PostFormValue("logout_token")
		<-release
		mu.Lock()
		got[tok]++
		mu.Unlock()
	}))
	defer srv.Close()
	e := newTestEnv(t, WorkerConfig{BatchSize: batch})
	for i := range n {
		e.outbox.add(delivery(fmt.Sprint("d", i), srv.URL))
	}
	var claims atomic.Int32
	e.outbox.onClaim = func() {
		if claims.Add(1) == runs {
			close(release)
		}
	}
	var wg sync.WaitGroup
	var sent atomic.Int32
	for range runs {
		wg.Go(func() {
			s, f, err := e.worker.RunOnce(t.Context())
			if err != nil || f != 0 {
				t.Errorf("RunOnce: failed %d, %v", f, err)
			}
			sent.Add(int32(s))
		})
	}
	wg.Wait()
	if sent.Load() != n || len(got) != n {
		t.Errorf("sent %d, %d distinct tokens received; want %d", sent.Load(), len(got), n)
	}
	for tok, c := range got {
		if c != 1 {
			t.Errorf("%s received %d times", tok, c)
		}
	}
}

func TestWorkerBoundsConcurrency(t *testing.T) {
	const limit = 3
	var inflight, peak atomic.Int32
	arrived := make(chan struct{}, 16) // never blocks: 10 requests
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		cur := inflight.Add(1)
		for p := peak.Load(); cur > p && !peak.CompareAndSwap(p, cur); p = peak.Load() {
		}
		arrived <- struct{}{}
		<-release
		inflight.Add(-1)
	}))
	defer srv.Close()
	e := newTestEnv(t, WorkerConfig{Concurrency: limit})
	for i := range 10 {
		e.outbox.add(delivery(fmt.Sprint("d", i), srv.URL))
	}
	extra := make(chan bool, 1)
	go func() {
		for range limit {
			<-arrived
		}
		// The first wave is in and held. Watch a while for a request beyond
		// the limit: with the bound in place none can come, so the window
		// only decides how surely a broken bound is caught, never whether
		// a correct one passes.
		select {
		case <-arrived:
			extra <- true
		case <-time.After(200 * time.Millisecond):
			extra <- false
		}
		close(release)
	}()
	e.runOnce(t, 10, 0)
	if <-extra {
		t.Errorf("a request beyond the limit of %d arrived while %d were in flight", limit, limit)
	}
	if p := peak.Load(); p > limit {
		t.Errorf("%d requests at once, limit %d", p, limit)
	}
}

func TestWorkerMintsFreshTokens(t *testing.T) {
	key := ecKey(t)
	rcv := newScripted(t, 503, 200)
	var e *testEnv
	// The default is RSA; the client's ES256 signs its fresh tokens.
	minter := NewMinter("https://id.example", staticKeys{rsaKey(t), key}, func() time.Time { return e.clock.Now() }, 0)
	e = newTestEnv(t, WorkerConfig{Minter: minter})
	d := delivery("d1", rcv.srv.URL)
	d.Subject, d.SessionID, d.Algorithm = "user-1", "sess-1", jose.ES256
	e.outbox.add(d)
	e.runOnce(t, 0, 1)
	e.clock.Advance(10 * time.Minute) // far past the first token's exp
	e.runOnce(t, 1, 0)
	got := rcv.received()
	if len(got) != 2 {
		t.Fatalf("%d requests, want 2", len(got))
	}
	var jtis []any
	for i, tok := range got {
		jws, err := jose.ParseSignedCompact(tok, []jose.SignatureAlgorithm{jose.ES256})
		if err != nil {
			t.Fatalf("request %d: %q is not a signed token: %v", i, tok, err)
		}
		var c map[string]any
		payload, err := jws.Verify(key.Signer.Public())
		if err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(payload, &c); err != nil {
			t.Fatal(err)
		}
		wantIat := t0.Add(time.Duration(i) * 10 * time.Minute).Unix()
		if c["iat"] != float64(wantIat) || c["sub"] != "user-1" || c["sid"] != "sess-1" || c["aud"] != "client-d1" {
			t.Errorf("request %d claims %v, want iat %d (minted at the attempt)", i, c, wantIat)
		}
		jtis = append(jtis, c["jti"])
	}
	if jtis[0] == jtis[1] {
		t.Error("the retry reused the jti")
	}
}

func TestWorkerLeavesInterruptedAttemptsToTheLease(t *testing.T) {
	var hits atomic.Int32
	arrived := make(chan struct{}, 1)
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// The server notices a client hanging up only once the body is read.
		_ = r.ParseForm()
		if hits.Add(1) == 1 { // the first request hangs until the worker stops
			arrived <- struct{}{}
			select {
			case <-r.Context().Done():
			case <-release:
			}
		}
	}))
	defer srv.Close()
	defer close(release)
	e := newTestEnv(t, WorkerConfig{})
	e.outbox.add(delivery("d1", srv.URL))
	ctx, cancel := context.WithCancel(t.Context())
	go func() { <-arrived; cancel() }()
	sent, failed, err := e.worker.RunOnce(ctx)
	if sent != 0 || failed != 0 || err != nil {
		t.Fatalf("interrupted RunOnce: %d %d %v, want nothing counted", sent, failed, err)
	}
	if r := e.outbox.get("d1"); len(r.recorded) != 0 || r.d.Attempts != 0 {
		t.Fatalf("recorded %v attempts %d, want nothing", r.recorded, r.d.Attempts)
	}
	e.runOnce(t, 0, 0) // still leased
	e.clock.Advance(DefaultLease)
	e.runOnce(t, 1, 0) // the lease ran out: sent again
}

func TestBackoff(t *testing.T) {
	var r float64
	w := NewWorker(&memOutbox{}, WorkerConfig{Rand: func() float64 { return r }})
	for failed, want := range map[int]time.Duration{
		0: 10 * time.Second, 1: 20 * time.Second, 2: 40 * time.Second, 8: 2560 * time.Second,
		9: time.Hour, 60: time.Hour, 1 << 30: time.Hour,
	} {
		if got := w.backoff(failed); got != want {
			t.Errorf("backoff(%d) = %v, want %v", failed, got, want)
		}
	}
	r = 0.5
	if got := w.backoff(1); got != 15*time.Second {
		t.Errorf("jitter 0.5: %v, want 15s", got)
	}
	r = 0.999999
	if got := w.backoff(20); got <= 30*time.Minute || got > time.Hour {
		t.Errorf("jitter near 1: %v, want just over half the cap", got)
	}
}

func TestRunDrainsAndWakes(t *testing.T) {
	hit := make(chan string, 16)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hit <- r.PostFormValue("logout_token")
	}))
	defer srv.Close()
	var guarded atomic.Int32
	e := newTestEnv(t, WorkerConfig{BatchSize: 2, Guard: func(ctx context.Context, fn func(context.Context) error) (bool, error) {
		guarded.Add(1)
		return true, fn(ctx)
	}})
	for i := range 5 {
		e.outbox.add(delivery(fmt.Sprint("d", i), srv.URL))
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() { defer close(done); e.worker.Run(ctx, time.Hour) }()
	wait := func(what string) {
		t.Helper()
		select {
		case <-hit:
		case <-time.After(10 * time.Second):
			t.Fatalf("%s: no delivery within 10 s", what)
		}
	}
	// The first round, at start, drains all five in batches of two; the
	// ticker (an hour) never fires.
	for range 5 {
		wait("draining")
	}
	if g := guarded.Load(); g != 1 {
		t.Errorf("guard entered %d times for one tick", g)
	}
	e.outbox.add(delivery("late", srv.URL))
	e.worker.Wake()
	wait("after Wake")
	cancel()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after its context ended")
	}
}

// silent is a receiver that accepts connections and closes them without an
// answer (as a crashed or black-holed app looks to the sender), counting
// them; healthy makes it answer 200 from then on.
type silent struct {
	srv     *httptest.Server
	mu      sync.Mutex
	conns   int
	healthy bool
}

func newSilent(t *testing.T) *silent {
	s := &silent{}
	s.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		s.conns++
		healthy := s.healthy
		s.mu.Unlock()
		if healthy {
			w.WriteHeader(http.StatusOK)
			return
		}
		conn, _, err := http.NewResponseController(w).Hijack()
		if err == nil {
			_ = conn.Close()
		}
	}))
	t.Cleanup(s.srv.Close)
	return s
}

func (s *silent) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.conns
}

func (s *silent) heal() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.healthy = true
}

// A receiver that does not answer is paused after three failures in a row:
// its other deliveries wait (unsent, unrecorded) while another app's go out;
// after the pause one probe goes, and once the receiver answers again
// everything waiting is sent.
func TestWorkerPausesAHostThatDoesNotAnswer(t *testing.T) {
	dead := newSilent(t)
	ok := newScripted(t, 200)
	e := newTestEnv(t, WorkerConfig{Concurrency: 1, Client: NewHTTPClient(2 * time.Second)})
	for _, id := range []string{"d1", "d2", "d3", "d4", "d5"} {
		e.outbox.add(delivery(id, dead.srv.URL))
	}
	e.outbox.add(delivery("other", ok.srv.URL))

	e.runOnce(t, 1, 3) // d1–d3 fail without an answer, d4 and d5 wait, "other" is delivered
	if n := dead.count(); n != 3 {
		t.Fatalf("the silent receiver was tried %d times, want 3 before the pause", n)
	}
	untouched := 0 // the sending order within a batch is not fixed: which two wait is not either
	for _, id := range []string{"d1", "d2", "d3", "d4", "d5"} {
		if r := e.outbox.get(id); r.d.Attempts == 0 && len(r.recorded) == 0 {
			untouched++
		}
	}
	if untouched != 2 {
		t.Fatalf("%d deliveries to the silent receiver untouched during the pause, want 2", untouched)
	}
	if r := e.outbox.get("other"); r.state != stateDone {
		t.Fatalf("another app's delivery waited behind the silent one: %s", r.state)
	}
	var paused int
	for _, l := range e.logLines(t) {
		if l["msg"] == "back-channel logout receiver not answering: pausing deliveries to it" {
			paused++
		}
	}
	if paused != 1 {
		t.Errorf("%d pause log lines, want 1", paused)
	}

	e.clock.Advance(2 * time.Minute) // past the 30 s pause and every lease
	e.runOnce(t, 0, 1)               // one probe, which fails: the pause doubles
	if n := dead.count(); n != 4 {
		t.Fatalf("after the pause the receiver was tried %d times in all, want 4 (one probe)", n)
	}

	dead.heal()
	e.clock.Advance(2 * time.Minute) // past the doubled pause
	e.runOnce(t, 5, 0)               // the probe answers: all five go out
	for _, id := range []string{"d1", "d2", "d3", "d4", "d5"} {
		if r := e.outbox.get(id); r.state != stateDone {
			t.Errorf("%s after the receiver recovered: %s", id, r.state)
		}
	}
}

// A delivery still waiting on a paused host when its retries end is given
// up, not left to wait forever.
func TestWorkerGivesUpDeferredDeliveriesWhenRetriesEnd(t *testing.T) {
	dead := newSilent(t)
	e := newTestEnv(t, WorkerConfig{Concurrency: 1, Client: NewHTTPClient(2 * time.Second)})
	for _, id := range []string{"d1", "d2", "d3"} {
		e.outbox.add(delivery(id, dead.srv.URL))
	}
	e.runOnce(t, 0, 3) // the breaker opens
	late := delivery("late", dead.srv.URL)
	late.ExpiresAt = t0.Add(time.Second)
	e.outbox.add(late)
	e.clock.Advance(2 * time.Second) // "late" is past its window while its host is paused
	e.runOnce(t, 0, 1)
	if r := e.outbox.get("late"); r.state != stateGaveUp || !strings.Contains(r.lastErr, "not answering") {
		t.Fatalf("late: %s %q", r.state, r.lastErr)
	}
	if n := dead.count(); n != 3 {
		t.Errorf("receiver tried %d times, want 3", n)
	}
}
