package main

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/spf13/cobra"
)

// The Auth.js source: the Prisma model of the Auth.js credentials guide,
//
//	model User {
//	  id            String    @id @default(cuid())
//	  name          String?
//	  email         String    @unique
//	  emailVerified DateTime?
//	  password      String?   // bcrypt: $2a$ / $2b$ / $2y$
//	  role          Role      @default(USER)
//	  failedLogins  Int       @default(0)
//	  lockedUntil   DateTime?
//	  createdAt     DateTime  @default(now())
//	  accounts      Account[]
//	}
//
// and the Auth.js adapter's Account model (userId, type, provider,
// providerAccountId, …), whose provider "github" rows become linked
// identities. Only id and email must exist; a missing optional column (or
// Account table) is reported as a note and read as empty.

// authjsIdent is an unquoted PostgreSQL identifier as Prisma names tables
// (--table, --account-table), optionally schema-qualified.
var authjsIdent = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_$]{0,62}$`)

func importCmd(e *env) *cobra.Command {
	return group("import", "Import users from another system (an Auth.js app's database, a CSV or JSON file)",
		withSettings(importAuthJSCmd(e), scopeStore),
		withSettings(importFileCmd(e), scopeStore))
}

func importAuthJSCmd(e *env) *cobra.Command {
	var flags importFlags
	var opt authjsOptions
	cmd := &cobra.Command{
		Use:   "authjs --source-url postgres://…",
		Short: "Import the users of an Auth.js app (Prisma User and Account tables) with their passwords",
		Long: "Reads the Auth.js app's PostgreSQL database (read-only) and creates or updates Gatehouse users:\n" +
			"bcrypt password hashes are kept (people sign in with their old password, rehashed at that\n" +
			"sign-in), emailVerified, role and a running lock are carried over, and GitHub accounts become\n" +
			"links to upstream \"github\". Running it again changes only what changed in the source.\n" +
			"Keep the database password off the command line with PGPASSWORD or ~/.pgpass.",
		Example: `  gatehouse import authjs --source-url postgres://app@db.internal/app --dry-run
  gatehouse import authjs --source-url postgres://app@db.internal/app --keep-ids`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := opt.check(); err != nil {
				return err
			}
			return runImport(cmd, e, flags, "authjs", func(ctx context.Context) (rowSource, func(), error) {
				return openAuthJS(ctx, opt)
			})
		},
	}
	f := cmd.Flags()
	f.StringVar(&opt.url, "source-url", "", "the Auth.js app's PostgreSQL database (postgres://…); not Gatehouse's own DATABASE_URL")
	f.StringVar(&opt.table, "table", "User", "the users table (Prisma model User), optionally schema.table")
	f.StringVar(&opt.accountTable, "account-table", "Account", "the accounts table whose provider \"github\" rows become linked identities")
	f.DurationVar(&opt.statementTimeout, "statement-timeout", 30*time.Second, "longest time one read of the source may take")
	flags.add(cmd)
	return cmd
}

type authjsOptions struct {
	url, table, accountTable string
	statementTimeout         time.Duration
}

func (o *authjsOptions) check() error {
	if o.url == "" {
		return errors.New("--source-url is required: the Auth.js app's database, postgres://user@host/db")
	}
	if !strings.HasPrefix(o.url, "postgres://") && !strings.HasPrefix(o.url, "postgresql://") {
		return errors.New("--source-url: must be a postgres:// or postgresql:// URL")
	}
	for _, t := range []struct{ flag, v string }{{"--table", o.table}, {"--account-table", o.accountTable}} {
		if _, err := tableIdent(t.v); err != nil {
			return fmt.Errorf("%s: %w", t.flag, err)
		}
	}
	if o.statementTimeout < time.Second {
		return errors.New("--statement-timeout: at least 1s")
	}
	return nil
}

// tableIdent parses "table" or "schema.table" into an identifier that
// Sanitize quotes, so that Prisma's mixed-case "User" is the table named so.
func tableIdent(s string) (pgx.Identifier, error) {
	parts := strings.Split(s, ".")
	if len(parts) > 2 {
		return nil, fmt.Errorf("%q: want table or schema.table", s)
	}
	for _, p := range parts {
		if !authjsIdent.MatchString(p) {
			return nil, fmt.Errorf("%q: a name of letters, digits and _ (at most 63), not starting with a digit", s)
		}
	}
	return pgx.Identifier(parts), nil
}

// authjsSource streams the users table through a cursor, in a read-only
// REPEATABLE READ transaction: one snapshot for the whole run, so users and
// accounts agree even while the app keeps writing. Each FETCH is one
// statement under the statement timeout.
type authjsSource struct {
	conn     *pgx.Conn
	tx       pgx.Tx
	rows     int
	noteList []string
}

const authjsCursor = "gatehouse_import"

func openAuthJS(ctx context.Context, opt authjsOptions) (rowSource, func(), error) {
	cfg, err := pgx.ParseConfig(opt.url)
	if err != nil {
		return nil, nil, fmt.Errorf("--source-url: %s", redactURL(err.Error(), opt.url))
	}
	if cfg.ConnectTimeout == 0 {
		cfg.ConnectTimeout = 10 * time.Second
	}
	cfg.RuntimeParams["application_name"] = "gatehouse import"
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return nil, nil, fmt.Errorf("--source-url: connect: %s", oneLine(redactURL(err.Error(), opt.url)))
	}
	s := &authjsSource{conn: conn}
	closeFn := func() {
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		if s.tx != nil {
			_ = s.tx.Rollback(cctx) // read only: nothing to keep
		}
		_ = conn.Close(cctx)
	}
	if err := s.start(ctx, opt); err != nil {
		closeFn()
		return nil, nil, err
	}
	return s, closeFn, nil
}

func (s *authjsSource) start(ctx context.Context, opt authjsOptions) error {
	tx, err := s.conn.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		return fmt.Errorf("source: begin: %w", err)
	}
	s.tx = tx
	if _, err := tx.Exec(ctx, `SELECT set_config('statement_timeout', $1, true)`,
		fmt.Sprint(opt.statementTimeout.Milliseconds())); err != nil {
		return fmt.Errorf("source: set statement_timeout: %w", err)
	}
	query, err := s.query(ctx, opt)
	if err != nil {
		return err
	}
	if _, err := tx.Exec(ctx, `DECLARE `+authjsCursor+` NO SCROLL CURSOR FOR `+query); err != nil {
		return fmt.Errorf("source: read %s: %w", opt.table, err)
	}
	return nil
}

// columns returns the table's columns and their types, or nil when there
// is no such table (in the search path, or the schema named).
func (s *authjsSource) columns(ctx context.Context, table pgx.Identifier) (map[string]string, error) {
	var exists bool
	if err := s.tx.QueryRow(ctx, `SELECT to_regclass($1) IS NOT NULL`, table.Sanitize()).Scan(&exists); err != nil {
		return nil, fmt.Errorf("source: look up table %s: %w", table.Sanitize(), err)
	}
	if !exists {
		return nil, nil
	}
	rows, err := s.tx.Query(ctx, `SELECT attname, format_type(atttypid, atttypmod) FROM pg_attribute
		WHERE attrelid = to_regclass($1) AND attnum > 0 AND NOT attisdropped`, table.Sanitize())
	if err != nil {
		return nil, fmt.Errorf("source: columns of %s: %w", table.Sanitize(), err)
	}
	cols := map[string]string{}
	for rows.Next() {
		var name, typ string
		if err := rows.Scan(&name, &typ); err != nil {
			return nil, fmt.Errorf("source: columns of %s: %w", table.Sanitize(), err)
		}
		cols[name] = typ
	}
	return cols, rows.Err()
}

// query builds the SELECT over the users table from the columns it has.
// Every name in it is a quoted identifier; no value of the source or the
// command line is spliced in as text.
func (s *authjsSource) query(ctx context.Context, opt authjsOptions) (string, error) {
	table, _ := tableIdent(opt.table)
	cols, err := s.columns(ctx, table)
	if err != nil {
		return "", err
	}
	if cols == nil {
		return "", fmt.Errorf("source: no table %s (Prisma's model User; another name with --table)", table.Sanitize())
	}
	for _, c := range []string{"id", "email"} {
		if _, ok := cols[c]; !ok {
			return "", fmt.Errorf("source: table %s has no column %q", table.Sanitize(), c)
		}
	}
	col := func(name string) string { return "u." + pgx.Identifier{name}.Sanitize() }
	optional := func(name, expr, fallback, missing string) string {
		if _, ok := cols[name]; ok {
			return expr
		}
		s.noteList = append(s.noteList, fmt.Sprintf("table %s has no column %q: %s", table.Sanitize(), name, missing))
		return fallback
	}
	verified := col("emailVerified") + " IS NOT NULL"
	if cols["emailVerified"] == "boolean" {
		verified = "COALESCE(" + col("emailVerified") + ", false)"
	}
	order := col("id")
	created, ok := s.timestamp(table, cols, "createdAt", col)
	if ok {
		order = created + " NULLS LAST, " + order
	}
	locked, _ := s.timestamp(table, cols, "lockedUntil", col)
	if _, ok := cols["failedLogins"]; ok {
		s.noteList = append(s.noteList, `failedLogins is not carried over: Gatehouse counts failed sign-ins afresh (a running lock, lockedUntil, is carried)`)
	}
	github, join, err := s.githubAccounts(ctx, opt, col)
	if err != nil {
		return "", err
	}
	sel := []string{
		col("id") + "::text",
		col("email") + "::text",
		optional("name", col("name")+"::text", "NULL::text", "users are imported without a name"),
		optional("emailVerified", verified, "false", "no address is marked verified"),
		optional("password", col("password")+"::text", "NULL::text", "users are imported without a password"),
		optional("role", col("role")+"::text", "NULL::text", "new users get the role USER"),
		locked,
		created,
		github,
	}
	return "SELECT " + strings.Join(sel, ", ") + " FROM " + table.Sanitize() + " u" + join + " ORDER BY " + order, nil
}

// timestamp reads a DateTime column as timestamptz (ok), or NULL when the
// table has no such column. Prisma keeps DateTime as "timestamp(3) without
// time zone" holding UTC.
func (s *authjsSource) timestamp(table pgx.Identifier, cols map[string]string, name string, col func(string) string) (string, bool) {
	typ, ok := cols[name]
	switch {
	case !ok:
		s.noteList = append(s.noteList, fmt.Sprintf("table %s has no column %q", table.Sanitize(), name))
	case strings.HasPrefix(typ, "timestamp") && strings.HasSuffix(typ, "without time zone"):
		return col(name) + " AT TIME ZONE 'UTC'", true
	case strings.HasPrefix(typ, "timestamp"):
		return col(name), true
	default:
		s.noteList = append(s.noteList, fmt.Sprintf("column %q of %s is %s, not a timestamp: not read", name, table.Sanitize(), typ))
	}
	return "NULL::timestamptz", false
}

// githubAccounts returns the select expression listing a user's GitHub
// account IDs and the join that provides it: the accounts table grouped by
// user once (a hash join, not a subquery per user), or an empty list with a
// note when the table or its columns are missing.
func (s *authjsSource) githubAccounts(ctx context.Context, opt authjsOptions, col func(string) string) (expr, join string, err error) {
	const none = "'{}'::text[]"
	acct, _ := tableIdent(opt.accountTable)
	cols, err := s.columns(ctx, acct)
	if err != nil {
		return "", "", err
	}
	if cols == nil {
		s.noteList = append(s.noteList, fmt.Sprintf("no table %s: no GitHub accounts linked", acct.Sanitize()))
		return none, "", nil
	}
	for _, c := range []string{"userId", "provider", "providerAccountId"} {
		if _, ok := cols[c]; !ok {
			s.noteList = append(s.noteList, fmt.Sprintf("table %s has no column %q: no GitHub accounts linked", acct.Sanitize(), c))
			return none, "", nil
		}
	}
	a := func(name string) string { return pgx.Identifier{name}.Sanitize() }
	join = " LEFT JOIN (SELECT " + a("userId") + " AS user_id, array_agg(" + a("providerAccountId") + "::text ORDER BY " +
		a("providerAccountId") + "::text) AS ids FROM " + acct.Sanitize() + " WHERE " + a("provider") + " = 'github' GROUP BY " +
		a("userId") + ") gh ON gh.user_id = " + col("id")
	return "COALESCE(gh.ids, " + none + ")", join, nil
}

func (s *authjsSource) notes() []string { return s.noteList }

func (s *authjsSource) next(ctx context.Context, n int) ([]importRow, error) {
	rows, err := s.tx.Query(ctx, fmt.Sprintf("FETCH FORWARD %d FROM %s", n, authjsCursor))
	if err != nil {
		return nil, fmt.Errorf("source: read users: %w", err)
	}
	defer rows.Close()
	var out []importRow
	for rows.Next() {
		var id, email, name, pw, role *string
		var locked, created *time.Time
		r := importRow{}
		if err := rows.Scan(&id, &email, &name, &r.EmailVerified, &pw, &role, &locked, &created, &r.GitHub); err != nil {
			return nil, fmt.Errorf("source: read users: %w", err)
		}
		s.rows++
		r.Record = s.rows
		r.ID, r.Email, r.Name, r.Password, r.Role = deref(id), deref(email), deref(name), deref(pw), deref(role)
		if locked != nil {
			r.LockedUntil = *locked
		}
		if created != nil {
			r.CreatedAt = *created
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("source: read users: %w", err)
	}
	return out, nil
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}
