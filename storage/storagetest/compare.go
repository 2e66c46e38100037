package storagetest

import (
	"errors"
	"fmt"
	"reflect"
	"testing"
	"time"
)

// The storage contract promises millisecond precision, so every comparison
// truncates times to the millisecond; backends may keep more.
const precision = time.Millisecond

// assertEqual fails t unless got and want (structs or pointers to structs of the
// same type) are equal field by field, where times are compared with Equal at
// millisecond precision, nil and empty slices are equal, and every non-zero time
// in got must be in UTC.
func assertEqual(t *testing.T, what string, got, want any) {
	t.Helper()
	for _, d := range diff(reflect.ValueOf(got), reflect.ValueOf(want), what) {
		t.Error(d)
	}
}

func diff(got, want reflect.Value, path string) []string {
	if got.Kind() == reflect.Pointer && got.Type() != reflect.TypeFor[*time.Time]() {
		if got.IsNil() || want.IsNil() {
			if got.IsNil() != want.IsNil() {
				return []string{fmt.Sprintf("%s: got %v, want %v", path, got, want)}
			}
			return nil
		}
		return diff(got.Elem(), want.Elem(), path)
	}
	switch v := got.Interface().(type) {
	case time.Time:
		return diffTime(path, &v, ptrTo(want.Interface().(time.Time)))
	case *time.Time:
		return diffTime(path, v, want.Interface().(*time.Time))
	}
	switch got.Kind() {
	case reflect.Struct:
		var out []string
		for i := range got.NumField() {
			out = append(out, diff(got.Field(i), want.Field(i), path+"."+got.Type().Field(i).Name)...)
		}
		return out
	case reflect.Slice:
		if got.Len() == 0 && want.Len() == 0 { // nil and empty are the same list
			return nil
		}
	}
	if !reflect.DeepEqual(got.Interface(), want.Interface()) {
		return []string{fmt.Sprintf("%s: got %#v, want %#v", path, got.Interface(), want.Interface())}
	}
	return nil
}

func diffTime(path string, got, want *time.Time) []string {
	switch {
	case got == nil && want == nil:
		return nil
	case got == nil || want == nil:
		return []string{fmt.Sprintf("%s: got %v, want %v", path, got, want)}
	case !got.Truncate(precision).Equal(want.Truncate(precision)):
		return []string{fmt.Sprintf("%s: got %v, want %v", path, *got, *want)}
	case !got.IsZero() && got.Location() != time.UTC:
		return []string{fmt.Sprintf("%s: got location %v, want UTC", path, got.Location())}
	}
	return nil
}

func ptrTo[T any](v T) *T { return &v }

// assertErrorIs fails t unless errors.Is(err, target).
func assertErrorIs(t *testing.T, what string, err, target error) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Errorf("%s: got error %v, want %v", what, err, target)
	}
}

// mustNot fails t now if err is not nil.
func mustNot(t *testing.T, what string, err error) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// assertTimeEqual compares two instants at the contract's precision.
func assertTimeEqual(t *testing.T, what string, got, want time.Time) {
	t.Helper()
	for _, d := range diffTime(what, &got, &want) {
		t.Error(d)
	}
}
