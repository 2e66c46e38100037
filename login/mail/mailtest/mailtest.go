// Package mailtest runs a real SMTP server on loopback for tests, records what
// it receives and lets a test wait for a message and follow its links:
//
//	srv := mailtest.NewServer(t)
//	sender, _ := mail.NewSender(srv.URL(), "Gatehouse <no-reply@localhost>", nil)
//	... // the flow under test sends a message to ada@example.com
//	got, err := srv.Wait(ctx, "ada@example.com")
//	link := got.Link("http://127.0.0.1:8080/verify-email?")
//
// The server is github.com/emersion/go-smtp; it listens on 127.0.0.1:0 and is
// closed when the test ends.
package mailtest

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log"
	"math/big"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net"
	"net/mail"
	"net/textproto"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
)

// Received is one message the server accepted.
type Received struct {
	From       string   // envelope sender (MAIL FROM)
	To         string   // the first envelope recipient
	Recipients []string // every envelope recipient (RCPT TO)
	Subject    string   // decoded
	Text       string   // the text/plain part, decoded, with "\n" line ends
	HTML       string   // the text/html part, decoded, with "\n" line ends
	Header     mail.Header
	Raw        []byte // the message as received
	AuthUser   string // the user the client authenticated as; "" without AUTH
	TLS        bool   // the session was encrypted (STARTTLS or implicit TLS)
}

// Link returns the first URL in the text part that starts with prefix, up to
// the next white space (or <, >, "), without trailing sentence punctuation.
// It returns "" when there is none.
func (r Received) Link(prefix string) string {
	i := strings.Index(r.Text, prefix)
	if i < 0 {
		return ""
	}
	s := r.Text[i:]
	if end := strings.IndexAny(s, " \t\r\n<>\""); end >= 0 {
		s = s[:end]
	}
	return strings.TrimRight(s, ".,;:!?)")
}

// Option configures a Server.
type Option func(*Server)

// WithAuth makes the server advertise AUTH PLAIN (also without TLS: it is on
// loopback) and require it before MAIL; URL then carries user:pass.
func WithAuth(user, pass string) Option {
	return func(s *Server) { s.user, s.pass = user, pass }
}

// WithSTARTTLS makes the server offer STARTTLS with a self-signed certificate
// for 127.0.0.1 and localhost; CertPool returns a pool that trusts it.
func WithSTARTTLS() Option {
	return func(s *Server) { s.starttls = true }
}

// WithImplicitTLS makes the server speak TLS from the first byte (URL is then
// smtps://), with the certificate described at WithSTARTTLS.
func WithImplicitTLS() Option {
	return func(s *Server) { s.implicit = true }
}

// FailFirst makes the server answer the first n messages' DATA with a
// temporary failure (451 4.3.0), as a greylisting or overloaded server would.
func FailFirst(n int) Option {
	return func(s *Server) { s.failFirst = n }
}

// Server is an SMTP server on 127.0.0.1 that records the messages it receives.
type Server struct {
	user, pass string
	starttls   bool
	implicit   bool
	failFirst  int

	smtp *smtp.Server
	addr string
	pool *x509.CertPool

	mu        sync.Mutex
	received  []Received
	taken     []bool        // taken[i]: received[i] was returned by Wait
	arrived   chan struct{} // closed and replaced whenever something arrives
	attempts  int           // DATA commands seen, accepted or not
	parseErrs []error
}

// NewServer starts a server on 127.0.0.1:0; it is closed when t ends.
func NewServer(t testing.TB, opts ...Option) *Server {
	t.Helper()
	s := &Server{arrived: make(chan struct{})}
	for _, o := range opts {
		o(s)
	}

	srv := smtp.NewServer(smtp.BackendFunc(func(c *smtp.Conn) (smtp.Session, error) {
		return &session{srv: s, conn: c}, nil
	}))
	srv.Domain = "mailtest.localhost"
	srv.AllowInsecureAuth = true // loopback only
	srv.ReadTimeout = 30 * time.Second
	srv.WriteTimeout = 30 * time.Second
	srv.MaxMessageBytes = 10 << 20
	srv.MaxRecipients = 50
	srv.ErrorLog = log.New(io.Discard, "", 0)

	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("mailtest: listen: %v", err)
	}
	if s.starttls || s.implicit {
		cert, pool, err := selfSigned()
		if err != nil {
			_ = l.Close()
			t.Fatalf("mailtest: certificate: %v", err)
		}
		s.pool = pool
		cfg := &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
		if s.implicit {
			l = tls.NewListener(l, cfg)
		} else {
			srv.TLSConfig = cfg
		}
	}
	s.smtp = srv
	s.addr = l.Addr().String()
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(func() { _ = srv.Close() })
	return s
}

// Addr is the server's host:port.
func (s *Server) Addr() string { return s.addr }

// URL is an SMTP_URL for the server: smtp://127.0.0.1:PORT, or smtps:// with
// WithImplicitTLS, with user:pass@ when WithAuth was given.
func (s *Server) URL() string {
	u := url.URL{Scheme: "smtp", Host: s.addr}
	if s.implicit {
		u.Scheme = "smtps"
	}
	if s.user != "" {
		u.User = url.UserPassword(s.user, s.pass)
	}
	return u.String()
}

// CertPool trusts the server's certificate (nil without TLS).
func (s *Server) CertPool() *x509.CertPool { return s.pool }

// Close stops the server; NewServer arranges it at the end of the test.
func (s *Server) Close() error {
	err := s.smtp.Close()
	if errors.Is(err, smtp.ErrServerClosed) {
		return nil
	}
	return err
}

// Messages returns every message received so far, oldest first.
func (s *Server) Messages() []Received {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Received(nil), s.received...)
}

// Attempts counts the messages clients tried to send (DATA), including those
// that FailFirst turned away.
func (s *Server) Attempts() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.attempts
}

// Wait returns the oldest message for the envelope recipient to (compared
// without regard to case) that no earlier Wait returned, waiting for it to
// arrive if need be. So two Waits for one address return its first and its
// second message. Wait gives up when ctx ends, or after 10 seconds when ctx
// has no deadline.
func (s *Server) Wait(ctx context.Context, to string) (Received, error) {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
	}
	for {
		s.mu.Lock()
		if len(s.parseErrs) > 0 {
			err := s.parseErrs[0]
			s.mu.Unlock()
			return Received{}, fmt.Errorf("mailtest: a received message could not be parsed: %w", err)
		}
		for i, r := range s.received {
			if !s.taken[i] && r.isFor(to) {
				s.taken[i] = true
				s.mu.Unlock()
				return r, nil
			}
		}
		arrived := s.arrived
		s.mu.Unlock()

		select {
		case <-arrived:
		case <-ctx.Done():
			return Received{}, fmt.Errorf("mailtest: no message for %s (%d received in all): %w", to, len(s.Messages()), ctx.Err())
		}
	}
}

func (r Received) isFor(to string) bool {
	to = strings.TrimSpace(to)
	for _, rc := range r.Recipients {
		if strings.EqualFold(rc, to) {
			return true
		}
	}
	return false
}

// record stores a message (or a parse error) and wakes the waiters.
func (s *Server) record(r Received, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err != nil {
		s.parseErrs = append(s.parseErrs, err)
	} else {
		s.received = append(s.received, r)
		s.taken = append(s.taken, false)
	}
	close(s.arrived)
	s.arrived = make(chan struct{})
}

// session is one SMTP session (go-smtp calls it per connection).
type session struct {
	srv      *Server
	conn     *smtp.Conn
	authUser string
	from     string
	rcpts    []string
}

func (ss *session) AuthMechanisms() []string {
	if ss.srv.user == "" {
		return nil
	}
	return []string{sasl.Plain}
}

func (ss *session) Auth(mech string) (sasl.Server, error) {
	if ss.srv.user == "" || mech != sasl.Plain {
		return nil, smtp.ErrAuthUnknownMechanism
	}
	return sasl.NewPlainServer(func(identity, username, password string) error {
		if username != ss.srv.user || password != ss.srv.pass || (identity != "" && identity != username) {
			return &smtp.SMTPError{Code: 535, EnhancedCode: smtp.EnhancedCode{5, 7, 8}, Message: "Authentication credentials invalid"}
		}
		ss.authUser = username
		return nil
	}), nil
}

func (ss *session) Mail(from string, _ *smtp.MailOptions) error {
	if ss.srv.user != "" && ss.authUser == "" {
		return smtp.ErrAuthRequired
	}
	ss.from = from
	return nil
}

func (ss *session) Rcpt(to string, _ *smtp.RcptOptions) error {
	ss.rcpts = append(ss.rcpts, to)
	return nil
}

func (ss *session) Data(r io.Reader) error {
	raw, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	s := ss.srv
	s.mu.Lock()
	s.attempts++
	fail := s.attempts <= s.failFirst
	s.mu.Unlock()
	if fail {
		return &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0}, Message: "Try again later (mailtest FailFirst)"}
	}

	rec, err := parse(raw)
	if err != nil {
		s.record(Received{}, err)
		return &smtp.SMTPError{Code: 554, EnhancedCode: smtp.EnhancedCode{5, 6, 0}, Message: "mailtest: cannot parse message: " + err.Error()}
	}
	rec.From = ss.from
	rec.Recipients = append([]string(nil), ss.rcpts...)
	if len(rec.Recipients) > 0 {
		rec.To = rec.Recipients[0]
	}
	rec.AuthUser = ss.authUser
	_, rec.TLS = ss.conn.TLSConnectionState()
	s.record(rec, nil)
	return nil
}

func (ss *session) Reset() {
	ss.from = ""
	ss.rcpts = nil
}

func (ss *session) Logout() error { return nil }

// parse reads a MIME message into a Received (Subject, Text, HTML, Header, Raw).
func parse(raw []byte) (Received, error) {
	msg, err := mail.ReadMessage(bytes.NewReader(raw))
	if err != nil {
		return Received{}, err
	}
	r := Received{Header: msg.Header, Raw: raw}
	r.Subject, err = new(mime.WordDecoder).DecodeHeader(msg.Header.Get("Subject"))
	if err != nil {
		return Received{}, fmt.Errorf("subject: %w", err)
	}
	if err := walk(textproto.MIMEHeader(msg.Header), msg.Body, &r); err != nil {
		return Received{}, err
	}
	return r, nil
}

// walk descends multipart bodies and keeps the first text/plain and text/html parts.
func walk(h textproto.MIMEHeader, body io.Reader, r *Received) error {
	ct := h.Get("Content-Type")
	if ct == "" {
		ct = "text/plain; charset=us-ascii"
	}
	mt, params, err := mime.ParseMediaType(ct)
	if err != nil {
		return fmt.Errorf("content-type %q: %w", ct, err)
	}
	if strings.HasPrefix(mt, "multipart/") {
		mr := multipart.NewReader(body, params["boundary"])
		for {
			p, err := mr.NextPart()
			if errors.Is(err, io.EOF) {
				return nil
			}
			if err != nil {
				return fmt.Errorf("%s: %w", mt, err)
			}
			if err := walk(p.Header, p, r); err != nil {
				return err
			}
		}
	}
	// multipart.Reader already undoes quoted-printable in parts (and drops the
	// header); a single-part message still carries it.
	switch strings.ToLower(strings.TrimSpace(h.Get("Content-Transfer-Encoding"))) {
	case "quoted-printable":
		body = quotedprintable.NewReader(body)
	case "base64":
		body = base64.NewDecoder(base64.StdEncoding, body)
	}
	b, err := io.ReadAll(body)
	if err != nil {
		return fmt.Errorf("%s body: %w", mt, err)
	}
	text := strings.ReplaceAll(string(b), "\r\n", "\n")
	switch {
	case mt == "text/plain" && r.Text == "":
		r.Text = text
	case mt == "text/html" && r.HTML == "":
		r.HTML = text
	}
	return nil
}

// selfSigned makes a certificate for 127.0.0.1, ::1 and localhost, and a pool
// that trusts it.
func selfSigned() (tls.Certificate, *x509.CertPool, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "mailtest"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
		DNSNames:              []string{"localhost"},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	pool := x509.NewCertPool()
	pool.AddCert(leaf)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, pool, nil
}
