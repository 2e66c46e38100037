package migrations_test

import (
	"context"
	"database/sql"
	"path/filepath"
	"testing"

	_ "github.com/jackc/pgx/v5/stdlib" // registers the "pgx" database/sql driver
	"github.com/pressly/goose/v3"
	_ "modernc.org/sqlite" // registers the "sqlite" database/sql driver

	"github.com/gatehouse-id/gatehouse/migrations"
	"github.com/gatehouse-id/gatehouse/storage/postgres/pgtest"
)

// Every migration must apply, revert and apply again: Down sections are only
// trustworthy if they run.
func TestUpDownUpSQLite(t *testing.T) {
	db, err := sql.Open("sqlite", filepath.Join(t.TempDir(), "m.db")+"?_pragma=foreign_keys(1)")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	upDownUp(t, goose.DialectSQLite3, db, `SELECT count(*) FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'goose%' AND name NOT LIKE 'sqlite%'`)
}

func TestUpDownUpPostgres(t *testing.T) {
	db, err := sql.Open("pgx", pgtest.URL(t))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	upDownUp(t, goose.DialectPostgres, db, `SELECT count(*) FROM pg_tables WHERE schemaname = current_schema() AND tablename NOT LIKE 'goose%'`)
}

func upDownUp(t *testing.T, dialect goose.Dialect, db *sql.DB, countTables string) {
	t.Helper()
	ctx := context.Background()
	p, err := migrations.NewProvider(dialect, db)
	if err != nil {
		t.Fatalf("new provider: %v", err)
	}
	sources := p.ListSources()
	if len(sources) == 0 {
		t.Fatal("no migrations embedded")
	}
	latest := sources[len(sources)-1].Version

	tables := func() int {
		t.Helper()
		var n int
		if err := db.QueryRowContext(ctx, countTables).Scan(&n); err != nil {
			t.Fatalf("count tables: %v", err)
		}
		return n
	}

	if _, err := p.Up(ctx); err != nil {
		t.Fatalf("up: %v", err)
	}
	if v, err := p.GetDBVersion(ctx); err != nil || v != latest {
		t.Fatalf("version after up = %d, %v; want %d", v, err, latest)
	}
	if tables() == 0 {
		t.Fatal("up created no tables")
	}
	if _, err := p.DownTo(ctx, 0); err != nil {
		t.Fatalf("down: %v", err)
	}
	if n := tables(); n != 0 {
		t.Errorf("%d tables remain after migrating down", n)
	}
	if _, err := p.Up(ctx); err != nil {
		t.Fatalf("up again: %v", err)
	}
}

func TestNewProviderRejectsOtherDialects(t *testing.T) {
	db, err := sql.Open("sqlite", filepath.Join(t.TempDir(), "m.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := migrations.NewProvider(goose.DialectMySQL, db); err == nil {
		t.Error("NewProvider accepted MySQL")
	}
}
