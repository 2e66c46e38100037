package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/gatehouse-id/gatehouse/storage"
	"github.com/gatehouse-id/gatehouse/storage/postgres"
	"github.com/gatehouse-id/gatehouse/storage/sqlite"
)

// openStore opens (creating and migrating) the configured store: PostgreSQL
// when DATABASE_URL is set, otherwise SQLite in the data dir.
func openStore(ctx context.Context, cfg *config, log *slog.Logger) (storage.Store, error) {
	if cfg.DatabaseURL != "" {
		return openPostgres(ctx, cfg, log)
	}
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("GATEHOUSE_DATA_DIR: %w", err)
	}
	st, err := sqlite.Open(ctx, sqlitePath(cfg), sqlite.WithLogger(log))
	if err != nil {
		return nil, fmt.Errorf("GATEHOUSE_DATA_DIR: open embedded store: %w", err)
	}
	return st, nil
}

// openPostgres retries until GATEHOUSE_DB_CONNECT_TIMEOUT, so that a server
// started together with its database (docker compose up -d && gatehouse
// serve) waits for it instead of failing. Errors that waiting cannot fix (a
// wrong password, a missing database, a bad URL) fail at once.
func openPostgres(ctx context.Context, cfg *config, log *slog.Logger) (storage.Store, error) {
	parent := ctx
	ctx, cancel := context.WithTimeout(ctx, cfg.DBConnectTimeout)
	defer cancel()
	wait := 100 * time.Millisecond
	var last string // the last attempt's error: a cut-short attempt says only "deadline exceeded"
	for attempt := 1; ; attempt++ {
		st, err := postgres.Open(ctx, cfg.DatabaseURL)
		if err == nil {
			return st, nil
		}
		msg := oneLine(redactURL(err.Error(), cfg.DatabaseURL))
		switch {
		case parent.Err() != nil:
			return nil, fmt.Errorf("DATABASE_URL: %w", parent.Err())
		case ctx.Err() != nil && last != "":
			return nil, fmt.Errorf("DATABASE_URL: database not reachable within %s (GATEHOUSE_DB_CONNECT_TIMEOUT): %s", cfg.DBConnectTimeout, last)
		case ctx.Err() != nil:
			return nil, fmt.Errorf("DATABASE_URL: database not reachable within %s (GATEHOUSE_DB_CONNECT_TIMEOUT): %s", cfg.DBConnectTimeout, msg)
		case !retryable(err):
			return nil, fmt.Errorf("DATABASE_URL: %s", msg)
		}
		last = msg
		if attempt == 1 {
			log.Info("waiting for the database", "timeout", cfg.DBConnectTimeout, "err", msg)
		} else {
			log.Debug("database still not reachable", "attempt", attempt, "retry_in", wait, "err", msg)
		}
		select {
		case <-ctx.Done():
		case <-time.After(wait):
		}
		wait = min(2*wait, 2*time.Second)
	}
}

// retryable reports whether a failed connection may succeed later: the server
// is not listening yet, is starting up or is full, rather than refusing us.
func retryable(err error) bool {
	var parse *pgconn.ParseConfigError
	if errors.As(err, &parse) {
		return false
	}
	var pg *pgconn.PgError
	if errors.As(err, &pg) {
		// cannot_connect_now (starting up), too_many_connections, class 08
		// (connection exception); not class 28 (authorization) or 3D000
		// (no such database).
		return pg.Code == "57P03" || pg.Code == "53300" || strings.HasPrefix(pg.Code, "08")
	}
	return true
}

// newStoreNote says where a command has just created a store.
func newStoreNote(cfg *config) string {
	if cfg.DatabaseURL == "" {
		return "created a new store in " + cfg.DataDir
	}
	where := "DATABASE_URL"
	if u, err := url.Parse(cfg.DatabaseURL); err == nil {
		where = "the PostgreSQL database " + u.Host + u.Path
	}
	return "created a new store in " + where
}

func sqlitePath(cfg *config) string { return filepath.Join(cfg.DataDir, "gatehouse.db") }

// loadSecret returns the master secret. Only the single-node embedded store
// may generate one (into the data dir, mode 0600); with PostgreSQL every
// instance must be given the same secret, which loadConfig enforces.
func loadSecret(cfg *config, log *slog.Logger) ([]byte, error) {
	if cfg.Secret != "" {
		return []byte(cfg.Secret), nil
	}
	path := filepath.Join(cfg.DataDir, "secret")
	b, err := os.ReadFile(path)
	if err == nil {
		s := strings.TrimSpace(string(b))
		if len(s) < 32 {
			return nil, fmt.Errorf("GATEHOUSE_SECRET: %s holds fewer than 32 characters", path)
		}
		return []byte(s), nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("GATEHOUSE_SECRET: read %s: %w", path, err)
	}
	raw := make([]byte, 32)
	if _, err := rand.Read(raw); err != nil {
		return nil, fmt.Errorf("GATEHOUSE_SECRET: generate: %w", err)
	}
	s := base64.RawURLEncoding.EncodeToString(raw)
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("GATEHOUSE_DATA_DIR: %w", err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		if errors.Is(err, fs.ErrExist) { // another process won the race: use its secret
			return loadSecret(cfg, log)
		}
		return nil, fmt.Errorf("GATEHOUSE_SECRET: write %s: %w", path, err)
	}
	if _, err := f.WriteString(s + "\n"); err != nil {
		f.Close()
		return nil, fmt.Errorf("GATEHOUSE_SECRET: write %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return nil, fmt.Errorf("GATEHOUSE_SECRET: write %s: %w", path, err)
	}
	log.Warn("generated a new GATEHOUSE_SECRET; back it up: losing it makes every signing key and issued token unusable", "file", path)
	return []byte(s), nil
}

func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }

// redactURL removes the database password from an error message.
func redactURL(msg, rawURL string) string {
	if i := strings.Index(rawURL, "://"); i >= 0 {
		rest := rawURL[i+3:]
		if at := strings.LastIndex(rest, "@"); at >= 0 {
			if colon := strings.Index(rest[:at], ":"); colon >= 0 {
				pw := rest[colon+1 : at]
				if pw != "" {
					msg = strings.ReplaceAll(msg, pw, "****")
				}
			}
		}
	}
	return msg
}
