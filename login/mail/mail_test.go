package mail

import (
	"bytes"
	"context"
	"log/slog"
	"mime"
	"net"
	netmail "net/mail"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse-id/gatehouse/login/mail/mailtest"
)

const testFrom = "Gatehouse <no-reply@gatehouse.test>"

// syncBuffer is a bytes.Buffer safe for the concurrent writes of a logger.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func testLogger() (*slog.Logger, *syncBuffer) {
	buf := &syncBuffer{}
	return slog.New(slog.NewTextHandler(buf, &slog.HandlerOptions{Level: slog.LevelDebug})), buf
}

func waitCtx(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func newSMTPSender(t *testing.T, smtpURL string) *smtpSender {
	t.Helper()
	s, err := NewSender(smtpURL, testFrom, nil)
	if err != nil {
		t.Fatalf("NewSender(%q): %v", smtpURL, err)
	}
	ss, ok := s.(*smtpSender)
	if !ok {
		t.Fatalf("NewSender(%q) = %T, want *smtpSender", smtpURL, s)
	}
	return ss
}

func TestNewSenderParsesSMTPURL(t *testing.T) {
	tests := []struct {
		url  string
		want smtpConfig
	}{
		{"smtp://127.0.0.1:1025", smtpConfig{host: "127.0.0.1", port: 1025, tls: TLSOpportunistic, loopback: true}},
		{"smtp://localhost:1025/", smtpConfig{host: "localhost", port: 1025, tls: TLSOpportunistic, loopback: true}},
		{"smtp://[::1]:25", smtpConfig{host: "::1", port: 25, tls: TLSOpportunistic, loopback: true}},
		{"smtp://mail.example.com", smtpConfig{host: "mail.example.com", port: 25, tls: TLSOpportunistic}},
		{"smtp://mail.example.com:587?tls=starttls", smtpConfig{host: "mail.example.com", port: 587, tls: TLSStartTLS}},
		{"smtp://mail.example.com:587?tls=STARTTLS", smtpConfig{host: "mail.example.com", port: 587, tls: TLSStartTLS}},
		{"smtp://mail.example.com:25?tls=opportunistic", smtpConfig{host: "mail.example.com", port: 25, tls: TLSOpportunistic}},
		{"smtp://mail.example.com:465?tls=implicit", smtpConfig{host: "mail.example.com", port: 465, tls: TLSImplicit}},
		{"smtps://mail.example.com", smtpConfig{host: "mail.example.com", port: 465, tls: TLSImplicit}},
		{"smtps://mail.example.com:2465?tls=implicit", smtpConfig{host: "mail.example.com", port: 2465, tls: TLSImplicit}},
		{"SMTP://apikey:s%40cr%2Ft@smtp.example.com:587?tls=starttls",
			smtpConfig{host: "smtp.example.com", port: 587, tls: TLSStartTLS, user: "apikey", password: "s@cr/t", hasUser: true}},
		{"smtp://user@127.0.0.1:1025", smtpConfig{host: "127.0.0.1", port: 1025, tls: TLSOpportunistic, user: "user", hasUser: true, loopback: true}},
	}
	for _, tt := range tests {
		t.Run(tt.url, func(t *testing.T) {
			s := newSMTPSender(t, tt.url)
			if s.cfg != tt.want {
				t.Errorf("config = %+v, want %+v", s.cfg, tt.want)
			}
		})
	}
}

func TestNewSenderRejectsBadSMTPURL(t *testing.T) {
	for _, u := range []string{
		"mail.example.com:25",                            // no scheme
		"http://mail.example.com",                        // wrong scheme
		"smtp://",                                        // no host
		"smtp:mail.example.com",                          // opaque
		"smtp://mail.example.com:0",                      // port out of range
		"smtp://mail.example.com:70000",                  // port out of range
		"smtp://mail.example.com:smtp",                   // port not a number
		"smtp://mail.example.com/path",                   // path
		"smtp://mail.example.com?tls=maybe",              // unknown tls mode
		"smtp://mail.example.com?tsl=starttls",           // unknown parameter (typo)
		"smtps://mail.example.com?tls=starttls",          // contradiction
		"smtp://:hunter2@mail.example.com",               // password without user
		"smtp://user:hunter2@mail.example.com:25%zz",     // unparseable, with a password
		"smtp://user:hunter2@mail.example.com?tls=maybe", // bad, with a password
		"smtp://::",                  // host ":" (url.Parse takes it)
		"smtp://mail;example.com",    // not a host name
		"smtp://[fe80::1%25eth0]:25", // zoned address
	} {
		t.Run(u, func(t *testing.T) {
			s, err := NewSender(u, testFrom, nil)
			if err == nil {
				t.Fatalf("NewSender(%q) = %T, want an error", u, s)
			}
			if !strings.Contains(err.Error(), "SMTP_URL") {
				t.Errorf("error %q does not name SMTP_URL", err)
			}
			if strings.Contains(err.Error(), "hunter2") {
				t.Errorf("error %q reveals the password", err)
			}
		})
	}
}

func TestNewSenderFrom(t *testing.T) {
	for _, from := range []string{"not an address", "Gatehouse <no-reply>", "<@localhost>", "a@b, c@d"} {
		for _, u := range []string{"", "smtp://127.0.0.1:1025"} {
			if _, err := NewSender(u, from, nil); err == nil || !strings.Contains(err.Error(), "GATEHOUSE_MAIL_FROM") {
				t.Errorf("NewSender(%q, %q) error = %v, want one naming GATEHOUSE_MAIL_FROM", u, from, err)
			}
		}
	}
	if _, err := NewSender("smtp://127.0.0.1:1025", "", nil); err == nil || !strings.Contains(err.Error(), "GATEHOUSE_MAIL_FROM") {
		t.Errorf("SMTP without a from address: error = %v, want one naming GATEHOUSE_MAIL_FROM", err)
	}
	s := newSMTPSender(t, "smtp://127.0.0.1:1025")
	if s.from.Name != "Gatehouse" || s.from.Address != "no-reply@gatehouse.test" || s.msgIDDomain != "gatehouse.test" {
		t.Errorf("from = %+v, message-id domain %q", s.from, s.msgIDDomain)
	}
}

func TestLogSink(t *testing.T) {
	logger, buf := testLogger()
	s, err := NewSender("", "", logger)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := s.(*logSink); !ok {
		t.Fatalf("NewSender(\"\") = %T, want the log sink", s)
	}
	link := "http://127.0.0.1:8080/verify-email?token=dGhpcyBpcyBub3QgYSB0b2tlbg"
	err = s.Send(context.Background(), Message{To: "ada@example.com", Subject: "Verify your email address", Text: "Open " + link + "\n", HTML: "<p>html</p>"})
	if err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	for _, want := range []string{"level=INFO", "ada@example.com", "Verify your email address", link, "development only", "no SMTP_URL"} {
		if !strings.Contains(out, want) {
			t.Errorf("log %q lacks %q", out, want)
		}
	}
}

func TestSendOverSMTP(t *testing.T) {
	srv := mailtest.NewServer(t)
	s := newSMTPSender(t, srv.URL())
	link := "https://id.example.com/verify-email?token=Zm9vYmFyYmF6-_qux0123456789abcdefghijklmnopqrstuv"
	text := "Hello,\n\nopen this link:\n\n" + link + "\n\nThanks\n"
	html := `<p>Hello,</p><p><a href="` + link + `">` + link + `</a></p>`
	if err := s.Send(waitCtx(t), Message{To: "ada@example.com", Subject: "Grüße: verify", Text: text, HTML: html}); err != nil {
		t.Fatalf("Send: %v", err)
	}
	got, err := srv.Wait(waitCtx(t), "ada@example.com")
	if err != nil {
		t.Fatal(err)
	}
	if got.Subject != "Grüße: verify" {
		t.Errorf("subject = %q", got.Subject)
	}
	if !strings.Contains(got.Text, link) || !strings.Contains(got.HTML, link) {
		t.Errorf("link not intact in both parts:\ntext: %q\nhtml: %q", got.Text, got.HTML)
	}
	if got.Text != text {
		t.Errorf("text = %q, want %q", got.Text, text)
	}
	if l := got.Link("https://id.example.com/"); l != link {
		t.Errorf("Link = %q, want %q", l, link)
	}
	if got.From != "no-reply@gatehouse.test" || got.To != "ada@example.com" || got.TLS || got.AuthUser != "" {
		t.Errorf("envelope from %q to %q, tls %v, auth %q", got.From, got.To, got.TLS, got.AuthUser)
	}

	h := got.Header
	if mt, params, err := mime.ParseMediaType(h.Get("Content-Type")); err != nil || mt != "multipart/alternative" || params["boundary"] == "" {
		t.Errorf("Content-Type = %q (%v)", h.Get("Content-Type"), err)
	}
	if h.Get("MIME-Version") != "1.0" {
		t.Errorf("MIME-Version = %q", h.Get("MIME-Version"))
	}
	if d, err := h.Date(); err != nil || time.Since(d).Abs() > time.Minute {
		t.Errorf("Date = %q (%v)", h.Get("Date"), err)
	}
	if id := h.Get("Message-ID"); !strings.HasPrefix(id, "<") || !strings.HasSuffix(id, "@gatehouse.test>") || len(id) < 20 {
		t.Errorf("Message-ID = %q", id)
	}
	if from, err := h.AddressList("From"); err != nil || len(from) != 1 || from[0].Name != "Gatehouse" || from[0].Address != "no-reply@gatehouse.test" {
		t.Errorf("From = %q (%v)", h.Get("From"), err)
	}
	if to, err := h.AddressList("To"); err != nil || len(to) != 1 || to[0].Address != "ada@example.com" {
		t.Errorf("To = %q (%v)", h.Get("To"), err)
	}
	if h.Get("Auto-Submitted") != "auto-generated" {
		t.Errorf("Auto-Submitted = %q", h.Get("Auto-Submitted"))
	}

	// A second message gets its own Message-ID.
	if err := s.Send(waitCtx(t), Message{To: "ada@example.com", Subject: "again", Text: "x"}); err != nil {
		t.Fatal(err)
	}
	second, err := srv.Wait(waitCtx(t), "ADA@example.com")
	if err != nil {
		t.Fatal(err)
	}
	if second.Subject != "again" || second.Header.Get("Message-ID") == h.Get("Message-ID") {
		t.Errorf("second message: subject %q, Message-ID %q", second.Subject, second.Header.Get("Message-ID"))
	}
}

func TestSendRejectsBadRecipient(t *testing.T) {
	srv := mailtest.NewServer(t)
	s := newSMTPSender(t, srv.URL())
	if err := s.Send(waitCtx(t), Message{To: "not an address", Subject: "x", Text: "x"}); err == nil {
		t.Fatal("Send to an invalid address succeeded")
	}
	if n := srv.Attempts(); n != 0 {
		t.Errorf("server saw %d attempts", n)
	}
}

func TestSendWithAuth(t *testing.T) {
	srv := mailtest.NewServer(t, mailtest.WithAuth("gatehouse", "p@ss word"))
	if !strings.Contains(srv.URL(), "gatehouse:") {
		t.Fatalf("URL %q carries no credentials", srv.URL())
	}
	s := newSMTPSender(t, srv.URL())
	if err := s.Send(waitCtx(t), Message{To: "ada@example.com", Subject: "auth", Text: "x"}); err != nil {
		t.Fatalf("Send: %v", err)
	}
	got, err := srv.Wait(waitCtx(t), "ada@example.com")
	if err != nil {
		t.Fatal(err)
	}
	if got.AuthUser != "gatehouse" {
		t.Errorf("AuthUser = %q", got.AuthUser)
	}

	// Wrong password: AUTH fails, nothing is sent, and it is a permanent error.
	bad := newSMTPSender(t, "smtp://gatehouse:wrong@"+srv.Addr())
	err = bad.Send(waitCtx(t), Message{To: "bob@example.com", Subject: "auth", Text: "x"})
	if err == nil {
		t.Fatal("Send with a wrong password succeeded")
	}
	if !permanent(err) {
		t.Errorf("a 535 is not taken as permanent: %v", err)
	}

	// No credentials: the server refuses MAIL.
	anon := newSMTPSender(t, "smtp://"+srv.Addr())
	if err := anon.Send(waitCtx(t), Message{To: "bob@example.com", Subject: "auth", Text: "x"}); err == nil {
		t.Fatal("Send without AUTH to a server that requires it succeeded")
	}
	if n := len(srv.Messages()); n != 1 {
		t.Errorf("server holds %d messages, want 1", n)
	}
}

func TestAuthNeedsServerSupport(t *testing.T) {
	srv := mailtest.NewServer(t) // no AUTH advertised
	s := newSMTPSender(t, "smtp://user:secret@"+srv.Addr())
	err := s.Send(waitCtx(t), Message{To: "ada@example.com", Subject: "x", Text: "x"})
	if err == nil || !strings.Contains(err.Error(), "AUTH") {
		t.Fatalf("Send = %v, want an error about AUTH", err)
	}
}

// To a host that is not loopback, the password is never sent without TLS,
// even when the server offers AUTH PLAIN in the clear.
func TestAuthNotInClearToRemoteHost(t *testing.T) {
	srv := mailtest.NewServer(t, mailtest.WithAuth("gatehouse", "secret"))
	s := newSMTPSender(t, "smtp://gatehouse:secret@mail.example.test:25")
	if s.cfg.loopback {
		t.Fatal("mail.example.test taken as loopback")
	}
	s.dial = func(ctx context.Context, network, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, network, srv.Addr())
	}
	err := s.Send(waitCtx(t), Message{To: "ada@example.com", Subject: "x", Text: "x"})
	if err == nil || !strings.Contains(err.Error(), "unencrypted") {
		t.Fatalf("Send = %v, want a refusal to authenticate without TLS", err)
	}
	if n := srv.Attempts(); n != 0 {
		t.Errorf("server saw %d attempts", n)
	}
}

func TestStartTLSRequiredButNotOffered(t *testing.T) {
	srv := mailtest.NewServer(t)
	s := newSMTPSender(t, srv.URL()+"?tls=starttls")
	err := s.Send(waitCtx(t), Message{To: "ada@example.com", Subject: "x", Text: "x"})
	if err == nil || !strings.Contains(err.Error(), "STARTTLS") {
		t.Fatalf("Send = %v, want an error about STARTTLS", err)
	}
	if n := srv.Attempts(); n != 0 {
		t.Errorf("server saw %d attempts", n)
	}
}

func TestStartTLS(t *testing.T) {
	srv := mailtest.NewServer(t, mailtest.WithSTARTTLS(), mailtest.WithAuth("gatehouse", "secret"))
	for _, mode := range []string{"starttls", "opportunistic"} {
		t.Run(mode, func(t *testing.T) {
			s := newSMTPSender(t, srv.URL()+"?tls="+mode)
			s.rootCAs = srv.CertPool()
			to := mode + "@example.com"
			if err := s.Send(waitCtx(t), Message{To: to, Subject: "tls", Text: "x", HTML: "<p>x</p>"}); err != nil {
				t.Fatalf("Send: %v", err)
			}
			got, err := srv.Wait(waitCtx(t), to)
			if err != nil {
				t.Fatal(err)
			}
			if !got.TLS || got.AuthUser != "gatehouse" {
				t.Errorf("TLS %v, AuthUser %q", got.TLS, got.AuthUser)
			}
		})
	}
	t.Run("untrusted certificate", func(t *testing.T) {
		s := newSMTPSender(t, srv.URL()+"?tls=starttls") // system roots: the test CA is unknown
		if err := s.Send(waitCtx(t), Message{To: "x@example.com", Subject: "tls", Text: "x"}); err == nil {
			t.Fatal("Send trusted an unknown certificate")
		}
	})
}

func TestImplicitTLS(t *testing.T) {
	srv := mailtest.NewServer(t, mailtest.WithImplicitTLS(), mailtest.WithAuth("gatehouse", "secret"))
	if !strings.HasPrefix(srv.URL(), "smtps://") {
		t.Fatalf("URL = %q", srv.URL())
	}
	port := srv.Addr()[strings.LastIndexByte(srv.Addr(), ':'):]
	for _, u := range []string{srv.URL(), "smtp://gatehouse:secret@localhost" + port + "?tls=implicit"} {
		s := newSMTPSender(t, u)
		s.rootCAs = srv.CertPool()
		if err := s.Send(waitCtx(t), Message{To: "ada@example.com", Subject: "tls", Text: "x"}); err != nil {
			t.Fatalf("Send via %s: %v", u, err)
		}
		got, err := srv.Wait(waitCtx(t), "ada@example.com")
		if err != nil {
			t.Fatal(err)
		}
		if !got.TLS || got.AuthUser != "gatehouse" {
			t.Errorf("via %s: TLS %v, AuthUser %q", u, got.TLS, got.AuthUser)
		}
	}
}

func TestSendHonoursContext(t *testing.T) {
	srv := mailtest.NewServer(t)
	s := newSMTPSender(t, srv.URL())
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := s.Send(ctx, Message{To: "ada@example.com", Subject: "x", Text: "x"}); err == nil {
		t.Fatal("Send with a cancelled context succeeded")
	}
}

func TestFromAddressWithoutName(t *testing.T) {
	srv := mailtest.NewServer(t)
	s, err := NewSender(srv.URL(), "no-reply@localhost", nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Send(waitCtx(t), Message{To: "ada@example.com", Subject: "x", Text: "x"}); err != nil {
		t.Fatal(err)
	}
	got, err := srv.Wait(waitCtx(t), "ada@example.com")
	if err != nil {
		t.Fatal(err)
	}
	if a, err := netmail.ParseAddress(got.Header.Get("From")); err != nil || a.Address != "no-reply@localhost" {
		t.Errorf("From = %q (%v)", got.Header.Get("From"), err)
	}
}
