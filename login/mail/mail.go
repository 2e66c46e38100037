// Package mail sends Gatehouse's transactional email: address verification,
// password reset and the notices around account changes.
//
// A Sender delivers one rendered Message, over SMTP (github.com/wneessen/go-mail)
// or, when no SMTP_URL is configured, to the log so that the flows work offline
// in development. A Mailer renders the messages from embedded templates and
// hands them to a small pool of background workers, so that an HTTP handler
// never waits on SMTP and its response time does not tell whether an account
// exists.
package mail

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net"
	netmail "net/mail"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	gomail "github.com/wneessen/go-mail"
	"github.com/wneessen/go-mail/smtp"
)

// Message is one rendered email.
type Message struct {
	To      string // a bare address: "user@example.com"
	Subject string
	Text    string // plain-text body; always sent
	HTML    string // HTML alternative; optional
}

// Sender delivers one message. Implementations are safe for concurrent use.
type Sender interface {
	Send(ctx context.Context, m Message) error
}

// TLS modes accepted in SMTP_URL's tls parameter.
const (
	TLSOpportunistic = "opportunistic" // STARTTLS when the server offers it (default for smtp://)
	TLSStartTLS      = "starttls"      // STARTTLS required; fail if the server does not offer it
	TLSImplicit      = "implicit"      // TLS from the first byte (default for smtps://)
)

// sendTimeout bounds each network step of one delivery (dial, each SMTP command).
const sendTimeout = 15 * time.Second

// NewSender returns the Sender for SMTP_URL.
//
// An empty smtpURL gives a log sink that writes every message, links
// included, to logger at INFO: the development default, never for production.
// Otherwise smtpURL is smtp://[user:pass@]host[:port][?tls=opportunistic|starttls|implicit]
// or smtps://[user:pass@]host[:port] (implicit TLS). Ports default to 25 for
// smtp:// and 465 for smtps://. With a user name, AUTH PLAIN (or LOGIN when
// PLAIN is not offered) is used, and only over TLS unless the host is a
// loopback address, so a local catcher such as Mailpit works without TLS.
//
// from is GATEHOUSE_MAIL_FROM, an RFC 5322 address such as
// "Gatehouse <no-reply@example.com>"; it is required with SMTP.
func NewSender(smtpURL, from string, logger *slog.Logger) (Sender, error) {
	if logger == nil {
		logger = slog.Default()
	}
	smtpURL = strings.TrimSpace(smtpURL)
	from = strings.TrimSpace(from)

	var fromAddr *netmail.Address
	if from != "" {
		a, err := netmail.ParseAddress(from)
		if err != nil {
			return nil, fmt.Errorf("GATEHOUSE_MAIL_FROM %q is not a valid email address: %w", from, err)
		}
		fromAddr = a
	}

	if smtpURL == "" {
		return &logSink{logger: logger}, nil
	}

	cfg, err := parseSMTPURL(smtpURL)
	if err != nil {
		return nil, err
	}
	if fromAddr == nil {
		return nil, errors.New("GATEHOUSE_MAIL_FROM is required when SMTP_URL is set")
	}
	domain := fromAddr.Address[strings.LastIndexByte(fromAddr.Address, '@')+1:]
	return &smtpSender{cfg: cfg, from: fromAddr, msgIDDomain: domain, logger: logger}, nil
}

// hostName is a DNS name: dot-separated labels of letters, digits, '-' and
// '_', with an optional final dot.
var hostName = regexp.MustCompile(`^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*\.?$`)

// smtpConfig is SMTP_URL, parsed.
type smtpConfig struct {
	host     string
	port     int
	tls      string // one of the TLS* constants
	user     string
	password string
	hasUser  bool
	loopback bool // host is localhost or a loopback IP: AUTH may go without TLS
}

func parseSMTPURL(raw string) (smtpConfig, error) {
	var cfg smtpConfig
	// url.Parse's error repeats the whole URL, password included: keep it out.
	u, err := url.Parse(raw)
	if err != nil {
		return cfg, errors.New("SMTP_URL is not a valid URL (expected smtp://[user:pass@]host:port[?tls=opportunistic|starttls|implicit])")
	}
	bad := func(format string, args ...any) error {
		return fmt.Errorf("SMTP_URL %s: %s", u.Redacted(), fmt.Sprintf(format, args...))
	}

	defaultPort := 25
	switch strings.ToLower(u.Scheme) {
	case "smtp":
		cfg.tls = TLSOpportunistic
	case "smtps":
		cfg.tls = TLSImplicit
		defaultPort = 465
	default:
		return cfg, bad("scheme must be smtp or smtps")
	}
	if u.Opaque != "" || u.Host == "" {
		return cfg, bad("no host (expected smtp://host:port)")
	}
	if u.Path != "" && u.Path != "/" {
		return cfg, bad("unexpected path %q", u.Path)
	}
	if u.Fragment != "" {
		return cfg, bad("unexpected fragment")
	}

	cfg.host = u.Hostname()
	if cfg.host == "" {
		return cfg, bad("no host")
	}
	// url.Parse lets through hosts no dial can reach (":", "a;b"): refuse them
	// here rather than at the first mail. (IPv6 zones are refused too.)
	if net.ParseIP(cfg.host) == nil && (len(cfg.host) > 253 || !hostName.MatchString(cfg.host)) {
		return cfg, bad("invalid host %q", cfg.host)
	}
	cfg.port = defaultPort
	if p := u.Port(); p != "" {
		n, err := strconv.Atoi(p)
		if err != nil || n < 1 || n > 65535 {
			return cfg, bad("invalid port %q", p)
		}
		cfg.port = n
	}
	if strings.EqualFold(cfg.host, "localhost") {
		cfg.loopback = true
	} else if ip := net.ParseIP(cfg.host); ip != nil && ip.IsLoopback() {
		cfg.loopback = true
	}

	q, err := url.ParseQuery(u.RawQuery)
	if err != nil {
		return cfg, bad("invalid query")
	}
	for k, v := range q {
		switch k {
		case "tls":
			mode := strings.ToLower(v[len(v)-1])
			switch mode {
			case TLSOpportunistic, TLSStartTLS:
				if cfg.tls == TLSImplicit {
					return cfg, bad("smtps:// always uses implicit TLS; tls=%s needs smtp://", mode)
				}
				cfg.tls = mode
			case TLSImplicit:
				cfg.tls = mode
			default:
				return cfg, bad("tls=%q: must be opportunistic, starttls or implicit", v[len(v)-1])
			}
		default:
			return cfg, bad("unknown parameter %q (only tls is supported)", k)
		}
	}

	if u.User != nil {
		cfg.hasUser = true
		cfg.user = u.User.Username()
		cfg.password, _ = u.User.Password()
		if cfg.user == "" {
			return cfg, bad("empty user name")
		}
	}
	return cfg, nil
}

// logSink is the development Sender: it logs each message instead of sending it.
type logSink struct{ logger *slog.Logger }

func (s *logSink) Send(ctx context.Context, m Message) error {
	s.logger.LogAttrs(ctx, slog.LevelInfo,
		"mail not sent: no SMTP_URL configured, logging it instead (development only: this log holds secret links)",
		slog.String("to", m.To),
		slog.String("subject", m.Subject),
		slog.String("text", m.Text))
	return nil
}

// smtpSender delivers over SMTP with go-mail, one connection per message.
type smtpSender struct {
	cfg         smtpConfig
	from        *netmail.Address
	msgIDDomain string
	logger      *slog.Logger
	rootCAs     *x509.CertPool // nil: the system roots (tests set their own)
	// dial, when set, replaces go-mail's dialer (tests: reach a "remote" host
	// name on loopback). It is not used with implicit TLS.
	dial gomail.DialContextFunc
}

func (s *smtpSender) Send(ctx context.Context, m Message) error {
	msg, err := s.build(m)
	if err != nil {
		return err
	}
	// A fresh client per message: go-mail's Client keeps connection state, and
	// transactional mail is too sparse to be worth pooling connections.
	c, err := gomail.NewClient(s.cfg.host, s.clientOptions()...)
	if err != nil {
		return fmt.Errorf("mail: smtp client: %w", err)
	}
	if err := c.DialAndSendWithContext(ctx, msg); err != nil {
		return fmt.Errorf("mail: send to %s via %s:%d: %w", m.To, s.cfg.host, s.cfg.port, err)
	}
	return nil
}

func (s *smtpSender) clientOptions() []gomail.Option {
	opts := []gomail.Option{
		gomail.WithPort(s.cfg.port),
		gomail.WithTimeout(sendTimeout),
		gomail.WithTLSConfig(&tls.Config{
			ServerName: s.cfg.host,
			MinVersion: tls.VersionTLS12,
			RootCAs:    s.rootCAs,
		}),
	}
	switch s.cfg.tls {
	case TLSImplicit:
		opts = append(opts, gomail.WithSSL(), gomail.WithTLSPolicy(gomail.NoTLS))
	case TLSStartTLS:
		opts = append(opts, gomail.WithTLSPolicy(gomail.TLSMandatory))
	default:
		opts = append(opts, gomail.WithTLSPolicy(gomail.TLSOpportunistic))
	}
	if s.dial != nil && s.cfg.tls != TLSImplicit {
		opts = append(opts, gomail.WithDialContextFunc(s.dial))
	}
	if s.cfg.hasUser {
		opts = append(opts, gomail.WithSMTPAuthCustom(&plainOrLoginAuth{
			user: s.cfg.user, password: s.cfg.password, host: s.cfg.host, allowPlaintext: s.cfg.loopback,
		}))
	}
	return opts
}

func (s *smtpSender) build(m Message) (*gomail.Msg, error) {
	msg := gomail.NewMsg(gomail.WithNoDefaultUserAgent())
	msg.FromMailAddress(s.from)
	if err := msg.To(m.To); err != nil {
		return nil, fmt.Errorf("mail: invalid recipient %q: %w", m.To, err)
	}
	msg.Subject(m.Subject)
	msg.SetDate()
	msg.SetMessageIDWithValue(randomID() + "@" + s.msgIDDomain)
	// RFC 3834: automatic mail; well-behaved auto-responders stay quiet.
	msg.SetGenHeader("Auto-Submitted", "auto-generated")
	msg.SetBodyString(gomail.TypeTextPlain, m.Text)
	if m.HTML != "" {
		msg.AddAlternativeString(gomail.TypeTextHTML, m.HTML)
	}
	return msg, nil
}

func randomID() string {
	b := make([]byte, 18)
	_, _ = rand.Read(b) // never fails (crypto/rand)
	return base64.RawURLEncoding.EncodeToString(b)
}

// plainOrLoginAuth picks AUTH PLAIN, or LOGIN when only that is offered. The
// go-mail mechanisms it delegates to refuse to send the password over a
// connection without TLS, except to a loopback host (allowPlaintext).
type plainOrLoginAuth struct {
	user, password, host string
	allowPlaintext       bool
	mech                 smtp.Auth
}

func (a *plainOrLoginAuth) Start(server *smtp.ServerInfo) (string, []byte, error) {
	switch {
	case slices.Contains(server.Auth, "PLAIN"):
		a.mech = smtp.PlainAuth("", a.user, a.password, a.host, a.allowPlaintext)
	case slices.Contains(server.Auth, "LOGIN"):
		a.mech = smtp.LoginAuth(a.user, a.password, a.host, a.allowPlaintext)
	default:
		return "", nil, fmt.Errorf("SMTP server offers no AUTH PLAIN or LOGIN (offers %q)", strings.Join(server.Auth, " "))
	}
	return a.mech.Start(server)
}

func (a *plainOrLoginAuth) Next(fromServer []byte, more bool) ([]byte, error) {
	return a.mech.Next(fromServer, more)
}
