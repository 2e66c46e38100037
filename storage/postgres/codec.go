package postgres

import (
	"fmt"
	"time"
)

// pgx returns timestamptz values in the local time zone; the storage contract
// promises UTC, so every time column is scanned through these wrappers.

// timeCol scans a timestamptz column into a UTC time; NULL gives the zero time.
type timeCol struct{ dst *time.Time }

func (c timeCol) Scan(src any) error {
	switch v := src.(type) {
	case nil:
		*c.dst = time.Time{}
	case time.Time:
		*c.dst = v.UTC()
	default:
		return fmt.Errorf("scan time: unexpected %T", src)
	}
	return nil
}

// timePtrCol scans a nullable timestamptz column; NULL gives nil.
type timePtrCol struct{ dst **time.Time }

func (c timePtrCol) Scan(src any) error {
	switch v := src.(type) {
	case nil:
		*c.dst = nil
	case time.Time:
		t := v.UTC()
		*c.dst = &t
	default:
		return fmt.Errorf("scan time: unexpected %T", src)
	}
	return nil
}

// optTime encodes a time for a nullable column: the zero time is NULL.
func optTime(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}

// nullIfEmpty stores "" as NULL, for nullable foreign keys.
func nullIfEmpty(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

// list makes a nil list encode as an empty array: pgx encodes a nil slice as
// NULL, which the NOT NULL array columns reject.
func list(l []string) []string {
	if l == nil {
		return []string{}
	}
	return l
}

// optBytes stores an empty byte slice as NULL, for optional hashes.
func optBytes(b []byte) []byte {
	if len(b) == 0 {
		return nil
	}
	return b
}

// rowScanner is the Scan method shared by pgx.Row and pgx.Rows.
type rowScanner interface {
	Scan(dest ...any) error
}

// stored is t as the store keeps it: UTC, truncated to the microsecond as pgx
// encodes it.
func stored(t time.Time) time.Time { return t.Truncate(time.Microsecond).UTC() }
