package sqlite_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/gatehouse-id/gatehouse/storage"
	"github.com/gatehouse-id/gatehouse/storage/sqlite"
	"github.com/gatehouse-id/gatehouse/storage/storagetest"
)

func openTemp(t *testing.T) *sqlite.Store {
	t.Helper()
	// A nested path checks that Open creates missing parent directories.
	path := filepath.Join(t.TempDir(), "data", "gatehouse.db")
	s, err := sqlite.Open(context.Background(), path)
	if err != nil {
		t.Fatalf("open %s: %v", path, err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	return s
}

func TestConformance(t *testing.T) {
	storagetest.Run(t, func(t *testing.T) storage.Store { return openTemp(t) })
}

func TestOpenMigratesOnceAndReopens(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "gatehouse.db")
	s, err := sqlite.Open(ctx, path)
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	v, err := s.MigrationVersion(ctx)
	if err != nil || v < 1 {
		t.Fatalf("MigrationVersion = %d, %v; want >= 1", v, err)
	}
	if err := s.CreateUser(ctx, &storage.User{ID: "u1", Email: "u1@example.com"}); err != nil {
		t.Fatalf("create user: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}

	info, err := os.Stat(path)
	if err != nil {
		t.Fatalf("stat: %v", err)
	}
	if perm := info.Mode().Perm(); perm&0o077 != 0 {
		t.Errorf("database file mode %v is readable by others", perm)
	}

	s, err = sqlite.Open(ctx, path)
	if err != nil {
		t.Fatalf("reopen: %v", err)
	}
	defer s.Close()
	again, err := s.MigrationVersion(ctx)
	if err != nil || again != v {
		t.Errorf("MigrationVersion after reopen = %d, %v; want %d", again, err, v)
	}
	if _, err := s.GetUser(ctx, "u1"); err != nil {
		t.Errorf("data lost across reopen: %v", err)
	}
}

func TestOpenRejectsUnusablePaths(t *testing.T) {
	for _, path := range []string{"", ":memory:", filepath.Join(t.TempDir(), "x.db?mode=ro")} {
		if s, err := sqlite.Open(context.Background(), path); err == nil {
			s.Close()
			t.Errorf("Open(%q) succeeded", path)
		}
	}
}
