// Package postgres is the storage.Store backend for PostgreSQL, built on pgx's
// connection pool and migrated with the embedded goose migrations. Several
// Gatehouse processes may share one database.
package postgres

import (
	"context"
	"database/sql"
	"fmt"
	"hash/fnv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"

	"github.com/gatehouse-id/gatehouse/migrations"
	"github.com/gatehouse-id/gatehouse/storage"
)

// connectTimeout bounds connecting when the caller's context sets no deadline,
// so a wrong host fails in seconds rather than at the OS's TCP timeout.
const connectTimeout = 10 * time.Second

// Store implements storage.Store on a PostgreSQL database.
type Store struct {
	pool *pgxpool.Pool
	// sqlDB is the pool seen through database/sql, which goose needs.
	sqlDB      *sql.DB
	migrations *goose.Provider
	// tally counts the statements the pool sends (statements.go).
	tally *storage.StatementTally
}

var _ storage.Store = (*Store)(nil)

// defaultMaxConns is the pool size unless the URL sets pool_max_conns.
const defaultMaxConns = 16

// Open connects to the database at url (a postgres:// URL or key=value DSN),
// checks that it answers, and applies pending migrations, all within ctx.
// Concurrent Opens against one database (several processes starting together)
// take turns migrating under an advisory lock.
func Open(ctx context.Context, url string) (*Store, error) {
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("postgres: parse connection string: %w", err)
	}
	if cfg.ConnConfig.ConnectTimeout == 0 {
		cfg.ConnConfig.ConnectTimeout = connectTimeout
	}
	// pgxpool's default (max(4, CPUs)) made requests queue for a connection
	// under load on small machines (bench/README.md); pool_max_conns in the
	// URL still wins.
	if !strings.Contains(url, "pool_max_conns") {
		cfg.MaxConns = defaultMaxConns
	}
	tally := new(storage.StatementTally)
	cfg.ConnConfig.Tracer = statementTracer{tally}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("postgres: connect: %w", err)
	}
	// The pool connects lazily; ping once so a bad URL fails here.
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("postgres: connect to %s: %w", describe(cfg.ConnConfig.Config), err)
	}
	s := &Store{pool: pool, sqlDB: stdlib.OpenDBFromPool(pool), tally: tally}
	if err := s.migrate(ctx); err != nil {
		s.Close()
		return nil, fmt.Errorf("postgres: %w", err)
	}
	return s, nil
}

// describe names the server without credentials, for error messages.
func describe(c pgconn.Config) string {
	return fmt.Sprintf("%s:%d/%s as %s", c.Host, c.Port, c.Database, c.User)
}

// migrate applies pending migrations under a session advisory lock. The lock ID
// is derived from the schema so that databases (or test schemas) migrating
// side by side do not queue behind one another.
func (s *Store) migrate(ctx context.Context) error {
	var schema string
	if err := s.pool.QueryRow(ctx, `SELECT COALESCE(current_schema(), '')`).Scan(&schema); err != nil {
		return fmt.Errorf("migrate: current schema: %w", err)
	}
	locker, err := lock.NewPostgresSessionLocker(
		lock.WithLockID(lockKey("gatehouse migrations in schema "+schema)),
		lock.WithLockTimeout(1, 300), // poll every second for up to five minutes
	)
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	provider, err := migrations.NewProvider(goose.DialectPostgres, s.sqlDB, goose.WithSessionLocker(locker))
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	if _, err := provider.Up(ctx); err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	s.migrations = provider
	return nil
}

// MigrationVersion reports the schema version applied to the database.
func (s *Store) MigrationVersion(ctx context.Context) (int64, error) {
	v, err := s.migrations.GetDBVersion(ctx)
	if err != nil {
		return 0, fmt.Errorf("postgres: migration version: %w", err)
	}
	return v, nil
}

// Ping checks that the database answers.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.pool.Ping(ctx); err != nil {
		return storeErr("postgres: ping", err)
	}
	return nil
}

// Close closes every connection. It waits for connections in use to be released.
func (s *Store) Close() error {
	err := s.sqlDB.Close()
	s.pool.Close()
	if err != nil {
		return fmt.Errorf("postgres: close: %w", err)
	}
	return nil
}

// inTx runs fn in a transaction and commits if fn returns nil. fn's error is
// returned unchanged so callers can return sentinel errors through it.
func (s *Store) inTx(ctx context.Context, what string, fn func(tx pgx.Tx) error) error {
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return storeErr(what+": begin", err)
	}
	if err := fn(tx); err != nil {
		// Rollback's own error adds nothing: the transaction is abandoned
		// either way, and a broken connection is discarded by the pool.
		_ = tx.Rollback(ctx)
		return err
	}
	if err := tx.Commit(ctx); err != nil {
		return storeErr(what+": commit", err)
	}
	return nil
}

// execer is what the pool and a transaction share for statements without results.
type execer interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
}

// queryRower is what the pool and a transaction share for one-row queries.
type queryRower interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// execOne runs a statement that must touch exactly one row; none is ErrNotFound.
func execOne(ctx context.Context, db execer, what, query string, args ...any) error {
	tag, err := db.Exec(ctx, query, args...)
	if err != nil {
		return wrapErr(what, err)
	}
	if tag.RowsAffected() == 0 {
		return notFound(what)
	}
	return nil
}

// lockKey maps a lock name onto PostgreSQL's 64-bit advisory lock key space.
func lockKey(name string) int64 {
	h := fnv.New64a()
	h.Write([]byte(name))
	return int64(h.Sum64())
}
