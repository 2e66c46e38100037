package sqlite

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"time"
)

// An SQLite file never shrinks by itself: deleted rows leave free pages
// behind, and the WAL keeps the size of the largest burst between
// checkpoints. The store therefore runs in auto_vacuum=INCREMENTAL mode and
// Reclaim (run after every cleanup pass) returns the free pages to the file
// system and empties the WAL.

const (
	autoVacuumNone = 0
	// busyTimeout is how long a statement waits for another connection's lock.
	busyTimeout = 10 * time.Second
	// checkpointWait bounds how long the truncating checkpoint waits for
	// readers to leave the WAL. It holds the write lock meanwhile, so every
	// writer waits too: a reader that outlasts it (a backup of a large file)
	// leaves the WAL for the next pass instead of stalling sign-ins.
	checkpointWait = 250 * time.Millisecond
)

// ensureIncrementalVacuum makes the file at path an auto_vacuum=INCREMENTAL
// database. SQLite fixes the mode when it writes the first page, so a new file
// gets it before anything else is written; a file made before this store
// enabled it (mode NONE) is rewritten once with VACUUM, which needs free disk
// space for a second copy of the file and holds the write lock while it runs.
func ensureIncrementalVacuum(ctx context.Context, path string, log *slog.Logger) error {
	// A separate single-connection handle without the pool's pragmas: they
	// would write the first page (journal_mode=WAL) before auto_vacuum is set.
	db, err := sql.Open("sqlite", path+fmt.Sprintf("?_pragma=busy_timeout(%d)", busyTimeout.Milliseconds()))
	if err != nil {
		return fmt.Errorf("auto_vacuum: %w", err)
	}
	defer db.Close()
	db.SetMaxOpenConns(1)

	var mode, pages int64
	if err := db.QueryRowContext(ctx, "PRAGMA auto_vacuum").Scan(&mode); err != nil {
		return fmt.Errorf("auto_vacuum: read mode: %w", err)
	}
	if mode != autoVacuumNone { // INCREMENTAL, or FULL, which reclaims at every commit
		return nil
	}
	if err := db.QueryRowContext(ctx, "PRAGMA page_count").Scan(&pages); err != nil {
		return fmt.Errorf("auto_vacuum: read page count: %w", err)
	}
	if _, err := db.ExecContext(ctx, "PRAGMA auto_vacuum = INCREMENTAL"); err != nil {
		return fmt.Errorf("auto_vacuum: set mode: %w", err)
	}
	if pages == 0 {
		// A new file: switching to WAL writes the first page, with the mode.
		if _, err := db.ExecContext(ctx, "PRAGMA journal_mode = WAL"); err != nil {
			return fmt.Errorf("auto_vacuum: create database: %w", err)
		}
		return nil
	}
	size := fileSize(path)
	log.Info("sqlite: converting the database to incremental auto-vacuum with a one-time VACUUM; it can take a while for a large file",
		"path", path, "bytes", size)
	start := time.Now()
	if _, err := db.ExecContext(ctx, "VACUUM"); err != nil {
		return fmt.Errorf("auto_vacuum: convert with VACUUM: %w", err)
	}
	// VACUUM rewrote every page through the WAL; give that space back now.
	if _, err := db.ExecContext(ctx, "PRAGMA wal_checkpoint(TRUNCATE)"); err != nil {
		return fmt.Errorf("auto_vacuum: checkpoint after VACUUM: %w", err)
	}
	log.Info("sqlite: converted the database to incremental auto-vacuum",
		"path", path, "bytes_before", size, "bytes_after", fileSize(path), "took", time.Since(start).Round(time.Millisecond))
	return nil
}

// Reclaim gives the pages freed by deleted rows back to the file system
// (incremental vacuum) and copies the WAL into the database and truncates it
// (checkpoint), so the files shrink after a cleanup pass. If a reader keeps
// the WAL in use for longer than checkpointWait, the WAL is left for the next
// pass; that is not an error.
func (s *Store) Reclaim(ctx context.Context) error {
	const what = "sqlite: reclaim space"
	// Both steps write: take the turn of this process's writers (inTx).
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	conn, err := s.db.Conn(ctx)
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, "PRAGMA incremental_vacuum"); err != nil {
		return fmt.Errorf("%s: incremental vacuum: %w", what, err)
	}
	return checkpoint(ctx, conn, what)
}

// checkpoint runs a TRUNCATE checkpoint on conn with a short busy timeout.
// PASSIVE would never wait, but it cannot shrink the WAL file; TRUNCATE
// copies what it can like PASSIVE, then waits (busy timeout) for readers of
// older snapshots to finish before it truncates, reporting busy if they do not.
func checkpoint(ctx context.Context, conn *sql.Conn, what string) (err error) {
	if _, err := conn.ExecContext(ctx, fmt.Sprintf("PRAGMA busy_timeout = %d", checkpointWait.Milliseconds())); err != nil {
		return fmt.Errorf("%s: set busy timeout: %w", what, err)
	}
	defer func() {
		// The connection returns to the pool: it must wait the usual time again.
		_, rerr := conn.ExecContext(context.WithoutCancel(ctx), fmt.Sprintf("PRAGMA busy_timeout = %d", busyTimeout.Milliseconds()))
		if rerr != nil {
			// Drop the connection rather than pool one that gives up early.
			_ = conn.Raw(func(any) error { return driver.ErrBadConn })
			err = errors.Join(err, fmt.Errorf("%s: restore busy timeout: %w", what, rerr))
		}
	}()
	var busy, walFrames, checkpointed int64
	if err := conn.QueryRowContext(ctx, "PRAGMA wal_checkpoint(TRUNCATE)").Scan(&busy, &walFrames, &checkpointed); err != nil {
		return fmt.Errorf("%s: checkpoint: %w", what, err)
	}
	return nil
}

func fileSize(path string) int64 {
	fi, err := os.Stat(path)
	if err != nil {
		return 0
	}
	return fi.Size()
}
