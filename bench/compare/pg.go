package main

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// pgScratch is a database the driver created for this run on the
// PostgreSQL server of adminURL, and drops at the end. Nothing else on that
// server is touched.
type pgScratch struct {
	adminURL string // a database to connect to for CREATE/DROP DATABASE
	name     string
	url      string // the scratch database
	version  string // server_version
}

// newPGScratch creates a database named gatehouse_bench_<random>.
func newPGScratch(ctx context.Context, adminURL string) (*pgScratch, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, adminURL)
	if err != nil {
		return nil, err
	}
	defer conn.Close(context.Background())
	s := &pgScratch{adminURL: adminURL, name: "gatehouse_bench_" + strings.ToLower(rand.Text()[:10])}
	if err := conn.QueryRow(ctx, "SHOW server_version").Scan(&s.version); err != nil {
		return nil, err
	}
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{s.name}.Sanitize()); err != nil {
		return nil, fmt.Errorf("create the scratch database: %w", err)
	}
	u, err := url.Parse(adminURL)
	if err != nil {
		return nil, err
	}
	u.Path = "/" + s.name
	s.url = u.String()
	return s, nil
}

// schemaURL creates a schema in the scratch database and returns a URL
// whose search_path selects it (a second Gatehouse next to the first).
func (s *pgScratch) schemaURL(ctx context.Context, schema string) (string, error) {
	conn, err := pgx.Connect(ctx, s.url)
	if err != nil {
		return "", err
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(ctx, "CREATE SCHEMA "+pgx.Identifier{schema}.Sanitize()); err != nil {
		return "", err
	}
	u, _ := url.Parse(s.url) // parsed before
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String(), nil
}

// drop removes the scratch database, ending its sessions (the servers using
// it are stopped by then; pgbench's would be gone too).
func (s *pgScratch) drop() error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, s.adminURL)
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	_, err = conn.Exec(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{s.name}.Sanitize()+" WITH (FORCE)")
	return err
}

// checkpoint writes out what is dirty in the scratch database's server, so
// that a checkpoint does not land in a measurement (needs a superuser or
// pg_checkpoint; without, it is skipped).
func (s *pgScratch) checkpoint(ctx context.Context) error {
	conn, err := pgx.Connect(ctx, s.url)
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	var pgErr *pgconn.PgError
	if _, err := conn.Exec(ctx, "CHECKPOINT"); err != nil && !(errors.As(err, &pgErr) && pgErr.Code == "42501") {
		return fmt.Errorf("checkpoint: %w", err)
	}
	return nil
}
