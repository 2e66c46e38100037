// Command gatehouse is the Gatehouse OpenID Connect provider: `gatehouse serve`
// runs the issuer; the other subcommands manage clients, users, keys and the
// database schema on the same store, also while a server runs.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/gatehouse-id/gatehouse/internal/requestid"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr, os.Getenv)
	stop()
	os.Exit(code)
}

// env is what a command runs with; tests pass their own.
type env struct {
	stdin          io.Reader
	stdout, stderr io.Writer
	getenv         func(string) string
	now            func() time.Time
}

// run executes the CLI and returns the exit code. Errors are one line on stderr.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer, getenv func(string) string) int {
	e := &env{stdin: stdin, stdout: stdout, stderr: stderr, getenv: getenv, now: time.Now}
	root := newRootCmd(e)
	root.SetArgs(args)
	root.SetIn(stdin)
	root.SetOut(stdout)
	root.SetErr(stderr)
	if err := root.ExecuteContext(ctx); err != nil {
		fmt.Fprintln(stderr, "gatehouse: "+oneLine(err.Error()))
		return 1
	}
	return 0
}

func newRootCmd(e *env) *cobra.Command {
	root := &cobra.Command{
		Use:           "gatehouse",
		Short:         "Gatehouse, an OpenID Connect provider",
		SilenceErrors: true,
		SilenceUsage:  true,
	}
	addSettingFlags(root.PersistentFlags())
	root.AddCommand(serveCmd(e), migrateCmd(e), clientsCmd(e), usersCmd(e), keysCmd(e), backupCmd(e), auditCmd(e))
	return root
}

// setup resolves the configuration and builds the logger for a command.
func setup(cmd *cobra.Command, e *env) (*config, *slog.Logger, error) {
	cfg, err := loadConfig(cmd.Flags(), e.getenv)
	if err != nil {
		return nil, nil, err
	}
	return cfg, newLogger(cfg, e.stderr), nil
}

func newLogger(cfg *config, w io.Writer) *slog.Logger {
	var level slog.Level
	_ = level.UnmarshalText([]byte(cfg.LogLevel)) // validated by loadConfig
	opts := &slog.HandlerOptions{Level: level}
	var h slog.Handler = slog.NewTextHandler(w, opts)
	if cfg.LogFormat == "json" {
		h = slog.NewJSONHandler(w, opts)
	}
	// Lines logged while serving a request carry its ID (see requestid).
	return slog.New(requestid.LogHandler(h))
}

// withCore runs fn with the store and keys open, closing them afterwards.
func withCore(cmd *cobra.Command, e *env, fn func(ctx context.Context, cfg *config, c *core) error) error {
	cfg, log, err := setup(cmd, e)
	if err != nil {
		return err
	}
	c, err := openCore(cmd.Context(), cfg, log)
	if err != nil {
		return err
	}
	defer c.store.Close()
	return fn(cmd.Context(), cfg, c)
}

func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// readPassword reads a password from stdin: the first line, without its line end.
func readPassword(r io.Reader) (string, error) {
	b, err := io.ReadAll(io.LimitReader(r, 4096))
	if err != nil {
		return "", fmt.Errorf("read password from stdin: %w", err)
	}
	pw, _, _ := strings.Cut(string(b), "\n")
	pw = strings.TrimSuffix(pw, "\r")
	if pw == "" {
		return "", errors.New("no password on stdin")
	}
	return pw, nil
}
