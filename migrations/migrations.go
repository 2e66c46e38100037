// Package migrations holds Gatehouse's SQL schema, one goose migration set per
// SQL dialect, embedded in the binary so a deployment needs no files besides it.
//
// Run them through a goose Provider (see NewProvider), never goose's
// package-level functions: those keep global state shared by every caller.
package migrations

import (
	"database/sql"
	"embed"
	"fmt"
	"io/fs"

	"github.com/pressly/goose/v3"
)

//go:embed postgres/*.sql sqlite/*.sql
var embedded embed.FS

// Postgres and SQLite are the migration files of each dialect, rooted at the
// dialect's folder as goose expects.
var (
	Postgres = mustSub("postgres")
	SQLite   = mustSub("sqlite")
)

// mustSub panics only if the embed directive and the folder names disagree,
// which is a build mistake caught by the first test run.
func mustSub(dir string) fs.FS {
	sub, err := fs.Sub(embedded, dir)
	if err != nil {
		panic(fmt.Sprintf("migrations: embedded folder %q: %v", dir, err))
	}
	return sub
}

// NewProvider returns a goose Provider for dialect (goose.DialectPostgres or
// goose.DialectSQLite3) over db with the matching embedded migrations. It
// ignores goose's global registry of Go migrations and logs nothing; opts are
// appended (for example a session locker).
func NewProvider(dialect goose.Dialect, db *sql.DB, opts ...goose.ProviderOption) (*goose.Provider, error) {
	var fsys fs.FS
	switch dialect {
	case goose.DialectPostgres:
		fsys = Postgres
	case goose.DialectSQLite3:
		fsys = SQLite
	default:
		return nil, fmt.Errorf("migrations: unsupported dialect %q", dialect)
	}
	base := []goose.ProviderOption{
		goose.WithDisableGlobalRegistry(true),
		goose.WithLogger(goose.NopLogger()),
	}
	p, err := goose.NewProvider(dialect, db, fsys, append(base, opts...)...)
	if err != nil {
		return nil, fmt.Errorf("migrations: new %s provider: %w", dialect, err)
	}
	return p, nil
}
