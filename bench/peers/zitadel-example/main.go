// Command zitadel-example serves zitadel/oidc's example OpenID provider
// (github.com/zitadel/oidc/v3/example/server: its in-memory storage, its
// username/password login page, RS256 with a key made at start) for the
// side-by-side benchmark (bench/compare.sh), at the version Gatehouse's go.mod
// requires. It is a module of its own so that the example's packages never
// enter Gatehouse's build.
//
// What differs from the example's main: it listens on 127.0.0.1 only, its
// issuer is http://127.0.0.1:PORT/, it logs warnings only (the example logs
// every request at debug level, which would measure its logger), and it adds
// one client_credentials client, sid-jwt, whose access tokens are JWTs (the
// example's service user sid1 gets opaque ones).
//
//	PORT=9998 REDIRECT_URI=http://127.0.0.1:9009/cb zitadel-example
//
// Clients: web / secret (authorization_code, refresh_token; the redirect URIs
// of REDIRECT_URI, comma-separated), sid1 / verysecret and sid-jwt /
// verysecret (client_credentials). User: test-user@127.0.0.1 / verysecure.
package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/zitadel/oidc/v3/example/server/exampleop"
	"github.com/zitadel/oidc/v3/example/server/storage"
	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"
)

const (
	// jwtClientID is the client_credentials client added here: the example's
	// sid1 with JWT access tokens.
	jwtClientID   = "sid-jwt"
	serviceUser   = "sid1"
	serviceSecret = "verysecret"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "zitadel-example:", err)
		os.Exit(1)
	}
}

func run() error {
	port := os.Getenv("PORT")
	if port == "" {
		return errors.New("PORT is required")
	}
	redirects := strings.Split(os.Getenv("REDIRECT_URI"), ",")
	if redirects[0] == "" {
		redirects = []string{"http://127.0.0.1:9009/cb"}
	}
	issuer := fmt.Sprintf("http://127.0.0.1:%s/", port)
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))

	storage.RegisterClients(storage.WebClient("web", "secret", redirects...))
	store := &benchStorage{Storage: storage.NewStorage(storage.NewUserStore(issuer))}
	router := exampleop.SetupServer(issuer, store, logger, false)

	ln, err := net.Listen("tcp", "127.0.0.1:"+port)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: router, ReadHeaderTimeout: 10 * time.Second}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	go func() {
		<-ctx.Done()
		shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(shutdown)
	}()
	fmt.Println("listening", issuer)
	if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// benchStorage is the example's storage with the client_credentials client
// sid-jwt: sid1's settings, JWT access tokens.
type benchStorage struct {
	*storage.Storage
}

type jwtClient struct{ op.Client }

func (jwtClient) GetID() string                       { return jwtClientID }
func (jwtClient) AccessTokenType() op.AccessTokenType { return op.AccessTokenTypeJWT }

func (s *benchStorage) ClientCredentials(ctx context.Context, clientID, clientSecret string) (op.Client, error) {
	if clientID != jwtClientID {
		return s.Storage.ClientCredentials(ctx, clientID, clientSecret)
	}
	c, err := s.Storage.ClientCredentials(ctx, serviceUser, clientSecret)
	if err != nil {
		return nil, err
	}
	return jwtClient{c}, nil
}

func (s *benchStorage) ClientCredentialsTokenRequest(ctx context.Context, clientID string, scopes []string) (op.TokenRequest, error) {
	if clientID != jwtClientID {
		return s.Storage.ClientCredentialsTokenRequest(ctx, clientID, scopes)
	}
	return &oidc.JWTTokenRequest{Subject: jwtClientID, Audience: []string{jwtClientID}, Scopes: scopes}, nil
}
