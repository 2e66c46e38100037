package main

import (
	"context"
	"errors"
	"fmt"
	"github.com/gatehouse-id/gatehouse/internal/admin"
	"io"
	"maps"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
	"unicode"

	"github.com/spf13/cobra"

	"github.com/gatehouse-id/gatehouse/login/password"
	"github.com/gatehouse-id/gatehouse/login/policy"
	"github.com/gatehouse-id/gatehouse/storage"
)

// gatehouse import: users from an Auth.js app's database (import_authjs.go)
// or a CSV/JSON file (import_file.go). Both sources yield importRows; the
// checks, the batching and the report are here, the rules of what a row
// changes in the store are storage.ApplyImport's.

// githubUpstream is the upstream ID Gatehouse gives GitHub sign-in
// (GATEHOUSE_GITHUB_CLIENT_ID); imported GitHub accounts are linked under it.
const githubUpstream = "github"

// Skip reasons decided before a row reaches the store (the store adds
// storage.ImportIDCollision and storage.ImportEmailHasOtherID).
const (
	skipInvalidEmail   = "invalid_email"
	skipDuplicateEmail = "duplicate_email"
	skipDuplicateID    = "duplicate_id"
	skipInvalidID      = "invalid_id"
	skipUnknownHash    = "unknown_hash_format"
	// skipHashCost: a bcrypt cost above password.MaxImportBcryptCost, whose
	// every sign-in attempt would hold a hashing slot for minutes or days.
	skipHashCost = "hash_cost_too_high"
	skipBadRole  = "bad_role"
	// skipInvalidValue: a file row with a value that does not parse (a
	// timestamp, a boolean).
	skipInvalidValue = "invalid_value"
)

// importRow is one user as a source describes them, before any check.
type importRow struct {
	// Record is the row's position in the source (1-based), for the report
	// when the row has no ID.
	Record        int
	ID            string
	Email         string
	Name          string
	EmailVerified bool
	Password      string // the hash; "" for none
	Role          string // "" for none
	LockedUntil   time.Time
	CreatedAt     time.Time
	// GitHub are the user's GitHub account IDs (Auth.js Account rows with
	// provider "github": providerAccountId, GitHub's numeric user ID).
	GitHub []string
	// Invalid is set by a source for a row it could not read completely
	// (a file's unparseable timestamp): the row is skipped with this reason.
	Invalid string
}

// ref names the row in the report: its ID, else its position.
func (r *importRow) ref() string {
	if r.ID != "" {
		return r.ID
	}
	return "record " + strconv.Itoa(r.Record)
}

// rowSource streams a source's rows.
type rowSource interface {
	// next returns up to n rows; none at the end.
	next(ctx context.Context, n int) ([]importRow, error)
	// notes says what the source could not read (a missing column or table).
	notes() []string
}

// importFlags are the flags every import command takes.
type importFlags struct {
	dryRun, keepIDs, asJSON bool
	batch                   int
}

func (f *importFlags) add(cmd *cobra.Command) {
	fs := cmd.Flags()
	fs.BoolVar(&f.dryRun, "dry-run", false, "report what the import would do without writing anything")
	fs.BoolVar(&f.keepIDs, "keep-ids", false, "make each source ID the Gatehouse user ID, so the ID token's sub stays what the app knows")
	fs.BoolVar(&f.asJSON, "json", false, "print the report as JSON")
	fs.IntVar(&f.batch, "batch-size", 500, "users written per transaction (1–10000)")
}

func (f *importFlags) check() error {
	if f.batch < 1 || f.batch > 10000 {
		return fmt.Errorf("--batch-size %d: use 1 to 10000", f.batch)
	}
	return nil
}

// importReport is what an import run did, as printed and audited.
type importReport struct {
	Source    string `json:"source"`
	DryRun    bool   `json:"dry_run"`
	KeepIDs   bool   `json:"keep_ids"`
	Rows      int    `json:"rows"`
	Created   int    `json:"created"`
	Updated   int    `json:"updated"`
	Unchanged int    `json:"unchanged"`
	Skipped   int    `json:"skipped"`
	// SkippedByReason counts the skips per reason.
	SkippedByReason map[string]int `json:"skipped_by_reason"`
	SkippedRows     []importSkip   `json:"skipped_rows"`
	// PasswordsKept: users whose Gatehouse password was set after the last
	// import and stays, though the source's differs.
	PasswordsKept int `json:"passwords_kept"`
	LocksCarried  int `json:"locks_carried"`
	// RolesKept: users whose role was changed in Gatehouse after the last
	// import, so the source's is not applied.
	RolesKept int `json:"roles_kept"`
	// AdminsGiven: users this run gave the role ADMIN (created with it or
	// changed to it), for the operator to check.
	AdminsGiven int `json:"admins_given"`
	// GitHubLinked counts GitHub accounts linked by this run (upstream
	// "github"); GitHubLinkConflicts the ones left alone because another
	// user has them.
	GitHubLinked        int          `json:"github_linked"`
	GitHubLinkConflicts []importSkip `json:"github_link_conflicts"`
	Notes               []string     `json:"notes"`
}

// importSkip names a row of the source and what happened to it; never its
// password hash.
type importSkip struct {
	SourceID string `json:"source_id,omitempty"`
	Record   int    `json:"record"`
	Reason   string `json:"reason"`
}

// importer checks a source's rows, writes them in batches and counts.
type importer struct {
	svc   *admin.Service
	flags importFlags
	now   func() time.Time
	// seen* catch duplicates across the whole source, not just a batch:
	// the first row with an address (or ID, or GitHub account) wins.
	seenEmails, seenIDs, seenGitHub map[string]bool
	report                          importReport
}

func newImporter(svc *admin.Service, flags importFlags, source string, now func() time.Time) *importer {
	return &importer{
		svc: svc, flags: flags, now: now,
		seenEmails: map[string]bool{}, seenIDs: map[string]bool{}, seenGitHub: map[string]bool{},
		report: importReport{
			Source: source, DryRun: flags.dryRun, KeepIDs: flags.keepIDs,
			SkippedByReason: map[string]int{}, SkippedRows: []importSkip{}, GitHubLinkConflicts: []importSkip{}, Notes: []string{},
		},
	}
}

// run imports every row of src. On an error the report holds what the
// batches before it did (each batch is all or nothing).
func (im *importer) run(ctx context.Context, src rowSource) error {
	defer func() { im.report.Notes = append(im.report.Notes, src.notes()...) }()
	for {
		rows, err := src.next(ctx, im.flags.batch)
		if err != nil {
			return err
		}
		if len(rows) == 0 {
			return nil
		}
		if err := im.batch(ctx, rows); err != nil {
			return err
		}
	}
}

func (im *importer) batch(ctx context.Context, rows []importRow) error {
	users := make([]storage.ImportUser, 0, len(rows))
	refs := make([]*importRow, 0, len(rows))
	for i := range rows {
		im.report.Rows++
		u, reason := im.check(&rows[i])
		if reason != "" {
			im.skip(&rows[i], reason)
			continue
		}
		users = append(users, u)
		refs = append(refs, &rows[i])
	}
	if len(users) == 0 {
		return nil
	}
	out, err := im.svc.ImportUsers(ctx, admin.CLI, users, storage.ImportOptions{Now: im.now(), DefaultRole: "USER", DryRun: im.flags.dryRun})
	if err != nil {
		return fmt.Errorf("import a batch of %d users: %w", len(users), err)
	}
	for i, o := range out {
		im.count(refs[i], o)
	}
	return nil
}

// check turns a row into what the store imports, or says why it is skipped.
func (im *importer) check(r *importRow) (storage.ImportUser, string) {
	if r.Invalid != "" {
		return storage.ImportUser{}, r.Invalid
	}
	if im.flags.keepIDs && !validSubject(r.ID) {
		return storage.ImportUser{}, skipInvalidID
	}
	email, err := admin.CheckEmail(r.Email)
	if err != nil {
		return storage.ImportUser{}, skipInvalidEmail
	}
	if im.seenEmails[email] {
		return storage.ImportUser{}, skipDuplicateEmail
	}
	im.seenEmails[email] = true
	if r.ID != "" {
		if im.seenIDs[r.ID] {
			return storage.ImportUser{}, skipDuplicateID
		}
		im.seenIDs[r.ID] = true
	}
	if r.Password != "" {
		if err := password.CheckBcrypt(r.Password); errors.Is(err, password.ErrHashTooCostly) {
			return storage.ImportUser{}, skipHashCost
		} else if err != nil {
			return storage.ImportUser{}, skipUnknownHash
		}
	}
	role := strings.TrimSpace(r.Role)
	if role != "" && !admin.ValidRole(role) {
		return storage.ImportUser{}, skipBadRole
	}
	u := storage.ImportUser{
		SourceID: r.ID, ID: admin.NewUserID(), Email: email, Name: importName(r.Name), Role: role,
		EmailVerified: r.EmailVerified, PasswordHash: r.Password, CreatedAt: r.CreatedAt, LockedUntil: r.LockedUntil,
	}
	if im.flags.keepIDs {
		u.ID, u.MatchByID = r.ID, true
	}
	for _, sub := range r.GitHub {
		if im.seenGitHub[sub] {
			// Two source users claim one GitHub account: the first keeps it.
			im.report.GitHubLinkConflicts = append(im.report.GitHubLinkConflicts, importSkip{SourceID: r.ID, Record: r.Record, Reason: "github_account_of_another_row"})
			continue
		}
		im.seenGitHub[sub] = true
		u.Links = append(u.Links, storage.ImportLink{Upstream: githubUpstream, Subject: sub})
	}
	return u, ""
}

// validSubject: a kept ID becomes the OIDC sub, which is at most 255 ASCII
// characters (OpenID Connect Core §2); printable ones only, so that it
// shows and travels (URLs, logs, headers) as it is.
func validSubject(id string) bool {
	if id == "" || len(id) > 255 {
		return false
	}
	for i := 0; i < len(id); i++ {
		if id[i] < 0x21 || id[i] > 0x7e {
			return false
		}
	}
	return true
}

// importName is a source's display name as Gatehouse keeps names: white
// space folded, no control characters, valid UTF-8, at most
// policy.MaxNameLength characters. A name is never a reason to skip a user.
func importName(name string) string {
	name = strings.ToValidUTF8(name, "")
	name = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return ' '
		}
		return r
	}, name)
	name = policy.NormalizeName(name)
	if r := []rune(name); len(r) > policy.MaxNameLength {
		name = strings.TrimSpace(string(r[:policy.MaxNameLength]))
	}
	return name
}

func (im *importer) skip(r *importRow, reason string) {
	im.report.Skipped++
	im.report.SkippedByReason[reason]++
	im.report.SkippedRows = append(im.report.SkippedRows, importSkip{SourceID: r.ID, Record: r.Record, Reason: reason})
}

func (im *importer) count(r *importRow, o storage.ImportOutcome) {
	switch o.Result {
	case storage.ImportCreated:
		im.report.Created++
	case storage.ImportUpdated:
		im.report.Updated++
	case storage.ImportUnchanged:
		im.report.Unchanged++
	case storage.ImportSkipped:
		im.skip(r, o.Reason)
		return
	}
	if o.PasswordKept {
		im.report.PasswordsKept++
	}
	if o.LockCarried {
		im.report.LocksCarried++
	}
	if o.RoleKept {
		im.report.RolesKept++
	}
	if r.Role == "ADMIN" && (o.Result == storage.ImportCreated || slices.Contains(o.Changed, storage.ImportChangedRole)) {
		im.report.AdminsGiven++
	}
	im.report.GitHubLinked += len(o.Linked)
	for range o.LinkConflicts {
		im.report.GitHubLinkConflicts = append(im.report.GitHubLinkConflicts, importSkip{SourceID: r.ID, Record: r.Record, Reason: "github_account_linked_to_another_user"})
	}
}

// runImport opens the store, runs src through an importer and reports:
// printed, and (unless a dry run) one audit event for the run. A run cut
// short by an error still reports what its finished batches wrote.
func runImport(cmd *cobra.Command, e *env, flags importFlags, source string, open func(ctx context.Context) (rowSource, func(), error)) error {
	if err := flags.check(); err != nil {
		return err
	}
	return withAdmin(cmd, e, func(ctx context.Context, svc *admin.Service) error {
		src, closeSrc, err := open(ctx)
		if err != nil {
			return err
		}
		defer closeSrc()
		im := newImporter(svc, flags, source, e.now)
		runErr := im.run(ctx, src)
		if !flags.dryRun && im.report.Rows > 0 {
			svc.RecordImport(ctx, admin.CLI, im.report.auditDetail(runErr))
		}
		if err := im.report.print(e.stdout, flags.asJSON); err != nil {
			return err
		}
		return runErr
	})
}

// auditDetail is the run's counts for the audit trail.
func (r *importReport) auditDetail(runErr error) map[string]string {
	d := map[string]string{
		"source": r.Source, "keep_ids": strconv.FormatBool(r.KeepIDs), "rows": strconv.Itoa(r.Rows),
		"created": strconv.Itoa(r.Created), "updated": strconv.Itoa(r.Updated),
		"unchanged": strconv.Itoa(r.Unchanged), "skipped": strconv.Itoa(r.Skipped),
		"github_linked": strconv.Itoa(r.GitHubLinked), "admins_given": strconv.Itoa(r.AdminsGiven),
	}
	if runErr != nil {
		d["incomplete"] = "true"
	}
	return d
}

func (r *importReport) print(w io.Writer, asJSON bool) error {
	if asJSON {
		return printJSON(w, r)
	}
	dry := ""
	if r.DryRun {
		dry = " (dry run: nothing was written)"
	}
	fmt.Fprintf(w, "%s: %d rows read%s\n", r.Source, r.Rows, dry)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "created\t%d\n", r.Created)
	fmt.Fprintf(tw, "updated\t%d\n", r.Updated)
	fmt.Fprintf(tw, "unchanged\t%d\n", r.Unchanged)
	fmt.Fprintf(tw, "skipped\t%d\n", r.Skipped)
	for _, reason := range slices.Sorted(maps.Keys(r.SkippedByReason)) {
		fmt.Fprintf(tw, "  %s\t%d\n", reason, r.SkippedByReason[reason])
	}
	fmt.Fprintf(tw, "GitHub accounts linked (upstream %q)\t%d\n", githubUpstream, r.GitHubLinked)
	if len(r.GitHubLinkConflicts) > 0 {
		fmt.Fprintf(tw, "GitHub accounts not linked (another user has them)\t%d\n", len(r.GitHubLinkConflicts))
	}
	fmt.Fprintf(tw, "locks carried over\t%d\n", r.LocksCarried)
	if r.PasswordsKept > 0 {
		fmt.Fprintf(tw, "passwords kept (set in Gatehouse since)\t%d\n", r.PasswordsKept)
	}
	if r.RolesKept > 0 {
		fmt.Fprintf(tw, "roles kept (changed in Gatehouse since)\t%d\n", r.RolesKept)
	}
	if r.AdminsGiven > 0 {
		fmt.Fprintf(tw, "users given the role ADMIN (check them)\t%d\n", r.AdminsGiven)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if err := printSkips(w, "skipped rows:", r.SkippedRows); err != nil {
		return err
	}
	if err := printSkips(w, "GitHub accounts not linked:", r.GitHubLinkConflicts); err != nil {
		return err
	}
	for _, n := range r.Notes {
		fmt.Fprintln(w, "note: "+n)
	}
	return nil
}

// printSkips lists rows by source ID (or position) with the reason.
func printSkips(w io.Writer, title string, skips []importSkip) error {
	if len(skips) == 0 {
		return nil
	}
	fmt.Fprintln(w, title)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	for _, s := range skips {
		fmt.Fprintf(tw, "  %s\t%s\n", terminalSafe((&importRow{ID: s.SourceID, Record: s.Record}).ref()), s.Reason)
	}
	return tw.Flush()
}

// terminalSafe is a source's text as the report prints it: as it is when
// every character is printable, else quoted with escapes, so that a hostile
// source cannot send escape sequences to the operator's terminal or forge
// report lines with a newline.
func terminalSafe(s string) string {
	if strings.IndexFunc(s, func(r rune) bool { return !strconv.IsPrint(r) }) < 0 {
		return s
	}
	return strconv.Quote(s)
}
