// Package pgtest gives tests an isolated PostgreSQL schema to run against.
//
// The server comes from GATEHOUSE_TEST_DATABASE_URL (default DefaultURL). When
// it cannot be reached the test is skipped with the reason, except under CI
// (CI=true), where a missing database must fail the build rather than silently
// skip the PostgreSQL coverage.
package pgtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/url"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

const (
	// EnvURL names the environment variable holding the test server's URL.
	EnvURL = "GATEHOUSE_TEST_DATABASE_URL"
	// DefaultURL is used when EnvURL is unset: a local server with trust auth.
	DefaultURL = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"

	connectTimeout = 3 * time.Second
	dropTimeout    = 10 * time.Second
)

// URL creates a fresh schema gh_test_<random hex> for t, drops it (CASCADE) when
// t finishes, and returns a connection URL whose search_path is that schema, so
// every table a store creates, goose's version table included, lives in it.
// Open stores should be closed first: register their cleanup after calling URL
// (cleanups run last-registered first).
func URL(t testing.TB) string {
	t.Helper()
	base := baseURL()
	ctx, cancel := context.WithTimeout(context.Background(), connectTimeout)
	defer cancel()
	conn, err := pgx.Connect(ctx, base)
	if err != nil {
		unreachable(t, base, err)
		return "" // only reached when t is a fake that does not stop the test
	}
	defer conn.Close(context.Background())

	schema := "gh_test_" + randomHex(t, 8)
	ident := pgx.Identifier{schema}.Sanitize()
	if _, err := conn.Exec(ctx, "CREATE SCHEMA "+ident); err != nil {
		t.Fatalf("pgtest: create schema %s: %v", schema, err)
	}
	t.Cleanup(func() { dropSchema(t, base, ident) })
	return withSearchPath(base, schema)
}

// baseURL is the configured server, without a schema.
func baseURL() string {
	if u := os.Getenv(EnvURL); u != "" {
		return u
	}
	return DefaultURL
}

// unreachable skips t, or fails it under CI.
func unreachable(t testing.TB, base string, err error) {
	t.Helper()
	const format = "pgtest: PostgreSQL at %s is unreachable (set %s to a reachable server): %v"
	if ci, _ := strconv.ParseBool(os.Getenv("CI")); ci {
		t.Fatalf(format, redact(base), EnvURL, err)
		return
	}
	t.Skipf(format, redact(base), EnvURL, err)
}

func dropSchema(t testing.TB, base, ident string) {
	ctx, cancel := context.WithTimeout(context.Background(), dropTimeout)
	defer cancel()
	conn, err := pgx.Connect(ctx, base)
	if err != nil {
		t.Errorf("pgtest: drop schema %s: connect: %v", ident, err)
		return
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(ctx, "DROP SCHEMA IF EXISTS "+ident+" CASCADE"); err != nil {
		t.Errorf("pgtest: drop schema %s: %v", ident, err)
	}
}

// withSearchPath adds search_path to a URL or key=value connection string. pgx
// sends parameters it does not know itself to the server as run-time settings.
func withSearchPath(base, schema string) string {
	u, err := url.Parse(base)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		return strings.TrimSpace(base) + " search_path=" + schema
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String()
}

// redact hides a password in base for messages.
func redact(base string) string {
	if u, err := url.Parse(base); err == nil && u.Scheme != "" {
		return u.Redacted()
	}
	return "the configured server"
}

func randomHex(t testing.TB, n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatalf("pgtest: random schema name: %v", err)
	}
	return hex.EncodeToString(b)
}
