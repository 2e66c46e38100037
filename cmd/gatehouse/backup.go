package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"
)

// backupCmd copies the embedded store, also while a server runs on it.
func backupCmd(e *env) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "backup FILE",
		Short: "Write a consistent copy of the embedded SQLite store to FILE (a new file), also while a server runs",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if usesPostgres(cmd, e) {
				return errors.New("backup copies the embedded SQLite store; back PostgreSQL (DATABASE_URL) up with pg_dump, and keep GATEHOUSE_SECRET with it")
			}
			cfg, log, err := setup(cmd, e)
			if err != nil {
				return err
			}
			out, err := filepath.Abs(args[0])
			if err != nil {
				return fmt.Errorf("backup file %s: %w", args[0], err)
			}
			if _, err := os.Lstat(out); err == nil {
				return existsError(out)
			}
			// Opening a missing store would create an empty one, and back that up.
			if _, err := os.Stat(sqlitePath(cfg)); err != nil {
				return fmt.Errorf("GATEHOUSE_DATA_DIR: no embedded store to back up: %w", err)
			}
			st, err := openStore(cmd.Context(), cfg, log)
			if err != nil {
				return err
			}
			defer st.Close()
			b, ok := st.(interface {
				BackupTo(ctx context.Context, path string) (int64, error)
			})
			if !ok {
				return errors.New("this store has no online backup")
			}
			n, err := b.BackupTo(cmd.Context(), out)
			if errors.Is(err, fs.ErrExist) { // created since the check above
				return existsError(out)
			}
			if err != nil {
				return err
			}
			if asJSON {
				return printJSON(e.stdout, struct {
					Path  string `json:"path"`
					Bytes int64  `json:"bytes"`
				}{out, n})
			}
			fmt.Fprintf(e.stdout, "wrote %s (%d bytes); keep it together with the secret (%s): without it the copy's signing keys cannot be read\n",
				out, n, secretSource(cfg))
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

func existsError(path string) error {
	return fmt.Errorf("%s already exists; backup writes a new file and never overwrites one", path)
}

// usesPostgres reports whether DATABASE_URL is set (flag, then environment,
// as loadConfig resolves it) before the rest of the configuration is checked,
// so that the answer is pg_dump rather than a missing GATEHOUSE_SECRET.
func usesPostgres(cmd *cobra.Command, e *env) bool {
	if f := cmd.Flags().Lookup("database-url"); f != nil && f.Changed {
		return strings.TrimSpace(f.Value.String()) != ""
	}
	return strings.TrimSpace(e.getenv("DATABASE_URL")) != ""
}

// secretSource names where this configuration's master secret comes from.
func secretSource(cfg *config) string {
	if cfg.Secret != "" {
		return "GATEHOUSE_SECRET"
	}
	return filepath.Join(cfg.DataDir, "secret")
}
