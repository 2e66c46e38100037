package sqlite_test

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-id/gatehouse/storage"
	"github.com/gatehouse-id/gatehouse/storage/sqlite"
)

// filesSize is what the store takes on disk: the database and its WAL (the
// -shm index is a fixed-size memory map).
func filesSize(t *testing.T, path string) (db, wal int64) {
	t.Helper()
	for _, f := range []struct {
		name string
		into *int64
	}{{path, &db}, {path + "-wal", &wal}} {
		fi, err := os.Stat(f.name)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		*f.into = fi.Size()
	}
	return db, wal
}

// pragmaInt reads an integer PRAGMA through a connection of its own, as an
// operator's sqlite3 shell would.
func pragmaInt(t *testing.T, path, pragma string) int64 {
	t.Helper()
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var v int64
	if err := db.QueryRow("PRAGMA " + pragma).Scan(&v); err != nil {
		t.Fatalf("PRAGMA %s: %v", pragma, err)
	}
	return v
}

func openAt(t *testing.T, path string, opts ...sqlite.Option) *sqlite.Store {
	t.Helper()
	s, err := sqlite.Open(context.Background(), path, opts...)
	if err != nil {
		t.Fatalf("open %s: %v", path, err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// addAuthRequests inserts n auth requests of about 1 KiB expiring at exp.
func addAuthRequests(t *testing.T, s *sqlite.Store, prefix string, n int, exp time.Time) {
	t.Helper()
	ctx := context.Background()
	pad := strings.Repeat("x", 1000)
	for i := range n {
		err := s.CreateAuthRequest(ctx, &storage.AuthRequest{
			ID: fmt.Sprintf("%s-%d", prefix, i), ClientID: "c1", RedirectURI: "https://a.example/cb",
			State: pad, Scopes: []string{"openid"}, ResponseType: "code",
			CreatedAt: exp.Add(-time.Minute), ExpiresAt: exp,
		})
		if err != nil {
			t.Fatalf("create auth request %d: %v", i, err)
		}
	}
}

func addClient(t *testing.T, s *sqlite.Store) {
	t.Helper()
	if err := s.CreateClient(context.Background(), &storage.Client{ID: "c1", Name: "C", RedirectURIs: []string{"https://a.example/cb"}}); err != nil {
		t.Fatal(err)
	}
}

// TestCleanupReclaimsSpace: after many rows expire, the cleanup pass
// (DeleteExpired) brings the database and WAL back to their size before.
func TestCleanupReclaimsSpace(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "gatehouse.db")
	s := openAt(t, path)
	if av := pragmaInt(t, path, "auto_vacuum"); av != 2 {
		t.Fatalf("new database has auto_vacuum=%d, want 2 (incremental)", av)
	}
	addClient(t, s)
	now := time.Now()
	addAuthRequests(t, s, "live", 20, now.Add(time.Hour))
	if _, err := s.DeleteExpired(ctx, now); err != nil {
		t.Fatal(err)
	}
	startDB, startWAL := filesSize(t, path)

	const expired = 5000 // ≈ 5 MiB of rows
	addAuthRequests(t, s, "old", expired, now.Add(-time.Minute))
	filledDB, filledWAL := filesSize(t, path)
	if grown := filledDB + filledWAL - startDB - startWAL; grown < 4<<20 {
		t.Fatalf("filling grew the files by only %d bytes", grown)
	}

	n, err := s.DeleteExpired(ctx, now)
	if err != nil || n != expired {
		t.Fatalf("DeleteExpired = %d, %v; want %d", n, err, expired)
	}
	endDB, endWAL := filesSize(t, path)
	t.Logf("db+wal bytes: start %d+%d, filled %d+%d, after cleanup %d+%d",
		startDB, startWAL, filledDB, filledWAL, endDB, endWAL)
	const slack = 16 << 10 // four pages of b-tree shape
	if endDB+endWAL > startDB+startWAL+slack {
		t.Errorf("after cleanup db+wal = %d bytes, want within %d of the %d before", endDB+endWAL, slack, startDB+startWAL)
	}
	if endWAL != 0 {
		t.Errorf("WAL is %d bytes after cleanup, want truncated", endWAL)
	}
	if free := pragmaInt(t, path, "freelist_count"); free != 0 {
		t.Errorf("%d free pages left in the file", free)
	}
	if _, err := s.GetAuthRequest(ctx, "live-19"); err != nil {
		t.Errorf("live row lost: %v", err)
	}
}

// TestCleanupDoesNotWaitForAReader: a long read transaction (another
// process's backup, say) keeps the WAL in use; the cleanup pass must not hold
// the write lock for the whole busy timeout waiting for it, and the next pass
// after the reader ends truncates the WAL.
func TestCleanupDoesNotWaitForAReader(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "gatehouse.db")
	s := openAt(t, path)
	addClient(t, s)
	now := time.Now()

	reader, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer reader.Close()
	tx, err := reader.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	var clients int
	if err := tx.QueryRow("SELECT count(*) FROM clients").Scan(&clients); err != nil || clients != 1 {
		t.Fatalf("reader sees %d clients, %v", clients, err)
	}

	addAuthRequests(t, s, "old", 500, now.Add(-time.Minute))
	start := time.Now()
	n, err := s.DeleteExpired(ctx, now)
	took := time.Since(start)
	if err != nil || n != 500 {
		t.Fatalf("DeleteExpired beside a reader = %d, %v", n, err)
	}
	if took > 8*time.Second { // under the 10 s busy timeout: it did not wait for the reader
		t.Errorf("cleanup beside a reader took %s", took)
	}
	if _, wal := filesSize(t, path); wal == 0 {
		t.Fatalf("WAL truncated although a reader still used it")
	}

	if err := tx.Rollback(); err != nil {
		t.Fatal(err)
	}
	if _, err := s.DeleteExpired(ctx, now); err != nil {
		t.Fatal(err)
	}
	if _, wal := filesSize(t, path); wal != 0 {
		t.Errorf("WAL is %d bytes after the reader ended and cleanup ran", wal)
	}
}

// TestOpenConvertsExistingDatabase: a file made without auto-vacuum (by an
// earlier version) is converted once at open, with a log line, keeping its data.
func TestOpenConvertsExistingDatabase(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "gatehouse.db")
	var logs bytes.Buffer
	log := slog.New(slog.NewTextHandler(&logs, nil))

	s, err := sqlite.Open(ctx, path, sqlite.WithLogger(log))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.CreateUser(ctx, &storage.User{ID: "u1", Email: "u1@example.com"}); err != nil {
		t.Fatal(err)
	}
	s.Close()
	if logs.Len() != 0 {
		t.Errorf("opening a new database logged: %s", logs.String())
	}

	// Turn it back into what older versions made.
	raw, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	raw.SetMaxOpenConns(1)
	for _, q := range []string{"PRAGMA auto_vacuum = NONE", "VACUUM"} {
		if _, err := raw.Exec(q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	raw.Close()
	if av := pragmaInt(t, path, "auto_vacuum"); av != 0 {
		t.Fatalf("setup: auto_vacuum=%d, want 0", av)
	}

	s = openAt(t, path, sqlite.WithLogger(log))
	if av := pragmaInt(t, path, "auto_vacuum"); av != 2 {
		t.Errorf("after open auto_vacuum=%d, want 2", av)
	}
	if !strings.Contains(logs.String(), "converted the database to incremental auto-vacuum") {
		t.Errorf("conversion not logged: %q", logs.String())
	}
	if _, err := s.GetUser(ctx, "u1"); err != nil {
		t.Errorf("data lost in conversion: %v", err)
	}
	s.Close()

	logs.Reset()
	openAt(t, path, sqlite.WithLogger(log))
	if logs.Len() != 0 {
		t.Errorf("converted again on the next open: %s", logs.String())
	}
}

// TestBackupTo: the copy is a whole, consistent database with the data, mode
// 0600, and an existing file is never overwritten.
func TestBackupTo(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s := openAt(t, filepath.Join(dir, "gatehouse.db"))
	if err := s.CreateUser(ctx, &storage.User{ID: "u1", Email: "u1@example.com"}); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "backup.db")
	n, err := s.BackupTo(ctx, out)
	if err != nil {
		t.Fatalf("BackupTo: %v", err)
	}
	fi, err := os.Stat(out)
	if err != nil || fi.Size() != n || fi.Mode().Perm() != 0o600 {
		t.Fatalf("backup file %v, %v; want %d bytes, mode 0600", fi, err, n)
	}
	checkIntegrity(t, out)

	if _, err := s.BackupTo(ctx, out); !errors.Is(err, fs.ErrExist) {
		t.Errorf("second BackupTo to the same file: %v, want fs.ErrExist", err)
	}
	if fi2, _ := os.Stat(out); fi2 == nil || fi2.Size() != n || !fi2.ModTime().Equal(fi.ModTime()) {
		t.Errorf("the existing backup was touched")
	}
	if _, err := s.BackupTo(ctx, filepath.Join(dir, "missing", "b.db")); err == nil {
		t.Errorf("backup into a missing directory succeeded")
	}

	restored := openAt(t, out)
	if u, err := restored.GetUser(ctx, "u1"); err != nil || u.Email != "u1@example.com" {
		t.Errorf("user in the copy: %v, %v", u, err)
	}
}

func checkIntegrity(t *testing.T, path string) {
	t.Helper()
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var res string
	if err := db.QueryRow("PRAGMA integrity_check").Scan(&res); err != nil || res != "ok" {
		t.Errorf("integrity_check of %s = %q, %v", path, res, err)
	}
}
