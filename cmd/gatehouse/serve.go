package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/spf13/cobra"

	"github.com/gatehouse-id/gatehouse/internal/admin"
	"github.com/gatehouse-id/gatehouse/login/mail"
	"github.com/gatehouse-id/gatehouse/storage"
)

func serveCmd(e *env) *cobra.Command {
	return &cobra.Command{
		Use:   "serve",
		Short: "Run the OpenID Connect provider",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, log, err := setup(cmd, e)
			if err != nil {
				return err
			}
			// zitadel/oidc logs through the default logger: give it ours.
			slog.SetDefault(log)
			redis.SetLogger(redisLog{log})
			ctx := cmd.Context()
			// Bind before anything is created or shown: a start that fails
			// on a busy port must not print a secret it then throws away.
			ln, err := net.Listen("tcp", cfg.Addr)
			if err != nil {
				return fmt.Errorf("GATEHOUSE_ADDR (--addr): %w", err)
			}
			defer ln.Close() // a.serve closes it too; this covers the early returns
			var metricsLn net.Listener
			if cfg.MetricsAddr != "" {
				metricsLn, err = net.Listen("tcp", cfg.MetricsAddr)
				switch {
				case err != nil && cfg.MetricsAddrSet:
					return fmt.Errorf("GATEHOUSE_METRICS_ADDR (--metrics-addr): %w", err)
				case err != nil:
					// The default port is one per machine (a second instance, an
					// exporter): serve without metrics rather than not at all.
					log.Warn("metrics are off: the default metrics address is taken; set GATEHOUSE_METRICS_ADDR to choose another", "addr", cfg.MetricsAddr, "err", err)
					metricsLn = nil
				default:
					defer metricsLn.Close()
				}
			}
			port := strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
			if cfg.IssuerFromAddr {
				cfg.Issuer = "http://localhost:" + port // --addr :0 included
			} else if p, ok := loopbackIssuerPort(cfg.Issuer); ok && p != port {
				log.Warn("GATEHOUSE_ISSUER names a loopback port other than the one the server listens on; "+
					"leave GATEHOUSE_ISSUER unset to follow GATEHOUSE_ADDR", "issuer", cfg.Issuer, "addr", ln.Addr().String())
			}
			if cfg.TLSCert != "" { // checked before the banner too
				if _, err := tls.LoadX509KeyPair(cfg.TLSCert, cfg.TLSKey); err != nil {
					return fmt.Errorf("GATEHOUSE_TLS_CERT/GATEHOUSE_TLS_KEY: %w", err)
				}
			}
			if cfg.SMTPURL == "" && cfg.LogFormat == "text" {
				cfg.MailLinks = e.stderr
			}
			a, err := newApp(ctx, cfg, log, e.now)
			if err != nil {
				return err
			}
			defer a.close()
			if err := bootstrapDemoClient(ctx, a.store, cfg, e.stdout, e.now()); err != nil {
				return err
			}
			switch {
			case cfg.SMTPURL != "":
				log.Info("mail is sent over SMTP", "smtp", smtpHost(cfg.SMTPURL))
			case strings.HasPrefix(cfg.Issuer, "https://"):
				log.Warn("SMTP_URL is not set: mail, with its reset and verification links, is written to this log; set SMTP_URL in production")
			default:
				log.Info("mail is written to this log; set SMTP_URL to send it (smtp://127.0.0.1:1025 is Mailpit from docker compose up)")
			}
			if limit := setDefaultMemoryLimit(a.hasher); limit > 0 {
				log.Debug("soft memory limit set (GOMEMLIMIT overrides it)", "bytes", limit)
			}
			log.Info("gatehouse listening", "addr", ln.Addr().String(), "issuer", cfg.Issuer,
				"store", storeKind(cfg))
			return a.serve(ctx, ln, metricsLn)
		},
	}
}

// redisLog takes go-redis's own log lines, which it writes to stderr (one per
// failed dial, up to its pool size, at the start of each Redis outage), into
// our log at debug level: package ratelimit already logs an outage once as a
// warning, and plain stderr lines would break JSON logs.
type redisLog struct{ log *slog.Logger }

func (l redisLog) Printf(ctx context.Context, format string, v ...any) {
	l.log.DebugContext(ctx, "redis client", "detail", fmt.Sprintf(format, v...))
}

func storeKind(cfg *config) string {
	if cfg.DatabaseURL != "" {
		return "postgres"
	}
	return "sqlite:" + cfg.DataDir
}

// Demo client registered on the first start of an empty store, so that a
// local app (Auth.js on :3000 and friends) can sign in right away.
const demoClientID = "gatehouse-demo"

var demoRedirectURIs = []string{
	"http://localhost:3000/api/auth/callback/gatehouse",
	"http://127.0.0.1:3000/api/auth/callback/gatehouse",
	"http://localhost:3000/callback",
	"http://localhost:5173/callback",
	"http://localhost:8000/callback",
}

// demoClientWanted: the demo client is for trying Gatehouse on a laptop, so
// by default only the embedded store with a loopback http issuer gets one.
func demoClientWanted(cfg *config) bool {
	if cfg.DemoClient != nil {
		return *cfg.DemoClient
	}
	u, err := url.Parse(cfg.Issuer)
	return err == nil && cfg.DatabaseURL == "" && u.Scheme == "http" && isLoopbackHost(u.Hostname())
}

// rotateDemoHint is how to get a demo secret that was never shown.
const rotateDemoHint = "gatehouse clients rotate-secret " + demoClientID

// bootstrapDemoClient registers the demo client on an empty store and shows
// its secret once. The client is stored without a secret (no secret works)
// and given one only after the secret was written out, so a start that stops
// in between leaves a client whose secret nobody has seen: later starts say
// how to get one instead of printing nothing.
func bootstrapDemoClient(ctx context.Context, st storage.Store, cfg *config, out io.Writer, now time.Time) error {
	existing, err := st.ListClients(ctx)
	if err != nil {
		return fmt.Errorf("list clients: %w", err)
	}
	for _, c := range existing {
		if c.ID == demoClientID && len(c.SecretHash) == 0 && (c.AuthMethod == storage.AuthMethodBasic || c.AuthMethod == storage.AuthMethodPost) {
			fmt.Fprintf(out, "\nThe demo client %s has no secret: an earlier start stopped before showing it. Get one with:\n\n  %s\n\n",
				demoClientID, rotateDemoHint)
		}
	}
	if len(existing) > 0 || !demoClientWanted(cfg) {
		return nil
	}
	c, err := admin.ClientSpec{
		ID: demoClientID, Name: "Gatehouse demo app", RedirectURIs: demoRedirectURIs,
		PostLogoutRedirectURIs: []string{"http://localhost:3000", "http://localhost:3000/"},
	}.Client(now)
	if err != nil {
		return err
	}
	if err := st.CreateClient(ctx, c); err != nil {
		if errors.Is(err, storage.ErrConflict) {
			return nil // another instance created it, and shows its secret
		}
		return fmt.Errorf("create demo client: %w", err)
	}
	mailLine := "Mail (verification and reset links) is written to this log; set SMTP_URL to send it."
	if cfg.SMTPURL != "" {
		mailLine = "Mail is sent over SMTP (" + smtpHost(cfg.SMTPURL) + ")."
	}
	secret := admin.NewClientSecret()
	if _, err := fmt.Fprintf(out, `
Gatehouse is ready. A demo client was created (the secret is shown only now):

  issuer:        %s
  client_id:     %s
  client_secret: %s
  redirect URIs: %s, …

Create a user to sign in with:

  echo 'Choose-a-Passw0rd' | go run ./cmd/gatehouse users create --email you@example.com --name "Your Name" --password-stdin

%s

`, cfg.Issuer, c.ID, secret, demoRedirectURIs[0], mailLine); err != nil {
		return fmt.Errorf("show the demo client's secret: %w (get one later with: %s)", err, rotateDemoHint)
	}
	c.SecretHash = admin.HashClientSecret(secret)
	c.UpdatedAt = now
	if err := st.UpdateClient(ctx, c); err != nil {
		return fmt.Errorf("store the demo client's secret: %w (get a working one with: %s)", err, rotateDemoHint)
	}
	return nil
}

// loopbackIssuerPort is the port of an issuer on a loopback host.
func loopbackIssuerPort(issuer string) (string, bool) {
	u, err := url.Parse(issuer)
	if err != nil || !isLoopbackHost(u.Hostname()) {
		return "", false
	}
	if p := u.Port(); p != "" {
		return p, true
	}
	if u.Scheme == "https" {
		return "443", true
	}
	return "80", true
}

// smtpHost is SMTP_URL without credentials, for messages.
func smtpHost(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "SMTP_URL"
	}
	return u.Scheme + "://" + u.Host
}

// linkPrinter wraps the log mail sink: besides the log line, whose text
// field is quoted and escaped, it writes each link of a message on a line of
// its own, which a person can click in a terminal.
type linkPrinter struct {
	mail.Sender
	w io.Writer
}

var mailLink = regexp.MustCompile(`https?://[^\s<>"]+`)

func (p linkPrinter) Send(ctx context.Context, m mail.Message) error {
	if err := p.Sender.Send(ctx, m); err != nil {
		return err
	}
	links := mailLink.FindAllString(m.Text, -1)
	if len(links) == 0 {
		return nil
	}
	for i, l := range links {
		links[i] = strings.TrimRight(l, ".,;:!?)'") // the sentence's, not the link's
	}
	// One write, so the lines stay together between log lines.
	_, err := fmt.Fprintf(p.w, "\nmail to %s (%s), not sent (no SMTP_URL); its links:\n\n    %s\n\n",
		m.To, m.Subject, strings.Join(links, "\n    "))
	return err
}
