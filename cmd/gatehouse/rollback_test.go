package main

import (
	"context"
	"database/sql"
	"fmt"
	"net/http"
	"path/filepath"
	"regexp"
	"strconv"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	_ "modernc.org/sqlite"

	"github.com/gatehouse-id/gatehouse/storage/postgres/pgtest"
)

// TestOlderBinaryOnNewerSchema pins down what README "Backups and upgrades"
// says about rolling back: a binary whose newest migration is older than the
// database's (as after an upgrade that added one) starts and serves — goose
// applies nothing and does not refuse unknown versions — so a rollback
// relies on later migrations being additive, or on restoring a backup.
func TestOlderBinaryOnNewerSchema(t *testing.T) {
	for _, backend := range backends {
		t.Run(backend, func(t *testing.T) {
			vars := serverVars(t, "http://127.0.0.1:1", nil)
			if backend == "postgres" {
				vars["DATABASE_URL"] = pgtest.URL(t)
				vars["GATEHOUSE_SECRET"] = testSecret
			}
			getenv := func(k string) string { return vars[k] }
			out, errOut, code := runCLI(getenv, "", "migrate")
			if code != 0 {
				t.Fatalf("migrate: exit %d: %s", code, errOut)
			}
			current := schemaVersion(t, out)

			// A "newer binary" ran migration current+1.
			newer := current + 1
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			const insert = `INSERT INTO goose_db_version (version_id, is_applied) VALUES (%d, true)`
			if backend == "postgres" {
				conn, err := pgx.Connect(ctx, vars["DATABASE_URL"])
				if err != nil {
					t.Fatal(err)
				}
				defer conn.Close(context.Background())
				if _, err := conn.Exec(ctx, fmt.Sprintf(insert, newer)); err != nil {
					t.Fatal(err)
				}
			} else {
				db, err := sql.Open("sqlite", filepath.Join(vars["GATEHOUSE_DATA_DIR"], "gatehouse.db"))
				if err != nil {
					t.Fatal(err)
				}
				defer db.Close()
				if _, err := db.ExecContext(ctx, fmt.Sprintf(insert, newer)); err != nil {
					t.Fatal(err)
				}
			}

			out, errOut, code = runCLI(getenv, "", "migrate")
			if code != 0 {
				t.Fatalf("migrate on a newer schema: exit %d: %s (README says it runs)", code, errOut)
			}
			if got := schemaVersion(t, out); got != newer {
				t.Errorf("migrate reports version %d, want the database's %d", got, newer)
			}
			ln := listenLoopback(t)
			vars["GATEHOUSE_ISSUER"] = "http://" + ln.Addr().String()
			ts := startServerOn(t, ln, vars, nil)
			resp, err := http.Get(ts.issuer + "/readyz")
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				t.Errorf("/readyz on a newer schema: %d, want 200", resp.StatusCode)
			}
		})
	}
}

func schemaVersion(t *testing.T, migrateOut string) int64 {
	t.Helper()
	m := regexp.MustCompile(`schema is at version (\d+)`).FindStringSubmatch(migrateOut)
	if m == nil {
		t.Fatalf("migrate printed %q", migrateOut)
	}
	n, _ := strconv.ParseInt(m[1], 10, 64)
	return n
}
