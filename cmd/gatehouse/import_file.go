package main

import (
	"bufio"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
)

// The file source: users exported from any system as CSV or JSON, with the
// Auth.js User table's column names (so `\copy "User" TO 'users.csv' CSV
// HEADER` in psql is already a valid file):
//
//	id             the user's ID in the source (optional; required with --keep-ids)
//	email          required
//	name           display name
//	emailVerified  a timestamp, true/false (t/f, 1/0), or empty: not verified
//	password       bcrypt hash ($2a$/$2b$/$2y$), or empty: no password
//	role           USER, ADMIN or another upper-case role; empty: USER for new users
//	lockedUntil    timestamp of a running sign-in lock, or empty
//	createdAt      timestamp, or empty: now
//	githubId       GitHub numeric user ID(s), separated by spaces: linked to upstream "github"
//
// Timestamps are RFC 3339 (2025-01-31T12:00:00Z) or PostgreSQL's text form
// (2025-01-31 12:00:00.123, read as UTC without an offset). JSON is an array
// of objects with these keys; values may be strings, numbers (id, githubId),
// booleans (emailVerified), null, or for githubId an array. Other columns
// are ignored with a note.

// fileColumns are the columns a file may have.
var fileColumns = []string{"id", "email", "name", "emailVerified", "password", "role", "lockedUntil", "createdAt", "githubId"}

func importFileCmd(e *env) *cobra.Command {
	var flags importFlags
	var format string
	cmd := &cobra.Command{
		Use:   "file PATH",
		Short: "Import users from a CSV or JSON file (the Auth.js User columns; - reads stdin)",
		Long: "Reads users from a CSV file with a header row, or a JSON array of objects, with the columns\n" +
			"of the Auth.js User table: id, email, name, emailVerified, password (bcrypt), role,\n" +
			"lockedUntil, createdAt, and githubId for a GitHub account to link. The same rules as\n" +
			"`gatehouse import authjs` apply; PATH - reads stdin.",
		Example: `  gatehouse import file users.csv --dry-run
  gatehouse import file users.json --keep-ids --json`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			path := args[0]
			f, err := fileFormat(path, format)
			if err != nil {
				return err
			}
			return runImport(cmd, e, flags, "file", func(context.Context) (rowSource, func(), error) {
				return openImportFile(path, f, e.stdin)
			})
		},
	}
	cmd.Flags().StringVar(&format, "format", "", "csv or json; empty means from the file name's extension")
	flags.add(cmd)
	return cmd
}

// fileFormat is --format, or else the file name's extension.
func fileFormat(path, format string) (string, error) {
	if format == "csv" || format == "json" {
		return format, nil
	}
	if format != "" {
		return "", fmt.Errorf("--format %q: use csv or json", format)
	}
	if ext := strings.ToLower(filepath.Ext(path)); ext == ".csv" || ext == ".json" {
		return ext[1:], nil
	}
	return "", fmt.Errorf("%s: say --format csv or --format json", path)
}

func openImportFile(path, format string, stdin io.Reader) (rowSource, func(), error) {
	var r io.Reader = stdin
	closeFn := func() {}
	if path != "-" {
		f, err := os.Open(path)
		if err != nil {
			return nil, nil, err
		}
		r, closeFn = f, func() { f.Close() }
	}
	br := bufio.NewReader(r)
	var src rowSource
	var err error
	if format == "csv" {
		src, err = newCSVSource(br)
	} else {
		src, err = newJSONSource(br)
	}
	if err != nil {
		closeFn()
		return nil, nil, fmt.Errorf("%s: %w", path, err)
	}
	return src, closeFn, nil
}

// fileRows holds what both file formats share: the position and the notes
// about columns that are not read.
type fileRows struct {
	records  int
	unknown  map[string]bool
	noteList []string
}

func (f *fileRows) notes() []string {
	for _, k := range slices.Sorted(maps.Keys(f.unknown)) {
		f.noteList = append(f.noteList, fmt.Sprintf("column %q is not read (known: %s)", k, strings.Join(fileColumns, ", ")))
	}
	f.unknown = nil
	return f.noteList
}

// row builds an importRow from a record's values. A value that does not
// parse marks the row invalid, to be skipped and reported.
func (f *fileRows) row(values map[string]string) importRow {
	f.records++
	r := importRow{Record: f.records, ID: values["id"], Email: values["email"], Name: values["name"],
		Password: values["password"], Role: values["role"], GitHub: strings.Fields(values["githubId"])}
	for k := range values {
		if !slices.Contains(fileColumns, k) {
			if f.unknown == nil {
				f.unknown = map[string]bool{}
			}
			f.unknown[k] = true
		}
	}
	var err error
	if r.EmailVerified, err = parseVerified(values["emailVerified"]); err != nil {
		r.Invalid = skipInvalidValue
	}
	if r.LockedUntil, err = parseFileTime(values["lockedUntil"]); err != nil {
		r.Invalid = skipInvalidValue
	}
	if r.CreatedAt, err = parseFileTime(values["createdAt"]); err != nil {
		r.Invalid = skipInvalidValue
	}
	return r
}

// parseVerified reads emailVerified: a timestamp (when the address was
// verified, as Auth.js keeps it) or a boolean; empty is false.
func parseVerified(s string) (bool, error) {
	if s == "" {
		return false, nil
	}
	if b, err := strconv.ParseBool(s); err == nil {
		return b, nil
	}
	if _, err := parseFileTime(s); err != nil {
		return false, fmt.Errorf("emailVerified %q: neither a timestamp nor true/false", s)
	}
	return true, nil
}

// fileTimeLayouts: RFC 3339, and PostgreSQL's text output of timestamp
// with and without time zone (psql \copy, CSV exports).
var fileTimeLayouts = []string{
	time.RFC3339Nano,
	"2006-01-02 15:04:05.999999999Z07:00",
	"2006-01-02 15:04:05.999999999Z07",
	"2006-01-02 15:04:05.999999999",
	"2006-01-02T15:04:05.999999999",
}

func parseFileTime(s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	for _, layout := range fileTimeLayouts {
		if t, err := time.Parse(layout, s); err == nil {
			return t.UTC(), nil
		}
	}
	return time.Time{}, fmt.Errorf("%q is not a timestamp", s)
}

// csvSource reads a CSV file with a header row.
type csvSource struct {
	fileRows
	r      *csv.Reader
	header []string
}

func newCSVSource(r io.Reader) (*csvSource, error) {
	cr := csv.NewReader(r)
	header, err := cr.Read()
	if errors.Is(err, io.EOF) {
		return nil, errors.New("empty file: want a header row (id,email,name,…)")
	}
	if err != nil {
		return nil, fmt.Errorf("read the header row: %w", err)
	}
	seen := map[string]bool{}
	for i, h := range header {
		h = strings.TrimSpace(strings.TrimPrefix(h, "\ufeff")) // a BOM from a spreadsheet
		if seen[h] {
			return nil, fmt.Errorf("column %q appears twice in the header row", h)
		}
		seen[h] = true
		header[i] = h
	}
	if !seen["email"] {
		return nil, fmt.Errorf("no email column in the header row %q", strings.Join(header, ","))
	}
	return &csvSource{r: cr, header: header}, nil
}

func (s *csvSource) next(ctx context.Context, n int) ([]importRow, error) {
	var out []importRow
	for len(out) < n {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		rec, err := s.r.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("read CSV: %w", err)
		}
		values := make(map[string]string, len(rec))
		for i, v := range rec {
			values[s.header[i]] = strings.TrimSpace(v)
		}
		out = append(out, s.row(values))
	}
	return out, nil
}

// jsonSource reads a JSON array of objects, one object at a time.
type jsonSource struct {
	fileRows
	dec  *json.Decoder
	done bool
}

func newJSONSource(r io.Reader) (*jsonSource, error) {
	dec := json.NewDecoder(r)
	tok, err := dec.Token()
	if err != nil {
		return nil, fmt.Errorf("read JSON: %w", err)
	}
	if d, ok := tok.(json.Delim); !ok || d != '[' {
		return nil, errors.New("want a JSON array of user objects")
	}
	return &jsonSource{dec: dec}, nil
}

func (s *jsonSource) next(ctx context.Context, n int) ([]importRow, error) {
	var out []importRow
	for len(out) < n && !s.done {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		if !s.dec.More() {
			if _, err := s.dec.Token(); err != nil { // the closing ]
				return nil, fmt.Errorf("read JSON: %w", err)
			}
			s.done = true
			break
		}
		var obj map[string]json.RawMessage
		if err := s.dec.Decode(&obj); err != nil {
			return nil, fmt.Errorf("read JSON: user object %d: %w", s.records+1, err)
		}
		values := make(map[string]string, len(obj))
		invalid := false
		for k, raw := range obj {
			v, err := jsonText(raw, k == "githubId")
			if err != nil {
				invalid = true
			}
			values[k] = strings.TrimSpace(v)
		}
		r := s.row(values)
		if invalid {
			r.Invalid = skipInvalidValue
		}
		out = append(out, r)
	}
	return out, nil
}

// jsonText is a JSON value as the text a CSV cell would hold: a string as
// it is, a number or boolean as written, null as empty; a list (githubId
// only) as its items separated by spaces.
func jsonText(raw json.RawMessage, list bool) (string, error) {
	var v any
	dec := json.NewDecoder(strings.NewReader(string(raw)))
	dec.UseNumber()
	if err := dec.Decode(&v); err != nil {
		return "", err
	}
	switch x := v.(type) {
	case nil:
		return "", nil
	case string:
		return x, nil
	case json.Number:
		return x.String(), nil
	case bool:
		return strconv.FormatBool(x), nil
	case []any:
		if !list {
			break
		}
		items := make([]string, 0, len(x))
		for _, item := range x {
			switch id := item.(type) {
			case string:
				items = append(items, id)
			case json.Number:
				items = append(items, id.String())
			default:
				return "", fmt.Errorf("%s: want a list of IDs", raw)
			}
		}
		return strings.Join(items, " "), nil
	}
	return "", fmt.Errorf("unexpected JSON value %s", raw)
}
