package sqlite

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// BackupTo writes a consistent copy of the database to path, a new file, and
// returns its size. It runs VACUUM INTO in one read transaction, so writers
// carry on meanwhile (WAL) and the copy is the database as of its start,
// compacted. The file is created with mode 0600 (it holds password hashes and
// encrypted signing keys); if path exists the error wraps fs.ErrExist and
// nothing is written.
func (s *Store) BackupTo(ctx context.Context, path string) (int64, error) {
	const what = "sqlite: backup"
	// Absolute, so SQLite cannot read it as a "file:" URI.
	abs, err := filepath.Abs(path)
	if err != nil {
		return 0, fmt.Errorf("%s: %w", what, err)
	}
	// Claim the name first: VACUUM INTO accepts an existing empty file and
	// keeps its mode, and O_EXCL makes a second backup to the same name fail.
	f, err := os.OpenFile(abs, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return 0, fmt.Errorf("%s: %w", what, err)
	}
	if err := f.Close(); err != nil {
		os.Remove(abs)
		return 0, fmt.Errorf("%s: %w", what, err)
	}
	size, err := s.vacuumInto(ctx, abs)
	if err != nil {
		os.Remove(abs)
		return 0, fmt.Errorf("%s to %s: %w", what, abs, err)
	}
	return size, nil
}

func (s *Store) vacuumInto(ctx context.Context, path string) (int64, error) {
	if _, err := s.db.ExecContext(ctx, "VACUUM INTO ?", path); err != nil {
		return 0, err
	}
	// VACUUM INTO syncs as the source does (synchronous=NORMAL); a backup
	// should be on disk before it is reported done.
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return 0, err
	}
	fi, err := f.Stat()
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return 0, err
	}
	if fi.Size() == 0 {
		return 0, errors.New("VACUUM INTO wrote nothing")
	}
	return fi.Size(), nil
}
