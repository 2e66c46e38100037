package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/spf13/cobra"

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
			a, err := newApp(ctx, cfg, log, e.now)
			if err != nil {
				return err
			}
			defer a.close()
			if err := bootstrapDemoClient(ctx, a.store, cfg.Issuer, e.stdout, e.now()); err != nil {
				return err
			}
			ln, err := net.Listen("tcp", cfg.Addr)
			if err != nil {
				return fmt.Errorf("GATEHOUSE_ADDR: %w", err)
			}
			var metricsLn net.Listener
			if cfg.MetricsAddr != "" {
				if metricsLn, err = net.Listen("tcp", cfg.MetricsAddr); err != nil {
					ln.Close()
					return fmt.Errorf("GATEHOUSE_METRICS_ADDR: %w", err)
				}
			}
			if cfg.SMTPURL == "" && strings.HasPrefix(cfg.Issuer, "https://") {
				log.Warn("SMTP_URL is not set: emails, with their reset and verification links, are written to this log; set SMTP_URL in production")
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

func bootstrapDemoClient(ctx context.Context, st storage.Store, issuer string, out io.Writer, now time.Time) error {
	existing, err := st.ListClients(ctx)
	if err != nil {
		return fmt.Errorf("list clients: %w", err)
	}
	if len(existing) > 0 {
		return nil
	}
	c, err := clientSpec{
		ID: demoClientID, Name: "Gatehouse demo app", RedirectURIs: demoRedirectURIs,
		PostLogoutRedirectURIs: []string{"http://localhost:3000", "http://localhost:3000/"},
	}.toClient(now)
	if err != nil {
		return err
	}
	secret := newClientSecret()
	c.SecretHash = hashSecret(secret)
	if err := st.CreateClient(ctx, c); err != nil {
		return fmt.Errorf("create demo client: %w", err)
	}
	fmt.Fprintf(out, `
Gatehouse is ready. A demo client was created (the secret is shown only now):

  issuer:        %s
  client_id:     %s
  client_secret: %s
  redirect URIs: %s, …

Create a user to sign in with:

  echo 'Choose-a-Passw0rd' | go run ./cmd/gatehouse users create --email you@example.com --name "Your Name" --password-stdin

`, issuer, c.ID, secret, demoRedirectURIs[0])
	return nil
}
