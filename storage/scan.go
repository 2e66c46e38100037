package storage

import "strings"

// RowScanner is what the backends' single-row results share (database/sql's
// *Row, pgx's Row).
type RowScanner interface {
	Scan(dest ...any) error
}

// ScanJoined scans one row of a join whose columns are those of several
// scan functions, in their order: each function is run against a recorder
// that keeps its destinations, then the row is scanned into all of them at
// once. A backend's scan functions thus stay the one place each type's
// columns are read; they must do nothing after Scan but return.
func ScanJoined(row RowScanner, scans ...func(RowScanner) error) error {
	var rec destRecorder
	for _, scan := range scans {
		if err := scan(&rec); err != nil {
			return err
		}
	}
	return row.Scan(rec...)
}

// destRecorder is a RowScanner that records the destinations it is given.
type destRecorder []any

func (r *destRecorder) Scan(dest ...any) error {
	*r = append(*r, dest...)
	return nil
}

// Qualify prefixes each column of a backend's column list (as its scan
// functions read them) with a table alias, so a join can select the same
// list from several tables: "id, COALESCE(user_id, ”)" with alias "u"
// becomes "u.id, COALESCE(u.user_id, ”)". A column is a bare name or a
// COALESCE of one; anything else panics, at package initialisation where
// the lists are qualified, not on a request.
func Qualify(alias string, columns string) string {
	parts := strings.Split(columns, ",")
	out := make([]string, 0, len(parts))
	for i := 0; i < len(parts); i++ {
		col := strings.TrimSpace(parts[i])
		if rest, ok := strings.CutPrefix(col, "COALESCE("); ok {
			// The COALESCE's default is the next comma-separated part; it
			// must be a literal, since a column there would stay unqualified.
			if i+1 >= len(parts) || !isColumnName(rest) || !isLiteralArg(parts[i+1]) {
				panic("storage.Qualify: cannot qualify " + col)
			}
			i++
			out = append(out, "COALESCE("+alias+"."+rest+","+parts[i])
			continue
		}
		if !isColumnName(col) {
			panic("storage.Qualify: cannot qualify " + col)
		}
		out = append(out, alias+"."+col)
	}
	return strings.Join(out, ", ")
}

func isColumnName(s string) bool {
	if s == "" {
		return false
	}
	for _, r := range s {
		if (r < 'a' || r > 'z') && r != '_' && (r < '0' || r > '9') {
			return false
		}
	}
	return true
}

// isLiteralArg reports whether s is a quoted string or a number followed by
// the closing parenthesis of a call: the default of a COALESCE.
func isLiteralArg(s string) bool {
	lit, ok := strings.CutSuffix(strings.TrimSpace(s), ")")
	if !ok || lit == "" {
		return false
	}
	if len(lit) >= 2 && lit[0] == '\'' && lit[len(lit)-1] == '\'' {
		return !strings.Contains(lit[1:len(lit)-1], "'")
	}
	for _, r := range lit {
		if r < '0' || r > '9' {
			return false
		}
	}
	return true
}
