package backchannel

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/url"
	"sync"
	"time"

	"github.com/go-jose/go-jose/v4"
)

// Delivery is one Logout Token owed to one client: a row of the outbox.
type Delivery struct {
	ID       string
	ClientID string
	// URI is the client's backchannel_logout_uri when the delivery was
	// enqueued.
	URI string
	// Token is the Logout Token minted when the delivery was enqueued. It is
	// sent as is unless the Worker has a Minter and Subject is set.
	Token string
	// Subject and SessionID, when Subject is set and the Worker has a Minter,
	// make the Worker mint a fresh token for every attempt instead of
	// sending Token. A token minted at enqueue time expires within minutes
	// (DefaultLifetime), while retries go on for hours; a receiver that was
	// down for longer would otherwise only ever get a token it must reject.
	Subject   string
	SessionID string
	// Algorithm is the client's id_token_signed_response_alg, which
	// freshly minted tokens are signed in; "" means the default.
	Algorithm jose.SignatureAlgorithm
	// Attempts is how many attempts failed before this one (how often Retry
	// was recorded); the backoff after a failure grows with it.
	Attempts  int
	CreatedAt time.Time
	// ExpiresAt ends the retries: a failure whose next attempt would come
	// later is given up instead. A zero ExpiresAt allows a single attempt.
	ExpiresAt time.Time
}

// Outbox is the durable queue of deliveries, shared by every instance.
type Outbox interface {
	// Claim returns up to limit deliveries that are due at now (pending, next
	// attempt not after now, no lease or an expired one) and leases them until
	// now+lease, atomically: a delivery leased by one caller is not returned
	// to another until the lease ends, so concurrent workers never send the
	// same delivery twice, while a worker that dies mid-send loses nothing.
	Claim(ctx context.Context, now time.Time, limit int, lease time.Duration) ([]Delivery, error)
	// Complete records the delivery as delivered with the answer's status.
	Complete(ctx context.Context, id string, at time.Time, status int) error
	// Retry records a failed attempt (status 0 when there was no answer),
	// counts it in Attempts, releases the lease and makes the delivery due
	// again at next.
	Retry(ctx context.Context, id string, at time.Time, status int, errText string, next time.Time) error
	// GiveUp records the delivery as given up for good.
	GiveUp(ctx context.Context, id string, at time.Time, status int, errText string) error
}

// Metrics is told the final outcome of every attempt the Worker records
// (Delivered, Retry or GiveUp), e.g. to count them by outcome. clientID is
// there for callers that want it; a label per client is only wise with few
// clients.
type Metrics interface {
	Observe(clientID string, outcome Outcome)
}

// Worker defaults.
const (
	DefaultBatchSize   = 32
	DefaultConcurrency = 8
	DefaultLease       = time.Minute
	DefaultBaseBackoff = 10 * time.Second
	DefaultMaxBackoff  = time.Hour
	DefaultInterval    = 5 * time.Second
	// maxRoundsPerTick bounds how many full batches one tick of Run sends
	// back to back, so one tick cannot hold the background lock forever.
	maxRoundsPerTick = 16
	// recordTimeout bounds writing an outcome after the caller's context has
	// ended, so an outcome already known is not thrown away on shutdown.
	recordTimeout = 5 * time.Second
)

// WorkerConfig configures a Worker. Zero fields take the defaults.
type WorkerConfig struct {
	// Client posts the tokens; nil means NewHTTPClient(DefaultTimeout).
	Client *http.Client
	// Minter, when set, mints a fresh token per attempt for deliveries that
	// name their Subject (see Delivery).
	Minter *Minter
	// Logger gets a line per outcome; nil discards them.
	Logger *slog.Logger
	// Metrics, when set, is told every outcome.
	Metrics Metrics
	// Now is the clock; time.Now when nil.
	Now func() time.Time
	// Rand returns a number in [0, 1) for the backoff's jitter; nil means
	// math/rand/v2's Float64. It is called from several goroutines at once.
	Rand func() float64
	// Guard, when set, wraps every round of Run, e.g. a store's WithLock with
	// the lock's name bound, so one instance sends at a time. ran false means
	// another instance holds it. RunOnce does not use it.
	Guard func(ctx context.Context, fn func(ctx context.Context) error) (ran bool, err error)

	// BatchSize is how many deliveries one RunOnce claims (32).
	BatchSize int
	// Concurrency is how many deliveries are posted at once (8).
	Concurrency int
	// Lease is how long claimed deliveries are reserved for this worker (1
	// min). RunOnce stops sending at half of it, so a slow batch ends before
	// another worker may claim the same deliveries.
	Lease time.Duration
	// BaseBackoff is the wait after the first failure (10 s); it doubles with
	// each further failure up to MaxBackoff (1 h). Jitter shortens each wait
	// by up to half, so deliveries that failed together spread out.
	BaseBackoff time.Duration
	MaxBackoff  time.Duration
}

// Worker sends the outbox's due deliveries and records their outcomes. It is
// safe for concurrent use, and several Workers (in several instances) may
// share one Outbox: the Outbox's leases keep them from sending a delivery
// twice.
type Worker struct {
	outbox  Outbox
	cfg     WorkerConfig
	log     *slog.Logger
	wake    chan struct{}
	breaker breaker // per host; see breaker.go
}

// NewWorker returns a Worker for outbox.
func NewWorker(outbox Outbox, cfg WorkerConfig) *Worker {
	if cfg.Client == nil {
		cfg.Client = NewHTTPClient(DefaultTimeout)
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Rand == nil {
		cfg.Rand = rand.Float64
	}
	if cfg.BatchSize <= 0 {
		cfg.BatchSize = DefaultBatchSize
	}
	if cfg.Concurrency <= 0 {
		cfg.Concurrency = DefaultConcurrency
	}
	if cfg.Lease <= 0 {
		cfg.Lease = DefaultLease
	}
	if cfg.BaseBackoff <= 0 {
		cfg.BaseBackoff = DefaultBaseBackoff
	}
	if cfg.MaxBackoff <= 0 {
		cfg.MaxBackoff = DefaultMaxBackoff
	}
	cfg.MaxBackoff = max(cfg.MaxBackoff, cfg.BaseBackoff)
	return &Worker{
		outbox: outbox,
		cfg:    cfg,
		log:    cfg.Logger.With("component", "backchannel-logout"),
		wake:   make(chan struct{}, 1),
	}
}

// Wake makes a running Run start a round now instead of at its next tick,
// e.g. right after this instance enqueued deliveries. It never blocks.
func (w *Worker) Wake() {
	select {
	case w.wake <- struct{}{}:
	default: // a round is already pending
	}
}

// Run sends due deliveries every interval (0 or less means
// DefaultInterval), at start and whenever Wake is called, until ctx ends.
// A round that claimed a full batch is followed at once by another, up to a
// bound. Errors are logged and the next round tries again.
func (w *Worker) Run(ctx context.Context, every time.Duration) {
	if every <= 0 {
		every = DefaultInterval
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		w.tick(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-w.wake:
		}
	}
}

// tick runs rounds under the Guard while each claims a full batch.
func (w *Worker) tick(ctx context.Context) {
	rounds := func(ctx context.Context) error {
		for range maxRoundsPerTick {
			claimed, _, _, err := w.runOnce(ctx)
			if err != nil {
				return err
			}
			if claimed < w.cfg.BatchSize || ctx.Err() != nil {
				return nil
			}
		}
		return nil
	}
	var err error
	if w.cfg.Guard != nil {
		_, err = w.cfg.Guard(ctx, rounds)
	} else {
		err = rounds(ctx)
	}
	if err != nil && ctx.Err() == nil {
		w.log.ErrorContext(ctx, "back-channel logout round failed", "err", err)
	}
}

// RunOnce claims one batch of due deliveries, posts them (several at once)
// and records each outcome. sent counts the deliveries delivered, failed
// those retried later or given up. Deliveries whose attempt was cut short
// by ctx (or by the batch's time limit) are not recorded: their lease runs
// out and a later round sends them. err joins the errors of claiming and
// recording; a delivery whose outcome could not be recorded is sent again
// after its lease (at-least-once delivery, which receivers must tolerate).
func (w *Worker) RunOnce(ctx context.Context) (sent, failed int, err error) {
	_, sent, failed, err = w.runOnce(ctx)
	return sent, failed, err
}

func (w *Worker) runOnce(ctx context.Context) (claimed, sent, failed int, err error) {
	batch, err := w.outbox.Claim(ctx, w.cfg.Now(), w.cfg.BatchSize, w.cfg.Lease)
	if err != nil {
		return 0, 0, 0, fmt.Errorf("backchannel: claim deliveries: %w", err)
	}
	if len(batch) == 0 {
		return 0, 0, 0, nil
	}
	// Every attempt must end well within the lease; after it another worker
	// may claim the same deliveries and send them again.
	sendCtx, cancel := context.WithTimeout(ctx, w.cfg.Lease/2)
	defer cancel()
	var (
		mu   sync.Mutex
		errs []error
		wg   sync.WaitGroup
		sem  = make(chan struct{}, w.cfg.Concurrency)
	)
	for _, d := range batch {
		wg.Go(func() {
			select {
			case sem <- struct{}{}:
			case <-sendCtx.Done():
				return // left to its lease
			}
			defer func() { <-sem }()
			outcome, err := w.deliver(ctx, sendCtx, d)
			mu.Lock()
			defer mu.Unlock()
			switch outcome {
			case Delivered:
				sent++
			case Retry, GiveUp:
				failed++
			}
			if err != nil {
				errs = append(errs, err)
			}
		})
	}
	wg.Wait()
	return len(batch), sent, failed, errors.Join(errs...)
}

// deliver makes one attempt at d and records its outcome, which it returns
// (0 when nothing was recorded).
func (w *Worker) deliver(ctx, sendCtx context.Context, d Delivery) (Outcome, error) {
	h := host(d.URI)
	if !w.breaker.allow(h, w.cfg.Now()) {
		return w.deferred(ctx, d, h)
	}
	res, sent := w.attempt(sendCtx, d)
	if sent && sendCtx.Err() == nil && w.breaker.report(h, res.Status != 0 || res.Outcome == Delivered, w.cfg.Now()) {
		w.log.WarnContext(ctx, "back-channel logout receiver not answering: pausing deliveries to it",
			"host", h, "until", w.breaker.pausedUntil(h))
	}
	if res.Outcome != Delivered && sendCtx.Err() != nil {
		// Stopped, or out of time: not the receiver's failure. Recording
		// nothing leaves the delivery to its lease, without counting an
		// attempt against it.
		return 0, nil
	}
	at := w.cfg.Now()
	// Record even if ctx has just ended: the outcome is known, and dropping
	// it would send a delivered token again.
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), recordTimeout)
	defer cancel()
	// Never the token: these lines name the delivery, the client and the
	// session, which is what an operator looking for a user's logout needs.
	log := w.log.With("client_id", d.ClientID, "delivery_id", d.ID, "host", host(d.URI), "attempt", d.Attempts+1)
	if d.SessionID != "" {
		log = log.With("session_id", d.SessionID)
	}
	if res.Status != 0 {
		log = log.With("status", res.Status)
	}
	outcome := res.Outcome
	var err error
	switch outcome {
	case Delivered:
		err = w.outbox.Complete(rctx, d.ID, at, res.Status)
		log.InfoContext(ctx, "back-channel logout delivered")
	case Retry:
		next := at.Add(w.backoff(d.Attempts))
		if !next.After(d.ExpiresAt) {
			err = w.outbox.Retry(rctx, d.ID, at, res.Status, res.Err.Error(), next)
			log.WarnContext(ctx, "back-channel logout delivery failed, will retry", "err", res.Err, "next_attempt", next)
			break
		}
		outcome = GiveUp
		errText := fmt.Sprintf("%v (retries ended at %s)", res.Err, d.ExpiresAt.UTC().Format(time.RFC3339))
		err = w.outbox.GiveUp(rctx, d.ID, at, res.Status, errText)
		log.ErrorContext(ctx, "back-channel logout delivery given up: retries ended", "err", res.Err, "expired_at", d.ExpiresAt)
	case GiveUp:
		err = w.outbox.GiveUp(rctx, d.ID, at, res.Status, res.Err.Error())
		log.ErrorContext(ctx, "back-channel logout delivery given up: the receiver refused it", "err", res.Err)
	}
	if m := w.cfg.Metrics; m != nil {
		m.Observe(d.ClientID, outcome)
	}
	if err != nil {
		return outcome, fmt.Errorf("backchannel: record %s of delivery %s: %w", outcome, d.ID, err)
	}
	return outcome, nil
}

// deferred handles d while its host's breaker is open: nothing is sent or
// recorded (the lease brings it back after the pause), unless its retries
// have ended, when it is given up like any other.
func (w *Worker) deferred(ctx context.Context, d Delivery, h string) (Outcome, error) {
	at := w.cfg.Now()
	if at.Before(d.ExpiresAt) {
		return 0, nil
	}
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), recordTimeout)
	defer cancel()
	errText := fmt.Sprintf("receiver %s not answering (retries ended at %s)", h, d.ExpiresAt.UTC().Format(time.RFC3339))
	err := w.outbox.GiveUp(rctx, d.ID, at, 0, errText)
	w.log.ErrorContext(ctx, "back-channel logout delivery given up: retries ended", "client_id", d.ClientID, "delivery_id", d.ID,
		"session_id", d.SessionID, "host", h, "err", "receiver not answering")
	if m := w.cfg.Metrics; m != nil {
		m.Observe(d.ClientID, GiveUp)
	}
	if err != nil {
		return GiveUp, fmt.Errorf("backchannel: record given_up of delivery %s: %w", d.ID, err)
	}
	return GiveUp, nil
}

// attempt sends d once: a freshly minted token when the Worker can mint one
// for d, else the stored one. sent is false when nothing went out (no token
// could be minted), which says nothing about the receiver.
func (w *Worker) attempt(ctx context.Context, d Delivery) (res Result, sent bool) {
	token := d.Token
	if w.cfg.Minter != nil && d.Subject != "" {
		var err error
		if token, _, err = w.cfg.Minter.Mint(d.ClientID, d.Algorithm, d.Subject, d.SessionID, false); err != nil {
			// No signing key loaded yet, most likely: try again later.
			return Result{Outcome: Retry, Err: fmt.Errorf("mint logout token: %w", err)}, false
		}
	}
	return Send(ctx, w.cfg.Client, d.URI, token), true
}

// backoff is the wait after a delivery's (failed+1)-th failure:
// BaseBackoff·2^failed, at most MaxBackoff, less a random part of up to half.
func (w *Worker) backoff(failed int) time.Duration {
	d := w.cfg.BaseBackoff
	for i := 0; i < failed && d < w.cfg.MaxBackoff; i++ {
		d *= 2
	}
	d = min(d, w.cfg.MaxBackoff)
	return d - time.Duration(float64(d)*w.cfg.Rand()/2)
}

// host is the host of uri for log lines: enough to tell receivers apart,
// without a query that might carry something the receiver considers secret.
func host(uri string) string {
	u, err := url.Parse(uri)
	if err != nil {
		return ""
	}
	return u.Host
}
