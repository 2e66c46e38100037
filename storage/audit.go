package storage

import (
	"context"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// AuditEvent is one entry of the audit trail: something a person, the CLI or
// the server did to an account, a client or the keys. It never carries
// secrets: no passwords, no tokens, no raw emails of unknown accounts.
type AuditEvent struct {
	// ID is unique; AppendAudit sets it (a UUIDv7) when empty.
	ID     string
	Time   time.Time
	Action string // one of the Audit… constants
	// Actor is who did it: a user ID, ActorCLI, ActorSystem, ActorAnonymous
	// or, for a client acting for itself through the admin API,
	// "client:" and its ID.
	Actor string
	// Subject is whom or what it concerns: a user ID, a client ID, a key ID,
	// or for a failed sign-in on an unknown address a keyed hash of it.
	Subject   string
	IP        string
	UserAgent string // cut to MaxAuditUserAgent bytes by ClipUserAgent
	ClientID  string
	// Detail holds short, non-secret facts (reason, session ID, new role).
	Detail map[string]string
}

// Actors that are not users.
const (
	ActorCLI    = "cli"
	ActorSystem = "system"
	// ActorAnonymous is someone not signed in (a failed sign-in, a reset request).
	ActorAnonymous = "anonymous"
)

// Audit actions.
const (
	AuditSignIn          = "sign_in"
	AuditSignInFailed    = "sign_in_failed"
	AuditLockout         = "lockout"
	AuditRegistered      = "registered"
	AuditEmailVerified   = "email_verified"
	AuditResetRequested  = "password_reset_requested"
	AuditResetCompleted  = "password_reset"
	AuditPasswordChanged = "password_changed"
	AuditEmailChanged    = "email_changed"
	AuditAccountDeleted  = "account_deleted"
	AuditSessionEnded    = "session_ended"
	AuditGrantRevoked    = "grant_revoked"
	// An upstream identity was linked to / unlinked from an account
	// (Detail: upstream, and how: sign_up, password, account_page, cli).
	AuditIdentityLinked   = "identity_linked"
	AuditIdentityUnlinked = "identity_unlinked"
	// Second factors (Detail: method — totp, passkey, recovery_codes —
	// and for a passkey its name).
	AuditFactorAdded      = "factor_added"
	AuditFactorRemoved    = "factor_removed"
	AuditRecoveryCodeUsed = "recovery_code_used"

	AuditUserCreated     = "user_created"
	AuditUserRoleChanged = "user_role_changed"
	AuditUserPasswordSet = "user_password_set"
	AuditUserDeleted     = "user_deleted"
	AuditUserUnlocked    = "user_unlocked"
	AuditUserDisabled    = "user_disabled" // Detail: sessions ended
	AuditUserEnabled     = "user_enabled"
	// An admin marked the address verified or not (Detail: to).
	AuditUserVerifiedChanged = "user_email_verified_changed"
	AuditMFAReset            = "mfa_reset"
	AuditClientCreated       = "client_created"
	AuditClientDeleted       = "client_deleted"
	AuditClientUpdated       = "client_updated"
	AuditClientSecretRotated = "client_secret_rotated"
	AuditKeysRotated         = "keys_rotated"
	// One event per import run (gatehouse import), not per user (Detail:
	// source and the counts).
	AuditUsersImported = "users_imported"
	// Device flow (RFC 8628): a person approved or denied a device's
	// request on the /device page (ClientID the device's app; Detail: the
	// scopes).
	AuditDeviceApproved = "device_approved"
	AuditDeviceDenied   = "device_denied"
)

// AuditFilter selects events for ListAudit. Zero fields select everything.
type AuditFilter struct {
	// Subjects: only events about one of these (none: any subject). An
	// address is recorded under its account's ID once it has one and under
	// its pseudonym before, so looking one up takes both.
	Subjects []string
	// Actions: only events of one of these actions (none: any action).
	Actions []string
	// Actor: only events by this actor ("": anyone).
	Actor string
	Since time.Time // only events at or after Since
	// Before is the ID of the last event of the previous page: the list
	// continues with the events older than it. An unknown ID is ErrNotFound.
	Before string
	Limit  int // at most this many; <= 0 means no limit
}

// AuditLog is the audit trail part of Store.
type AuditLog interface {
	// AppendAudit stores e, setting e.ID when it is empty.
	AppendAudit(ctx context.Context, e *AuditEvent) error
	// ListAudit returns the matching events newest first (by Time, then ID
	// descending, so pages never skip or repeat an event).
	ListAudit(ctx context.Context, f AuditFilter) ([]AuditEvent, error)
	// DeleteAuditBefore removes events older than t and returns how many.
	DeleteAuditBefore(ctx context.Context, t time.Time) (int64, error)
}

// MaxAuditUserAgent bounds the User-Agent kept with an event: the header is
// the client's to choose, and the trail must not grow by a client's whim.
const MaxAuditUserAgent = 256

// ClipUserAgent makes a client-sent User-Agent safe to store: valid UTF-8
// (PostgreSQL refuses anything else, so a crafted header would keep an
// attacker's events out of the trail), no control characters, and at most
// MaxAuditUserAgent bytes, cut on a rune boundary.
func ClipUserAgent(ua string) string {
	return clipText(ua, MaxAuditUserAgent)
}

// clipText cleans s (cleanText) and cuts it to at most n bytes on a rune
// boundary.
func clipText(s string, n int) string {
	s = cleanText(s)
	if len(s) <= n {
		return s
	}
	s = s[:n]
	for len(s) > 0 && !utf8.ValidString(s) {
		s = s[:len(s)-1]
	}
	return s
}

// cleanText replaces invalid UTF-8 and drops control characters.
func cleanText(s string) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	return strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return -1
		}
		return r
	}, s)
}

// Clean makes every text field of e storable whatever a client sent: valid
// UTF-8 without control characters, the user agent clipped. Backends call it
// in AppendAudit, so no caller can forget.
func (e *AuditEvent) Clean() {
	for _, f := range []*string{&e.Action, &e.Actor, &e.Subject, &e.IP, &e.ClientID} {
		*f = cleanText(*f)
	}
	e.UserAgent = ClipUserAgent(e.UserAgent)
	for k, v := range e.Detail {
		if ck, cv := cleanText(k), cleanText(v); ck != k || cv != v {
			delete(e.Detail, k)
			e.Detail[ck] = cv
		}
	}
}
