package pgtest

import (
	"context"
	"testing"

	"github.com/jackc/pgx/v5"
)

func TestURLGivesAnIsolatedSchemaAndDropsIt(t *testing.T) {
	var schema string
	t.Run("use", func(t *testing.T) {
		url := URL(t)
		ctx := context.Background()
		conn, err := pgx.Connect(ctx, url)
		if err != nil {
			t.Fatalf("connect with %s: %v", url, err)
		}
		defer conn.Close(ctx)
		if err := conn.QueryRow(ctx, `SELECT current_schema()`).Scan(&schema); err != nil {
			t.Fatalf("current_schema: %v", err)
		}
		if len(schema) != len("gh_test_")+16 || schema[:8] != "gh_test_" {
			t.Fatalf("current_schema() = %q, want gh_test_<16 hex digits>", schema)
		}
		if _, err := conn.Exec(ctx, `CREATE TABLE probe (id int)`); err != nil {
			t.Fatalf("create table in the test schema: %v", err)
		}
	})
	if schema == "" {
		t.Skip("the subtest did not get a schema")
	}

	ctx := context.Background()
	conn, err := pgx.Connect(ctx, baseURL())
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	defer conn.Close(ctx)
	var exists bool
	if err := conn.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1)`, schema).Scan(&exists); err != nil {
		t.Fatalf("look up schema: %v", err)
	}
	if exists {
		t.Errorf("schema %s still exists after its test finished", schema)
	}
}

// recordingTB notes how URL gave up instead of stopping the test.
type recordingTB struct {
	testing.TB
	skipped, failed bool
}

func (r *recordingTB) Helper()                      {}
func (r *recordingTB) Skipf(string, ...any)         { r.skipped = true }
func (r *recordingTB) Fatalf(string, ...any)        { r.failed = true }
func (r *recordingTB) Cleanup(func())               {}
func (r *recordingTB) Logf(format string, a ...any) {}

func TestURLUnreachable(t *testing.T) {
	// Port 1 on localhost refuses connections.
	t.Setenv(EnvURL, "postgres://postgres@127.0.0.1:1/test?sslmode=disable&connect_timeout=1")
	for _, tc := range []struct {
		ci                  string
		wantSkip, wantFatal bool
	}{
		{ci: "", wantSkip: true},
		{ci: "false", wantSkip: true},
		{ci: "true", wantFatal: true},
	} {
		t.Setenv("CI", tc.ci)
		r := &recordingTB{TB: t}
		if got := URL(r); got != "" {
			t.Errorf("CI=%q: URL returned %q for an unreachable server", tc.ci, got)
		}
		if r.skipped != tc.wantSkip || r.failed != tc.wantFatal {
			t.Errorf("CI=%q: skipped=%v failed=%v; want skipped=%v failed=%v",
				tc.ci, r.skipped, r.failed, tc.wantSkip, tc.wantFatal)
		}
	}
}

func TestWithSearchPath(t *testing.T) {
	for in, want := range map[string]string{
		"postgres://u@h:5432/db?sslmode=disable": "postgres://u@h:5432/db?search_path=s1&sslmode=disable",
		"postgresql://u@h/db":                    "postgresql://u@h/db?search_path=s1",
		"host=h dbname=db":                       "host=h dbname=db search_path=s1",
	} {
		if got := withSearchPath(in, "s1"); got != want {
			t.Errorf("withSearchPath(%q) = %q, want %q", in, got, want)
		}
	}
}
