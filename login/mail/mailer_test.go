package mail

import (
	"context"
	"errors"
	"fmt"
	"net/textproto"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/gatehouse-id/gatehouse/internal/emailhash"
	"github.com/gatehouse-id/gatehouse/login/mail/mailtest"
)

// newTestMailer is a Mailer on a real SMTP sender to srv, with fast retries.
func newTestMailer(t *testing.T, srv *mailtest.Server, cfg Config) *Mailer {
	t.Helper()
	s, err := NewSender(srv.URL(), testFrom, cfg.Logger)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.RetryDelay == 0 {
		cfg.RetryDelay = 5 * time.Millisecond
	}
	m := NewMailer(s, cfg)
	t.Cleanup(func() { _ = m.Close(context.Background()) })
	return m
}

// testNow is the clock of the security notices in the tests: 15:05 in a zone
// an hour east of UTC, so the messages must say 14:05 UTC.
var testNow = time.Date(2025, time.March, 3, 15, 5, 0, 0, time.FixedZone("CET", 3600))

const testWhen = "Monday, 3 March 2025 at 14:05 UTC"

func TestMailerMessages(t *testing.T) {
	srv := mailtest.NewServer(t)
	m := newTestMailer(t, srv, Config{ProductName: "Acme ID", Now: func() time.Time { return testNow }})
	ctx := context.Background()
	const base = "https://id.acme.test/"

	tests := []struct {
		to, subject string
		send        func(to string)
		link        string   // "" when the message carries none
		want        []string // in both parts
	}{
		{
			to: "verify@example.com", subject: "Verify your email address", link: base + "verify-email?token=dmVyaWZ5LXRva2VuLTAxMjM0NTY3ODk",
			send: func(to string) {
				m.VerifyEmail(ctx, to, "Ada Lovelace", base+"verify-email?token=dmVyaWZ5LXRva2VuLTAxMjM0NTY3ODk")
			},
			want: []string{"24 hours", "verify@example.com"},
		},
		{
			to: "reset@example.com", subject: "Reset your password", link: base + "reset-password?token=cmVzZXQtdG9rZW4tMDEyMzQ1Njc4OQ",
			send: func(to string) {
				m.ResetPassword(ctx, to, "Ada Lovelace", base+"reset-password?token=cmVzZXQtdG9rZW4tMDEyMzQ1Njc4OQ")
			},
			want: []string{"1 hour", "If you did not ask for this, ignore this email."},
		},
		{
			to: "changed@example.com", subject: "Your password was changed",
			send: func(to string) { m.PasswordChanged(ctx, to, "Ada Lovelace") },
			want: []string{"was just changed", "reset your password"},
		},
		{
			to: "new@example.com", subject: "Confirm your new email address", link: base + "confirm-email?token=Y2hhbmdlLXRva2VuLTAxMjM0NTY3ODk",
			send: func(to string) {
				m.ConfirmNewEmail(ctx, to, "Ada Lovelace", base+"confirm-email?token=Y2hhbmdlLXRva2VuLTAxMjM0NTY3ODk")
			},
			want: []string{"new@example.com", "If you did not ask for this, ignore this email."},
		},
		{
			to: "old@example.com", subject: "Your email address is being changed",
			send: func(to string) { m.EmailChangeNotice(ctx, to, "Ada Lovelace", "new@example.com") },
			want: []string{"from <strong>old@example.com</strong> to <strong>new@example.com</strong>|from old@example.com to new@example.com", "reset your password"},
		},
		{
			to: "deleted@example.com", subject: "Your account was deleted",
			send: func(to string) { m.AccountDeleted(ctx, to, "Ada Lovelace") },
			want: []string{"was deleted", "deleted@example.com"},
		},
		{
			to: "added@example.com", subject: "A sign-in method was added to your account",
			send: func(to string) { m.FactorAdded(ctx, to, "Ada Lovelace", `a passkey named "MacBook"`) },
			want: []string{
				"A sign-in method was added to your Acme ID account",
				`: <strong>a passkey named &#34;MacBook&#34;</strong>.|: a passkey named "MacBook".`,
				"Time: " + testWhen,
				"If this wasn't you, reset your password", "contact your administrator",
			},
		},
		{
			to: "removed@example.com", subject: "A sign-in method was removed from your account",
			send: func(to string) { m.FactorRemoved(ctx, to, "Ada Lovelace", "a connection to GitHub") },
			want: []string{
				"A sign-in method was removed from your Acme ID account",
				"<strong>a connection to GitHub</strong>.|: a connection to GitHub.",
				"Time: " + testWhen,
				"If this wasn't you, reset your password", "contact your administrator",
			},
		},
		{
			to: "recovery@example.com", subject: "A recovery code was used to sign in",
			send: func(to string) { m.RecoveryCodeUsed(ctx, to, "Ada Lovelace", 7) },
			want: []string{
				"A recovery code was used to sign in to your Acme ID account",
				"You have 7 recovery codes left.", "Time: " + testWhen,
				"If this wasn't you, reset your password", "contact your administrator",
			},
		},
		{
			to: "locked@example.com", subject: "Wrong codes were entered after your password",
			send: func(to string) { m.SecondStepLocked(ctx, to, "Ada Lovelace", 5, 15*time.Minute) },
			want: []string{
				"entered the password of your Acme ID account", "then 5 wrong codes in a row",
				"locked for 15 minutes", "Time: " + testWhen, "someone has your password", "Forgot password",
			},
		},
		{
			to: "mfareset@example.com", subject: "Your two-factor sign-in was reset",
			send: func(to string) { m.MFAReset(ctx, to, "Ada Lovelace") },
			want: []string{
				"An administrator removed all second factors from your Acme ID account",
				"passkeys", "authenticator app", "recovery codes", "Time: " + testWhen,
				"asked to set up a second factor again", "contact your administrator",
			},
		},
	}
	for _, tt := range tests {
		tt.send(tt.to)
	}
	for _, tt := range tests {
		t.Run(tt.subject, func(t *testing.T) {
			got, err := srv.Wait(waitCtx(t), tt.to)
			if err != nil {
				t.Fatal(err)
			}
			if got.Subject != tt.subject {
				t.Errorf("subject = %q, want %q", got.Subject, tt.subject)
			}
			for part, body := range map[string]string{"text": got.Text, "html": got.HTML} {
				for _, w := range append([]string{"Acme ID", "Hi Ada Lovelace,"}, tt.want...) {
					if !containsAny(body, strings.Split(w, "|")) {
						t.Errorf("%s part lacks %q:\n%s", part, w, body)
					}
				}
				if tt.link != "" && !strings.Contains(body, tt.link) {
					t.Errorf("%s part lacks the link %q:\n%s", part, tt.link, body)
				}
				if tt.link == "" && strings.Contains(body, "http") {
					t.Errorf("%s part has a link but should not:\n%s", part, body)
				}
			}
			if tt.link != "" {
				if l := got.Link(base); l != tt.link {
					t.Errorf("Link(%q) = %q, want %q", base, l, tt.link)
				}
				if !strings.Contains(got.HTML, `href="`+tt.link+`"`) {
					t.Errorf("html part has no href to the link:\n%s", got.HTML)
				}
			}
			for _, bad := range []string{"<img", "src=", "<script", "{{", "<no value>"} {
				if strings.Contains(got.HTML, bad) || strings.Contains(got.Text, bad) {
					t.Errorf("message contains %q", bad)
				}
			}
			if !strings.Contains(got.HTML, "<title>"+tt.subject+"</title>") {
				t.Errorf("html part has no title %q", tt.subject)
			}
		})
	}
}

// A sign-in method's description carries user input (a passkey's name): it is
// escaped in the HTML part, and the text part is plain text, never HTML, with
// no way to add lines.
func TestMailerFactorEscaped(t *testing.T) {
	srv := mailtest.NewServer(t)
	m := newTestMailer(t, srv, Config{})
	ctx := context.Background()
	const factor = "a passkey named \"<script>alert(1)</script>\r\n\r\nFake: line <b>x</b>\u202e\""
	m.FactorAdded(ctx, "added@example.com", "Ada", factor)
	m.FactorRemoved(ctx, "removed@example.com", "Ada", factor)
	for _, to := range []string{"added@example.com", "removed@example.com"} {
		t.Run(to, func(t *testing.T) {
			got, err := srv.Wait(waitCtx(t), to)
			if err != nil {
				t.Fatal(err)
			}
			if strings.Contains(got.HTML, "<script") || strings.Contains(got.HTML, "<b>") {
				t.Errorf("html part has the factor's markup unescaped:\n%s", got.HTML)
			}
			if want := "<strong>a passkey named &#34;&lt;script&gt;alert(1)&lt;/script&gt; Fake: line &lt;b&gt;x&lt;/b&gt;&#34;</strong>"; !strings.Contains(got.HTML, want) {
				t.Errorf("html part lacks %q:\n%s", want, got.HTML)
			}
			if want := `: a passkey named "<script>alert(1)</script> Fake: line <b>x</b>".` + "\n"; !strings.Contains(got.Text, want) {
				t.Errorf("text part lacks %q:\n%s", want, got.Text)
			}
			for _, bad := range []string{"&lt;", "&gt;", "&#34;", "&ldquo;", "<strong>", "<p", "\nFake:", "\u202e"} {
				if strings.Contains(got.Text, bad) {
					t.Errorf("text part contains %q:\n%s", bad, got.Text)
				}
			}
			if strings.Contains(got.HTML, "\u202e") {
				t.Error("bidi override kept in the html part")
			}
		})
	}
	// A long description is cut, but keeps far more than a display name.
	if got := cleanTextN(strings.Repeat("é", 300), maxFactorRunes); len([]rune(got)) != maxFactorRunes+1 {
		t.Errorf("cleanTextN kept %d runes", len([]rune(got)))
	}
}

// The recovery-code notice counts the codes left in words that fit, and urges
// new codes when two or fewer are left.
func TestMailerRecoveryCodesLeft(t *testing.T) {
	srv := mailtest.NewServer(t)
	m := newTestMailer(t, srv, Config{Now: func() time.Time { return testNow }})
	const urge = "Generate new codes on your account page"
	tests := []struct {
		remaining int
		want      string
		urgent    bool
	}{
		{-1, "You have no recovery codes left. Generate new codes on your account page now", true},
		{0, "You have no recovery codes left. Generate new codes on your account page now", true},
		{1, "You have 1 recovery code left. Generate new codes on your account page soon.", true},
		{2, "You have 2 recovery codes left. Generate new codes on your account page soon.", true},
		{3, "You have 3 recovery codes left.", false},
		{10, "You have 10 recovery codes left.", false},
	}
	for _, tt := range tests {
		m.RecoveryCodeUsed(context.Background(), fmt.Sprintf("left%d@example.com", tt.remaining), "", tt.remaining)
	}
	for _, tt := range tests {
		t.Run(fmt.Sprint(tt.remaining), func(t *testing.T) {
			got, err := srv.Wait(waitCtx(t), fmt.Sprintf("left%d@example.com", tt.remaining))
			if err != nil {
				t.Fatal(err)
			}
			if got.Subject != "A recovery code was used to sign in" {
				t.Errorf("subject = %q", got.Subject)
			}
			for part, body := range map[string]string{"text": got.Text, "html": got.HTML} {
				if !strings.Contains(body, tt.want) {
					t.Errorf("%s part lacks %q:\n%s", part, tt.want, body)
				}
				if strings.Contains(body, urge) != tt.urgent {
					t.Errorf("%s part: urges new codes = %v, want %v:\n%s", part, !tt.urgent, tt.urgent, body)
				}
				if !strings.Contains(body, "Time: "+testWhen) {
					t.Errorf("%s part lacks the time:\n%s", part, body)
				}
				if tt.remaining != 1 && strings.Contains(body, " recovery code left") {
					t.Errorf("%s part uses the singular:\n%s", part, body)
				}
			}
			if strings.Contains(got.HTML, "<strong>You have") != tt.urgent {
				t.Errorf("html part: stressed = %v, want %v:\n%s", !tt.urgent, tt.urgent, got.HTML)
			}
		})
	}
}

// A notice states the time it was asked for, not the (later) time a worker
// renders it, and without Config.Now the clock is the real one.
func TestMailerNoticeTime(t *testing.T) {
	var clock atomic.Pointer[time.Time]
	t1, t2 := testNow, testNow.Add(3*time.Hour)
	clock.Store(&t1)
	f := &fakeSender{started: make(chan Message, 2), release: make(chan struct{})}
	m := NewMailer(f, Config{Workers: 1, Now: func() time.Time { return *clock.Load() }})
	m.VerifyEmail(context.Background(), "first@example.com", "", "https://x.test/v")
	<-f.started // the only worker is busy until release
	m.MFAReset(context.Background(), "ada@example.com", "")
	clock.Store(&t2)
	close(f.release)
	got := <-f.started
	if err := m.Close(waitCtx(t)); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(got.Text, "Time: "+testWhen+"\n") || !strings.Contains(got.HTML, "Time: "+testWhen+"<") {
		t.Errorf("want the time of the call, %s:\n%s\n%s", testWhen, got.Text, got.HTML)
	}

	srv := mailtest.NewServer(t)
	real := newTestMailer(t, srv, Config{})
	before := time.Now().Truncate(time.Minute)
	real.FactorRemoved(context.Background(), "ada@example.com", "", "an authenticator app")
	msg, err := srv.Wait(waitCtx(t), "ada@example.com")
	if err != nil {
		t.Fatal(err)
	}
	_, line, ok := strings.Cut(msg.Text, "Time: ")
	line, _, _ = strings.Cut(line, "\n")
	when, err := time.Parse(whenLayout, line)
	if !ok || err != nil {
		t.Fatalf("no parseable time (%v) in:\n%s", err, msg.Text)
	}
	if when.Before(before) || when.After(time.Now()) {
		t.Errorf("time %v, want between %v and now", when, before)
	}
}

func containsAny(s string, subs []string) bool {
	for _, sub := range subs {
		if strings.Contains(s, sub) {
			return true
		}
	}
	return false
}

// User-supplied names cannot add lines to the text part or markup to the HTML.
func TestMailerCleansName(t *testing.T) {
	srv := mailtest.NewServer(t)
	m := newTestMailer(t, srv, Config{})
	m.VerifyEmail(context.Background(), "ada@example.com", "Ada\r\n\r\nhttps://evil.example/ <b>x</b>\u202e", "https://id.example.com/v?token=abc")
	got, err := srv.Wait(waitCtx(t), "ada@example.com")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(got.Text, "Hi Ada https://evil.example/ <b>x</b>,\n") {
		t.Errorf("text part:\n%s", got.Text)
	}
	if strings.Contains(got.HTML, "<b>x</b>") || !strings.Contains(got.HTML, "&lt;b&gt;x&lt;/b&gt;") {
		t.Errorf("html part does not escape the name:\n%s", got.HTML)
	}
	if strings.Contains(got.Text+got.HTML, "\u202e") {
		t.Error("bidi override kept")
	}
	if !strings.Contains(got.Text, "Gatehouse") {
		t.Error("default product name missing")
	}
	if got := cleanText(strings.Repeat("é", 300)); len([]rune(got)) != maxNameRunes+1 {
		t.Errorf("cleanText kept %d runes", len([]rune(got)))
	}
}

func TestMailerEmptyName(t *testing.T) {
	srv := mailtest.NewServer(t)
	m := newTestMailer(t, srv, Config{})
	m.PasswordChanged(context.Background(), "ada@example.com", "  ")
	got, err := srv.Wait(waitCtx(t), "ada@example.com")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(got.Text, "Hello,\n") || !strings.Contains(got.HTML, "Hello,") {
		t.Errorf("greeting without a name:\n%s\n%s", got.Text, got.HTML)
	}
}

func TestMailerRetriesTemporaryFailure(t *testing.T) {
	srv := mailtest.NewServer(t, mailtest.FailFirst(2))
	logger, logs := testLogger()
	m := newTestMailer(t, srv, Config{Logger: logger})
	link := "https://id.example.com/reset-password?token=c2VjcmV0LXJlc2V0LXRva2Vu"
	m.ResetPassword(context.Background(), "ada@example.com", "Ada", link)
	got, err := srv.Wait(waitCtx(t), "ada@example.com")
	if err != nil {
		t.Fatal(err)
	}
	if got.Link("https://id.example.com/") != link {
		t.Errorf("Link = %q", got.Link("https://id.example.com/"))
	}
	if n := srv.Attempts(); n != 3 {
		t.Errorf("attempts = %d, want 3", n)
	}
	if err := m.Close(waitCtx(t)); err != nil {
		t.Fatal(err)
	}
	out := logs.String()
	if !strings.Contains(out, "will retry") || !strings.Contains(out, "mail sent after retry") {
		t.Errorf("log:\n%s", out)
	}
	if strings.Contains(out, "c2VjcmV0LXJlc2V0LXRva2Vu") {
		t.Errorf("log reveals the link:\n%s", out)
	}
}

func TestMailerGivesUpAndNeverLogsBodies(t *testing.T) {
	srv := mailtest.NewServer(t, mailtest.FailFirst(1000))
	logger, logs := testLogger()
	m := newTestMailer(t, srv, Config{Logger: logger, MaxAttempts: 3})
	m.VerifyEmail(context.Background(), "ada@example.com", "Ada", "https://id.example.com/verify-email?token=dG9wLXNlY3JldA")
	if err := m.Close(waitCtx(t)); err != nil {
		t.Fatal(err)
	}
	if n := srv.Attempts(); n != 3 {
		t.Errorf("attempts = %d, want 3", n)
	}
	out := logs.String()
	if !strings.Contains(out, "level=ERROR") || !strings.Contains(out, "mail not sent") || !strings.Contains(out, "attempts=3") {
		t.Errorf("log:\n%s", out)
	}
	if strings.Contains(out, "dG9wLXNlY3JldA") || strings.Contains(out, "verify-email") {
		t.Errorf("log reveals the link:\n%s", out)
	}
}

// fakeSender is for the queue's own behaviour (blocking, errors); delivery
// itself is tested against the SMTP server.
type fakeSender struct {
	calls   atomic.Int32
	started chan Message  // receives each message as its Send begins
	release chan struct{} // Send waits for it (or ctx) when non-nil
	err     error
}

func (f *fakeSender) Send(ctx context.Context, m Message) error {
	f.calls.Add(1)
	if f.started != nil {
		f.started <- m
	}
	if f.release != nil {
		select {
		case <-f.release:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return f.err
}

func TestMailerDoesNotRetryPermanentFailure(t *testing.T) {
	f := &fakeSender{err: fmt.Errorf("send: %w", &textproto.Error{Code: 550, Msg: "5.1.1 no such user"})}
	m := NewMailer(f, Config{RetryDelay: time.Millisecond})
	m.AccountDeleted(context.Background(), "ada@example.com", "Ada")
	if err := m.Close(waitCtx(t)); err != nil {
		t.Fatal(err)
	}
	if n := f.calls.Load(); n != 1 {
		t.Errorf("Send called %d times, want 1", n)
	}
	if permanent(errors.New("connection refused")) || permanent(&textproto.Error{Code: 451}) {
		t.Error("temporary failure taken as permanent")
	}
}

func TestMailerFullQueueDropsWithoutBlocking(t *testing.T) {
	f := &fakeSender{started: make(chan Message, 1), release: make(chan struct{})}
	logger, logs := testLogger()
	m := NewMailer(f, Config{Logger: logger, QueueSize: 1, Workers: 1})
	ctx := context.Background()

	m.VerifyEmail(ctx, "first@example.com", "", "https://x.test/1")
	first := <-f.started // the worker holds it, blocked in Send
	if first.To != "first@example.com" {
		t.Fatalf("first = %+v", first)
	}

	const extra = 50
	done := make(chan struct{})
	go func() {
		defer close(done)
		m.VerifyEmail(ctx, "second@example.com", "", "https://x.test/2") // fills the queue
		for i := range extra {
			m.ResetPassword(ctx, fmt.Sprintf("drop%d@example.com", i), "", "https://x.test/secret-link")
		}
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("enqueueing blocked on a full queue")
	}
	out := logs.String()
	if n := strings.Count(out, "mail dropped: queue full"); n != extra {
		t.Errorf("%d drops logged, want %d:\n%s", n, extra, out)
	}
	if !strings.Contains(out, "level=ERROR") || strings.Contains(out, "secret-link") {
		t.Errorf("log:\n%s", out)
	}

	close(f.release)
	second := <-f.started
	if second.To != "second@example.com" {
		t.Errorf("second = %+v", second)
	}
	if err := m.Close(waitCtx(t)); err != nil {
		t.Fatal(err)
	}
	if n := f.calls.Load(); n != 2 {
		t.Errorf("Send called %d times, want 2", n)
	}
}

func TestMailerCloseDrains(t *testing.T) {
	srv := mailtest.NewServer(t)
	m := newTestMailer(t, srv, Config{Workers: 3})
	const n = 25
	for i := range n {
		m.VerifyEmail(context.Background(), fmt.Sprintf("user%d@example.com", i), "", fmt.Sprintf("https://id.example.com/v?token=%d", i))
	}
	if err := m.Close(waitCtx(t)); err != nil {
		t.Fatal(err)
	}
	// Close returned: everything was delivered, no waiting needed.
	got := srv.Messages()
	if len(got) != n {
		t.Fatalf("%d messages delivered before Close returned, want %d", len(got), n)
	}
	seen := map[string]bool{}
	for _, r := range got {
		seen[r.To] = true
	}
	for i := range n {
		if !seen[fmt.Sprintf("user%d@example.com", i)] {
			t.Errorf("user%d not delivered", i)
		}
	}
	if err := m.Close(waitCtx(t)); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

func TestMailerCloseGivesUpWhenContextEnds(t *testing.T) {
	f := &fakeSender{started: make(chan Message, 10), release: make(chan struct{})}
	logger, logs := testLogger()
	m := NewMailer(f, Config{Logger: logger, Workers: 1})
	m.VerifyEmail(context.Background(), "a@example.com", "", "https://x.test/a")
	m.VerifyEmail(context.Background(), "b@example.com", "", "https://x.test/b")
	<-f.started // a is in flight and stays there

	ctx, cancel := context.WithCancel(context.Background())
	closed := make(chan error, 1)
	go func() { closed <- m.Close(ctx) }()
	cancel()
	select {
	case err := <-closed:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("Close = %v, want context.Canceled", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Close did not return when its context ended")
	}

	// After Close, messages are refused (logged), not queued and not a panic.
	m.AccountDeleted(context.Background(), "late@example.com", "")
	// The workers stop without sending b.
	select {
	case <-m.done:
	case <-time.After(10 * time.Second):
		t.Fatal("workers did not stop")
	}
	if n := f.calls.Load(); n != 1 {
		t.Errorf("Send called %d times, want 1", n)
	}
	out := logs.String()
	// The addresses appear as their pseudonyms, never in clear.
	var zero emailhash.Hasher
	for _, want := range []string{"mailer is shut down", "to_hash=" + zero.Sum("late@example.com"), "to_hash=" + zero.Sum("b@example.com")} {
		if !strings.Contains(out, want) {
			t.Errorf("log lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "@example.com") {
		t.Errorf("log names an address in clear:\n%s", out)
	}
}

// TestMailerMetrics: a delivered message counts as sent, a refused one (5xx)
// and one dropped after Close as failed, each under its kind.
func TestMailerMetrics(t *testing.T) {
	f := &fakeSender{}
	met := NewMetrics()
	m := NewMailer(f, Config{RetryDelay: time.Millisecond, Metrics: met, Workers: 1})
	m.VerifyEmail(context.Background(), "ok@example.com", "", "https://x.test/v")
	if err := m.Close(waitCtx(t)); err != nil {
		t.Fatal(err)
	}
	m.ResetPassword(context.Background(), "late@example.com", "", "https://x.test/r") // after Close: dropped

	f2 := &fakeSender{err: fmt.Errorf("send: %w", &textproto.Error{Code: 550, Msg: "5.1.1 no such user"})}
	m2 := NewMailer(f2, Config{RetryDelay: time.Millisecond, Metrics: met})
	m2.VerifyEmail(context.Background(), "gone@example.com", "", "https://x.test/v")
	if err := m2.Close(waitCtx(t)); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		vec  *prometheus.CounterVec
		kind string
		want float64
	}{
		{met.sent, "verify_email", 1}, {met.failed, "verify_email", 1},
		{met.sent, "reset_password", 0}, {met.failed, "reset_password", 1},
		{met.sent, "account_deleted", 0}, {met.failed, "account_deleted", 0},
	} {
		var v dto.Metric
		if err := c.vec.WithLabelValues(c.kind).Write(&v); err != nil {
			t.Fatal(err)
		}
		if got := v.GetCounter().GetValue(); got != c.want {
			t.Errorf("%s: got %v, want %v", c.kind, got, c.want)
		}
	}
}

// Enqueueing is safe from many goroutines, also racing with Close.
func TestMailerConcurrentUse(t *testing.T) {
	srv := mailtest.NewServer(t)
	m := newTestMailer(t, srv, Config{QueueSize: 500})
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 10 {
				m.PasswordChanged(context.Background(), fmt.Sprintf("g%d-%d@example.com", g, i), "")
			}
		})
	}
	wg.Wait()
	if err := m.Close(waitCtx(t)); err != nil {
		t.Fatal(err)
	}
	if n := len(srv.Messages()); n != 80 {
		t.Errorf("%d delivered, want 80", n)
	}

	// Enqueueing racing with Close neither panics nor blocks.
	m2 := NewMailer(&fakeSender{}, Config{})
	var wg2 sync.WaitGroup
	for range 4 {
		wg2.Go(func() {
			for range 100 {
				m2.PasswordChanged(context.Background(), "late@example.com", "")
			}
		})
	}
	wg2.Go(func() { _ = m2.Close(context.Background()) })
	wg2.Wait()
	if err := m2.Close(waitCtx(t)); err != nil {
		t.Fatal(err)
	}
}

// The lockout duration in the lock notice is said in words.
func TestInWords(t *testing.T) {
	for d, want := range map[time.Duration]string{
		15 * time.Minute: "15 minutes", time.Hour: "1 hour", 2 * time.Hour: "2 hours",
		90 * time.Minute: "90 minutes", 30 * time.Second: "1 minute", 61 * time.Second: "2 minutes",
	} {
		if got := inWords(d); got != want {
			t.Errorf("inWords(%v) = %q, want %q", d, got, want)
		}
	}
}
