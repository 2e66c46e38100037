package migrations_test

import (
	"context"
	"database/sql"
	"path/filepath"
	"testing"
	"time"

	"github.com/pressly/goose/v3"

	"github.com/gatehouse-id/gatehouse/migrations"
	"github.com/gatehouse-id/gatehouse/storage/postgres/pgtest"
)

// Migration 00022 (a signing key of each algorithm) must revert to what an
// older binary can load: no EdDSA keys (it cannot parse them), one active and
// one next key, and the RS256 keys those are; the ES256 active key stays
// published as retired so the tokens it signed still verify.
func TestSigningAlgorithmsDownSQLite(t *testing.T) {
	db, err := sql.Open("sqlite", filepath.Join(t.TempDir(), "m.db")+"?_pragma=foreign_keys(1)")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	signingAlgorithmsDown(t, goose.DialectSQLite3, db, "?", time.Now().UnixMilli())
}

func TestSigningAlgorithmsDownPostgres(t *testing.T) {
	db, err := sql.Open("pgx", pgtest.URL(t))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	signingAlgorithmsDown(t, goose.DialectPostgres, db, "$", time.Now())
}

func signingAlgorithmsDown(t *testing.T, dialect goose.Dialect, db *sql.DB, ph string, created any) {
	t.Helper()
	ctx := context.Background()
	p, err := migrations.NewProvider(dialect, db)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.UpTo(ctx, 22); err != nil {
		t.Fatalf("up to 22: %v", err)
	}
	arg := func(n int) string {
		if ph == "?" {
			return "?"
		}
		return "$" + string(rune('0'+n))
	}
	insert := `INSERT INTO signing_keys (id, algorithm, state, private_key, public_key, created_at)
		VALUES (` + arg(1) + `, ` + arg(2) + `, ` + arg(3) + `, ` + arg(4) + `, ` + arg(5) + `, ` + arg(6) + `)`
	for _, alg := range []string{"RS256", "ES256", "EdDSA"} {
		for _, state := range []string{"active", "next"} {
			if _, err := db.ExecContext(ctx, insert, alg+"-"+state, alg, state, []byte("private"), []byte("public"), created); err != nil {
				t.Fatalf("insert %s %s key: %v", state, alg, err)
			}
		}
	}
	if _, err := p.DownTo(ctx, 21); err != nil {
		t.Fatalf("down to 21: %v", err)
	}
	rows, err := db.QueryContext(ctx, `SELECT id, state, remove_after IS NOT NULL FROM signing_keys ORDER BY id`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	got := map[string]string{}
	for rows.Next() {
		var id, state string
		var removable bool
		if err := rows.Scan(&id, &state, &removable); err != nil {
			t.Fatal(err)
		}
		if state == "retired" && !removable {
			t.Errorf("retired key %s has no remove_after", id)
		}
		got[id] = state
	}
	want := map[string]string{"RS256-active": "active", "RS256-next": "next", "ES256-active": "retired"}
	if len(got) != len(want) {
		t.Errorf("keys after down: %v, want %v", got, want)
	}
	for id, state := range want {
		if got[id] != state {
			t.Errorf("key %s after down: %q, want %q (all: %v)", id, got[id], state, got)
		}
	}
	// The old indexes are back: one active key in all.
	if _, err := db.ExecContext(ctx, insert, "ES256-active-2", "ES256", "active", []byte("private"), []byte("public"), created); err == nil {
		t.Error("a second active key was accepted after down")
	}
}
