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
	"runtime"
	"runtime/debug"
	"slices"
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
	root := group("gatehouse", "Gatehouse, an OpenID Connect provider",
		withSettings(serveCmd(e), scopeServe),
		withSettings(migrateCmd(e), scopeServe),
		clientsCmd(e), usersCmd(e), importCmd(e), keysCmd(e), upstreamsCmd(e), logoutDeliveriesCmd(e),
		withSettings(backupCmd(e), scopeStore),
		withNamedSettings(healthcheckCmd(e), "addr", "tls-cert"),
		auditCmd(e), versionCmd(e))
	root.Long = "Gatehouse is an OpenID Connect provider. `gatehouse serve` runs it; the other commands\n" +
		"manage clients, users and keys on the same store, also while a server runs.\n\n" +
		"Every flag of a command is also an environment variable, named in its help\n" +
		"(`gatehouse serve --help`); a flag wins over the environment."
	root.Example = `  gatehouse serve                   # issuer http://localhost:8080, data in ./data
  gatehouse serve --addr :8090      # another port; the issuer follows: http://localhost:8090
  echo 'Choose-a-Passw0rd' | gatehouse users create --email you@example.com --name "You" --password-stdin
  gatehouse clients create --name Shop --redirect-uri https://shop.example.com/callback
  gatehouse clients rotate-secret gatehouse-demo
  DATABASE_URL=postgres://… GATEHOUSE_SECRET=… gatehouse migrate`
	root.Version = versionText()
	root.SetVersionTemplate("{{.Version}}\n")
	root.SilenceErrors, root.SilenceUsage = true, true
	return root
}

// group is a command that only holds subcommands. Alone it prints its help;
// with an unknown subcommand it fails and suggests the nearest one (cobra
// does that only for the root, and shows help with exit 0 for the others).
func group(use, short string, subs ...*cobra.Command) *cobra.Command {
	cmd := &cobra.Command{
		Use:   use,
		Short: short,
		Args:  cobra.ArbitraryArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 0 {
				return cmd.Help()
			}
			cmd.SuggestionsMinimumDistance = 2 // SuggestionsFor has no default
			msg := fmt.Sprintf("unknown command %q for %q", args[0], cmd.CommandPath())
			if s := cmd.SuggestionsFor(args[0]); len(s) > 0 {
				msg += fmt.Sprintf("; did you mean %q?", s[0])
			}
			return fmt.Errorf("%s (see %s --help)", msg, cmd.CommandPath())
		},
	}
	cmd.AddCommand(subs...)
	return cmd
}

// withSettings gives cmd the settings of scope sc as flags.
func withSettings(cmd *cobra.Command, sc scope) *cobra.Command {
	addSettingFlags(cmd.Flags(), sc)
	return cmd
}

// withNamedSettings gives cmd the flags of the named settings only (a
// command that needs one or two settings, not a whole scope).
func withNamedSettings(cmd *cobra.Command, names ...string) *cobra.Command {
	for _, s := range settings {
		if slices.Contains(names, s.flag) {
			addSettingFlag(cmd.Flags(), s)
		}
	}
	return cmd
}

func versionCmd(e *env) *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version, commit and Go version",
		Args:  cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			_, err := fmt.Fprintln(e.stdout, versionText())
			return err
		},
	}
}

// versionText is read from the build information the Go toolchain embeds
// (module version, VCS commit and time), so no build flag is needed.
func versionText() string {
	version, commit, goVersion := "(devel)", "unknown", runtime.Version()
	var when, modified string
	if bi, ok := debug.ReadBuildInfo(); ok {
		if bi.Main.Version != "" {
			version = bi.Main.Version
		}
		goVersion = bi.GoVersion
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				commit = s.Value
			case "vcs.time":
				when = ", " + s.Value
			case "vcs.modified":
				if s.Value == "true" {
					modified = ", modified"
				}
			}
		}
	}
	return fmt.Sprintf("gatehouse %s (commit %s%s%s, %s)", version, commit, when, modified, goVersion)
}

// setup resolves the configuration and builds the logger for a command.
// serve logs at info by default; the other commands at warn, so that their
// output is only what they print (a script reads stdout, a person stderr).
func setup(cmd *cobra.Command, e *env) (*config, *slog.Logger, error) {
	cfg, err := loadConfig(cmd.Flags(), e.getenv)
	if err != nil {
		return nil, nil, err
	}
	if cfg.LogLevel == "" {
		cfg.LogLevel = "warn"
		if cmd.Name() == "serve" {
			cfg.LogLevel = "info"
		}
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
	if c.fresh {
		// A mistyped --data-dir or DATABASE_URL is noticed at once.
		fmt.Fprintln(e.stderr, "gatehouse: "+newStoreNote(cfg))
	}
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
