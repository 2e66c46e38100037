package storage

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
