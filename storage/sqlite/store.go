// Package sqlite is the single-node storage.Store backend: pure-Go SQLite
// (modernc.org/sqlite) in WAL mode, migrated with the embedded goose migrations.
package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/pressly/goose/v3"
	_ "modernc.org/sqlite" // registers the "sqlite" database/sql driver

	"github.com/gatehouse-id/gatehouse/migrations"
	"github.com/gatehouse-id/gatehouse/storage"
)

// Store implements storage.Store on one SQLite database file.
type Store struct {
	db         *sql.DB
	migrations *goose.Provider
	locks      namedLocks
	// writeMu serialises this process's write transactions. SQLite allows one
	// writer at a time anyway; waiting here is a cheap handoff, whereas
	// contending in SQLite's busy handler sleeps 1, 2, 5, 10… ms for a lock
	// held about 0.1 ms (measured: bench/README.md). busy_timeout still
	// arbitrates with other processes (the CLI).
	writeMu sync.Mutex
	// q runs single statements outside transactions, prepared (prepared.go).
	q *preparedDB
}

var _ storage.Store = (*Store)(nil)

// maxConns bounds the pool: readers run in parallel under WAL, writers one at
// a time.
const maxConns = 8

// Option configures Open.
type Option func(*options)

type options struct{ log *slog.Logger }

// WithLogger logs what Open does to the file beyond migrating it (a one-time
// conversion to incremental auto-vacuum). Without it nothing is logged.
func WithLogger(log *slog.Logger) Option { return func(o *options) { o.log = log } }

// Open opens (creating it and its parent directory if missing) the database file
// at path and applies pending migrations.
func Open(ctx context.Context, path string, opts ...Option) (*Store, error) {
	o := options{log: slog.New(slog.DiscardHandler)}
	for _, opt := range opts {
		opt(&o)
	}
	if path == "" {
		return nil, errors.New("sqlite: empty database path")
	}
	// The driver splits the DSN at '?', and ":memory:" would give every pooled
	// connection its own empty database.
	if strings.ContainsRune(path, '?') || path == ":memory:" {
		return nil, fmt.Errorf("sqlite: unsupported database path %q", path)
	}
	if err := createFile(path); err != nil {
		return nil, err
	}
	if err := ensureIncrementalVacuum(ctx, path, o.log); err != nil {
		return nil, fmt.Errorf("sqlite: open %s: %w", path, err)
	}
	db, err := sql.Open("sqlite", path+"?"+dsnParams())
	if err != nil {
		return nil, fmt.Errorf("sqlite: open %s: %w", path, err)
	}
	// Keep connections open: database/sql keeps only 2 idle ones by default,
	// and reopening one re-runs the pragmas and re-reads the schema (12% of
	// userinfo CPU under load before this).
	db.SetMaxOpenConns(maxConns)
	db.SetMaxIdleConns(maxConns)
	s, err := newStore(ctx, db)
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("sqlite: open %s: %w", path, err)
	}
	return s, nil
}

func newStore(ctx context.Context, db *sql.DB) (*Store, error) {
	if err := db.PingContext(ctx); err != nil {
		return nil, fmt.Errorf("ping: %w", err)
	}
	provider, err := migrations.NewProvider(goose.DialectSQLite3, db)
	if err != nil {
		return nil, err
	}
	if _, err := provider.Up(ctx); err != nil {
		return nil, fmt.Errorf("migrate: %w", err)
	}
	return &Store{db: db, migrations: provider, q: newPreparedDB(db)}, nil
}

// dsnParams configures every pooled connection. WAL lets readers run beside the
// single writer; busy_timeout makes a writer wait for the lock instead of failing
// with SQLITE_BUSY; _txlock=immediate takes the write lock at BEGIN, because a
// deferred transaction that reads and then writes cannot wait for the lock (it
// would deadlock) and fails at once. Foreign keys are off in SQLite by default
// and the cascades in the schema need them.
func dsnParams() string {
	q := url.Values{}
	q.Add("_pragma", fmt.Sprintf("busy_timeout(%d)", busyTimeout.Milliseconds()))
	q.Add("_pragma", "journal_mode(WAL)")
	q.Add("_pragma", "synchronous(NORMAL)")
	q.Add("_pragma", "foreign_keys(1)")
	q.Set("_txlock", "immediate")
	return q.Encode()
}

// createFile makes the parent directory and an empty database file readable by
// the owner only: it holds password hashes and encrypted signing keys. SQLite
// gives its -wal and -shm files the same permissions.
func createFile(path string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("sqlite: create directory for %s: %w", path, err)
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("sqlite: create %s: %w", path, err)
	}
	return f.Close()
}

// MigrationVersion reports the schema version applied to the database.
func (s *Store) MigrationVersion(ctx context.Context) (int64, error) {
	v, err := s.migrations.GetDBVersion(ctx)
	if err != nil {
		return 0, fmt.Errorf("sqlite: migration version: %w", err)
	}
	return v, nil
}

// Ping checks that the database answers.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.db.PingContext(ctx); err != nil {
		return storeErr("sqlite: ping", err)
	}
	return nil
}

// Close closes the database.
func (s *Store) Close() error {
	s.q.close()
	if err := s.db.Close(); err != nil {
		return fmt.Errorf("sqlite: close: %w", err)
	}
	return nil
}

// Statements implements storage.StatementCounter: the statements of the
// store's own queries (prepared.go), in transactions or not. Statements run
// straight on the pool (migrations, backups, housekeeping) are not counted.
func (s *Store) Statements() storage.StatementCounts { return s.q.tally.Counts() }

// inTx runs fn in a transaction (IMMEDIATE, so it holds the write lock from the
// start) and commits if fn returns nil. fn's error is returned unchanged so
// callers can return sentinel errors through it.
func (s *Store) inTx(ctx context.Context, what string, fn func(tx *txq) error) error {
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return storeErr(what+": begin", err)
	}
	s.q.tally.CountTransaction()
	if err := fn(&txq{tx: tx, p: s.q}); err != nil {
		tx.Rollback()
		return err
	}
	if err := tx.Commit(); err != nil {
		return storeErr(what+": commit", err)
	}
	return nil
}

// execOne runs a statement that must touch exactly one row; none is ErrNotFound.
func execOne(ctx context.Context, db execer, what, query string, args ...any) error {
	res, err := db.ExecContext(ctx, query, args...)
	if err != nil {
		return wrapErr(what, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return wrapErr(what, err)
	}
	if n == 0 {
		return notFound(what)
	}
	return nil
}

// execer is what *sql.DB and *sql.Tx share for statements without results.
type execer interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
}

// queryRower is what the prepared statements and *sql.Tx share for one-row
// queries.
type queryRower interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}
