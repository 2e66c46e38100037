package mail

import (
	"context"
	"errors"
	"log/slog"
	"net/textproto"
	"strconv"
	"sync"
	"time"

	gomail "github.com/wneessen/go-mail"

	"github.com/gatehouse-id/gatehouse/internal/emailhash"
)

// Config configures a Mailer. Zero values take the defaults.
type Config struct {
	ProductName string       // brands the messages; default "Gatehouse"
	Logger      *slog.Logger // default slog.Default()
	QueueSize   int          // messages waiting to be sent; default 1000
	Workers     int          // concurrent deliveries; default 2

	// MaxAttempts is how often one message is tried before it is given up
	// (default 5); RetryDelay is the wait before the first retry (default 2s),
	// doubled before each further one (so about 30 s in all by default).
	// Permanent SMTP failures (5xx) are not retried.
	MaxAttempts int
	RetryDelay  time.Duration

	// Metrics counts messages sent and given up; nil counts nothing.
	Metrics *Metrics
	// LogKey keys the pseudonym (package emailhash) that stands for the
	// recipient in log lines; cmd derives it from GATEHOUSE_SECRET.
	LogKey [32]byte

	// Now is the clock for the time a security notice states; default
	// time.Now. Tests inject a fixed time.
	Now func() time.Time
}

const (
	defaultQueueSize   = 1000
	defaultWorkers     = 2
	defaultMaxAttempts = 5
	defaultRetryDelay  = 2 * time.Second
	maxRetryDelay      = time.Minute
	// attemptTimeout bounds one delivery attempt as a whole.
	attemptTimeout = 45 * time.Second
)

// Mailer renders the account emails and sends them in the background.
//
// Each method only puts the message on a bounded queue and returns: it never
// waits on SMTP, so the caller's response time does not depend on whether a
// message was sent (and thus not on whether an account exists). A small pool
// of workers renders and delivers the queued messages, retrying temporary
// failures with exponential backoff. The ctx given to the methods is used for
// logging only: the message outlives the request.
//
// Log lines name the kind of message, the error and a pseudonym of the
// recipient (to_hash, package emailhash), never the address or the body:
// links in it are secrets.
type Mailer struct {
	sender      Sender
	product     string
	logger      *slog.Logger
	maxAttempts int
	retryDelay  time.Duration
	metrics     *Metrics
	addrs       emailhash.Hasher
	now         func() time.Time

	queue chan job
	mu    sync.RWMutex // guards closed against sends on the closed queue
	// closed is set by Close; later messages are dropped.
	closed bool

	base      context.Context // cancelled when Close gives up waiting
	abort     context.CancelFunc
	closeOnce sync.Once
	done      chan struct{} // closed when every worker has returned
}

type job struct {
	kind *kind
	to   string
	data templateData
}

// NewMailer starts the workers; Close stops them.
func NewMailer(s Sender, cfg Config) *Mailer {
	if cfg.ProductName == "" {
		cfg.ProductName = "Gatehouse"
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.QueueSize <= 0 {
		cfg.QueueSize = defaultQueueSize
	}
	if cfg.Workers <= 0 {
		cfg.Workers = defaultWorkers
	}
	if cfg.MaxAttempts <= 0 {
		cfg.MaxAttempts = defaultMaxAttempts
	}
	if cfg.RetryDelay <= 0 {
		cfg.RetryDelay = defaultRetryDelay
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	base, abort := context.WithCancel(context.Background())
	m := &Mailer{
		sender:      s,
		product:     cleanText(cfg.ProductName),
		logger:      cfg.Logger,
		maxAttempts: cfg.MaxAttempts,
		retryDelay:  cfg.RetryDelay,
		metrics:     cfg.Metrics,
		addrs:       emailhash.New(cfg.LogKey),
		now:         cfg.Now,
		queue:       make(chan job, cfg.QueueSize),
		base:        base,
		abort:       abort,
		done:        make(chan struct{}),
	}
	var wg sync.WaitGroup
	for range cfg.Workers {
		wg.Go(m.work)
	}
	go func() {
		wg.Wait()
		close(m.done)
	}()
	return m
}

// VerifyEmail sends the address verification link (valid 24 hours).
func (m *Mailer) VerifyEmail(ctx context.Context, to, name, link string) {
	m.enqueue(ctx, kindVerifyEmail, to, name, templateData{Link: link})
}

// ResetPassword sends the password reset link (valid 1 hour).
func (m *Mailer) ResetPassword(ctx context.Context, to, name, link string) {
	m.enqueue(ctx, kindResetPassword, to, name, templateData{Link: link})
}

// PasswordChanged tells the user their password was changed, and what to do
// if it was not them.
func (m *Mailer) PasswordChanged(ctx context.Context, to, name string) {
	m.enqueue(ctx, kindPasswordChanged, to, name, templateData{})
}

// ConfirmNewEmail sends the confirmation link for an email change to the NEW
// address.
func (m *Mailer) ConfirmNewEmail(ctx context.Context, to, name, link string) {
	m.enqueue(ctx, kindConfirmNewEmail, to, name, templateData{Link: link})
}

// EmailChangeNotice tells the OLD address that the account's address is being
// changed to newEmail.
func (m *Mailer) EmailChangeNotice(ctx context.Context, to, name, newEmail string) {
	m.enqueue(ctx, kindEmailChangeNotice, to, name, templateData{NewEmail: cleanText(newEmail)})
}

// AccountDeleted confirms that the account was deleted.
func (m *Mailer) AccountDeleted(ctx context.Context, to, name string) {
	m.enqueue(ctx, kindAccountDeleted, to, name, templateData{})
}

// FactorAdded tells the user a sign-in method was added to their account,
// when (UTC, from Config.Now), and what to do if it was not them. factor
// describes the method as a phrase that completes "… was added: <factor>",
// e.g. `an authenticator app`, `a passkey named "MacBook"` or `a connection
// to GitHub`. It may carry user input (a passkey's name): it is cleaned like
// a display name and escaped in the HTML part.
func (m *Mailer) FactorAdded(ctx context.Context, to, name, factor string) {
	m.enqueue(ctx, kindFactorAdded, to, name, templateData{Factor: cleanTextN(factor, maxFactorRunes), When: m.when()})
}

// FactorRemoved tells the user a sign-in method was removed from their
// account; factor as for FactorAdded.
func (m *Mailer) FactorRemoved(ctx context.Context, to, name, factor string) {
	m.enqueue(ctx, kindFactorRemoved, to, name, templateData{Factor: cleanTextN(factor, maxFactorRunes), When: m.when()})
}

// RecoveryCodeUsed tells the user a recovery code was used to sign in and
// how many unused codes remain, urging new codes when few (or none) are
// left. A negative remaining counts as none.
func (m *Mailer) RecoveryCodeUsed(ctx context.Context, to, name string, remaining int) {
	m.enqueue(ctx, kindRecoveryCodeUsed, to, name, templateData{Remaining: max(remaining, 0), When: m.when()})
}

// MFAReset tells the user an administrator removed all their second factors
// (passkeys, authenticator app, recovery codes).
func (m *Mailer) MFAReset(ctx context.Context, to, name string) {
	m.enqueue(ctx, kindMFAReset, to, name, templateData{When: m.when()})
}

// when is the time a notice states: the time it was asked for, not the time
// a worker renders it (which may be later, after retries).
// SecondStepLocked tells the user that their password was entered and
// then failures wrong codes in a row, which locked the second step for
// lockedFor: someone may have their password. It names no code.
func (m *Mailer) SecondStepLocked(ctx context.Context, to, name string, failures int, lockedFor time.Duration) {
	m.enqueue(ctx, kindSecondStepLocked, to, name, templateData{Remaining: max(failures, 0), LockedFor: inWords(lockedFor), When: m.when()})
}

// inWords says a lockout duration: "15 minutes", "1 hour", "90 minutes".
func inWords(d time.Duration) string {
	switch {
	case d >= time.Hour && d%time.Hour == 0:
		if d == time.Hour {
			return "1 hour"
		}
		return strconv.Itoa(int(d/time.Hour)) + " hours"
	case d <= time.Minute:
		return "1 minute"
	}
	return strconv.Itoa(int((d+time.Minute-1)/time.Minute)) + " minutes"
}

func (m *Mailer) when() string {
	return m.now().UTC().Format(whenLayout)
}

// whenLayout spells the month out, so the date cannot be read day-first or
// month-first wrongly.
const whenLayout = "Monday, 2 January 2006 at 15:04 UTC"

// enqueue never blocks: when the queue is full (SMTP down or far behind) the
// message is dropped and an ERROR logged, rather than holding up the request
// that asked for it. Users can ask again (resend link, forgot password).
// d holds the fields of k's template; enqueue adds the common ones.
func (m *Mailer) enqueue(ctx context.Context, k *kind, to, name string, d templateData) {
	d.ProductName = m.product
	d.Name = cleanText(name)
	d.Email = cleanText(to)
	j := job{kind: k, to: to, data: d}
	m.mu.RLock()
	defer m.mu.RUnlock()
	if m.closed {
		m.logger.LogAttrs(ctx, slog.LevelError, "mail dropped: mailer is shut down",
			slog.String("kind", k.name), slog.String("to_hash", m.addrs.Sum(to)))
		m.metrics.result(k, false)
		return
	}
	select {
	case m.queue <- j:
	default:
		m.logger.LogAttrs(ctx, slog.LevelError, "mail dropped: queue full",
			slog.String("kind", k.name), slog.String("to_hash", m.addrs.Sum(to)), slog.Int("queue_size", cap(m.queue)))
		m.metrics.result(k, false)
	}
}

func (m *Mailer) work() {
	for j := range m.queue {
		m.deliver(j)
	}
}

// deliver renders and sends one message, retrying temporary failures.
func (m *Mailer) deliver(j job) {
	log := m.logger.With(slog.String("kind", j.kind.name), slog.String("to_hash", m.addrs.Sum(j.to)))
	msg, err := j.kind.render(j.data)
	if err != nil {
		log.Error("mail dropped: cannot render", slog.Any("error", err))
		m.metrics.result(j.kind, false)
		return
	}
	msg.To = j.to

	delay := m.retryDelay
	for attempt := 1; ; attempt++ {
		if m.base.Err() != nil {
			log.Error("mail dropped: shut down before it could be sent")
			m.metrics.result(j.kind, false)
			return
		}
		ctx, cancel := context.WithTimeout(m.base, attemptTimeout)
		err := m.sender.Send(ctx, msg)
		cancel()
		if err == nil {
			m.metrics.result(j.kind, true)
			if attempt > 1 {
				log.Info("mail sent after retry", slog.Int("attempt", attempt))
			} else {
				log.Debug("mail sent")
			}
			return
		}
		if permanent(err) || attempt >= m.maxAttempts {
			log.Error("mail not sent", slog.Int("attempts", attempt), slog.Any("error", err))
			m.metrics.result(j.kind, false)
			return
		}
		log.Warn("mail send failed; will retry", slog.Int("attempt", attempt),
			slog.Duration("retry_in", delay), slog.Any("error", err))
		t := time.NewTimer(delay)
		select {
		case <-t.C:
		case <-m.base.Done():
			t.Stop()
		}
		delay = min(delay*2, maxRetryDelay)
	}
}

// permanent reports whether err is an SMTP 5xx reply, which retrying will
// not change (bad recipient, authentication refused, message rejected).
func permanent(err error) bool {
	var se *gomail.SendError
	if errors.As(err, &se) {
		return se.ErrorCode() >= 500 && se.ErrorCode() < 600
	}
	var te *textproto.Error
	if errors.As(err, &te) {
		return te.Code >= 500 && te.Code < 600
	}
	return false
}

// Close stops accepting messages and waits until the queued ones have been
// delivered (or given up). When ctx ends first, it abandons the rest, which
// are logged as dropped, and returns ctx's error without waiting for a
// delivery in flight to time out. Close may be called more than once.
func (m *Mailer) Close(ctx context.Context) error {
	m.closeOnce.Do(func() {
		m.mu.Lock()
		m.closed = true
		close(m.queue)
		m.mu.Unlock()
	})
	select {
	case <-m.done:
		m.abort()
		return nil
	case <-ctx.Done():
		m.abort()
		return ctx.Err()
	}
}
