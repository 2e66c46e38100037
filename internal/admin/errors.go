package admin

import (
	"errors"
	"fmt"

	"github.com/gatehouse-id/gatehouse/storage"
)

// Code is the stable, machine-readable kind of a caller's mistake. The admin
// API maps it to an HTTP status and an RFC 9457 problem type; the CLI
// prints the message. New codes may be added; existing ones never change
// meaning.
type Code string

// The codes the service returns.
const (
	// CodeNotFound: the user, client, session or key named does not exist.
	CodeNotFound Code = "not_found"
	// CodeConflict: the request clashes with what is stored (a taken email
	// or client ID, a secret rotation of a public client).
	CodeConflict Code = "conflict"
	// CodeVersionMismatch: the expected version given with an update is no
	// longer the stored one — someone changed the row since it was read.
	// It is a conflict too: errors.Is(err, ErrConflict) holds.
	CodeVersionMismatch Code = "version_mismatch"
	// CodeInvalid: an input is not acceptable; Field names it.
	CodeInvalid Code = "invalid"
)

// Error is a mistake of the caller's: the service returns it (wrapped or
// not) for nothing else, so anything that is not an *Error is a failure of
// the service or its store (an HTTP API answers 500 or 503). Message is
// written for people and safe to show to the caller: it never holds a
// secret, and names only what the caller gave.
type Error struct {
	Code Code
	// Field is the input at fault ("email", "role", "password", "cursor",
	// "redirect_uris", "version", …), or "" when the request as a whole is.
	Field   string
	Message string
}

// Error is the message alone: messages name what they are about.
func (e *Error) Error() string { return e.Message }

// Is makes errors.Is(err, ErrNotFound) (and the others) match any Error of
// that code; a version mismatch is also a conflict.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	if !ok {
		return false
	}
	return t.Code == e.Code || (t.Code == CodeConflict && e.Code == CodeVersionMismatch)
}

// Targets for errors.Is; errors.As gives the *Error with field and message.
var (
	ErrNotFound        = &Error{Code: CodeNotFound, Message: "not found"}
	ErrConflict        = &Error{Code: CodeConflict, Message: "conflict"}
	ErrVersionMismatch = &Error{Code: CodeVersionMismatch, Message: "the version does not match"}
	ErrInvalid         = &Error{Code: CodeInvalid, Message: "invalid"}
)

func invalid(field, format string, args ...any) *Error {
	return &Error{Code: CodeInvalid, Field: field, Message: fmt.Sprintf(format, args...)}
}

func notFound(format string, args ...any) *Error {
	return &Error{Code: CodeNotFound, Message: fmt.Sprintf(format, args...)}
}

func conflict(field, format string, args ...any) *Error {
	return &Error{Code: CodeConflict, Field: field, Message: fmt.Sprintf(format, args...)}
}

// versionMismatch is the answer to an update whose expected version is stale.
func versionMismatch(what string) *Error {
	return &Error{Code: CodeVersionMismatch, Field: "version",
		Message: what + " was changed since that version was read; read it again and retry"}
}

// storeErr turns the store's "not found" into the caller's ErrNotFound with
// msg, and wraps anything else as a failure of ours.
func storeErr(err error, msg, doing string) error {
	if errors.Is(err, storage.ErrNotFound) {
		return notFound("%s", msg)
	}
	return fmt.Errorf("%s: %w", doing, err)
}
