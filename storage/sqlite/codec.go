package sqlite

import (
	"database/sql"
	"encoding/json"
	"fmt"
	"time"
)

// SQLite has no time or array types, so the schema stores times as INTEGER unix
// milliseconds (UTC, matching the storage contract's precision) and string lists
// as JSON text. The helpers below are the only place that knows the encoding.

// millis encodes a time for a NOT NULL column.
func millis(t time.Time) int64 { return t.UnixMilli() }

// optMillis encodes a time for a nullable column: the zero time is NULL.
func optMillis(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t.UnixMilli()
}

// ptrMillis encodes an optional time for a nullable column: nil is NULL.
func ptrMillis(t *time.Time) any {
	if t == nil {
		return nil
	}
	return t.UnixMilli()
}

// nullIfEmpty stores "" as NULL, for nullable foreign keys.
func nullIfEmpty(s string) any {
	if s == "" {
		return nil
	}
	return s
}

// jsonList encodes a string list; nil and empty both become "[]".
func jsonList(list []string) (string, error) {
	if list == nil {
		list = []string{}
	}
	b, err := json.Marshal(list)
	if err != nil {
		return "", fmt.Errorf("encode list: %w", err)
	}
	return string(b), nil
}

// timeCol scans an INTEGER unix-ms column into a UTC time; NULL gives the zero time.
type timeCol struct{ dst *time.Time }

func (c timeCol) Scan(src any) error {
	switch v := src.(type) {
	case nil:
		*c.dst = time.Time{}
	case int64:
		*c.dst = time.UnixMilli(v).UTC()
	default:
		return fmt.Errorf("scan time: unexpected %T", src)
	}
	return nil
}

// timePtrCol scans a nullable INTEGER unix-ms column; NULL gives nil.
type timePtrCol struct{ dst **time.Time }

func (c timePtrCol) Scan(src any) error {
	switch v := src.(type) {
	case nil:
		*c.dst = nil
	case int64:
		t := time.UnixMilli(v).UTC()
		*c.dst = &t
	default:
		return fmt.Errorf("scan time: unexpected %T", src)
	}
	return nil
}

// listCol scans a JSON text column into a string list.
type listCol struct{ dst *[]string }

func (c listCol) Scan(src any) error {
	var raw []byte
	switch v := src.(type) {
	case nil:
		*c.dst = nil
		return nil
	case string:
		raw = []byte(v)
	case []byte:
		raw = v
	default:
		return fmt.Errorf("scan list: unexpected %T", src)
	}
	var list []string
	if err := json.Unmarshal(raw, &list); err != nil {
		return fmt.Errorf("scan list: %w", err)
	}
	*c.dst = list
	return nil
}

// stringCol scans a nullable TEXT column; NULL gives "".
type stringCol struct{ dst *string }

func (c stringCol) Scan(src any) error {
	var ns sql.NullString
	if err := ns.Scan(src); err != nil {
		return err
	}
	*c.dst = ns.String
	return nil
}

// int64PtrCol scans a nullable INTEGER column; NULL gives nil. Being a
// column type, not a check after Scan, it works inside storage.ScanJoined.
type int64PtrCol struct{ dst **int64 }

func (c int64PtrCol) Scan(src any) error {
	var n sql.NullInt64
	if err := n.Scan(src); err != nil {
		return err
	}
	*c.dst = nil
	if n.Valid {
		*c.dst = &n.Int64
	}
	return nil
}

// rowScanner is the Scan method shared by *sql.Row and *sql.Rows.
type rowScanner interface {
	Scan(dest ...any) error
}

// optBytes stores an empty byte slice as NULL, for optional hashes.
func optBytes(b []byte) any {
	if len(b) == 0 {
		return nil
	}
	return b
}

// stored is t as the store keeps it: UTC, truncated to the millisecond.
func stored(t time.Time) time.Time { return time.UnixMilli(t.UnixMilli()).UTC() }
