package admin

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/gatehouse-id/gatehouse/login"
	"github.com/gatehouse-id/gatehouse/storage"
)

// AuditQuery selects audit events for Audit. Zero fields select
// everything.
type AuditQuery struct {
	// User keeps the events about one person: an email address (the
	// account's events and the attempts on the address while it had no
	// account) or a user ID.
	User string
	// Actions keeps the events of these actions (storage.Audit…).
	Actions []string
	// Actor keeps the events by one actor: an email address or user ID,
	// or storage.ActorCLI, ActorSystem, ActorAnonymous, "client:" + ID.
	Actor string
	Since time.Time
	// Limit is the page size: 0 for DefaultPageSize, at most MaxPageSize.
	Limit int
	// Cursor continues a listing: the NextCursor of the previous page.
	Cursor string
}

// AuditPage is one page of events, newest first.
type AuditPage struct {
	Items      []storage.AuditEvent
	NextCursor string
}

// AuditActions are the actions the trail records, for a filter's choices.
func AuditActions() []string {
	return []string{
		storage.AuditSignIn, storage.AuditSignInFailed, storage.AuditLockout, storage.AuditRegistered,
		storage.AuditEmailVerified, storage.AuditResetRequested, storage.AuditResetCompleted,
		storage.AuditPasswordChanged, storage.AuditEmailChanged, storage.AuditAccountDeleted,
		storage.AuditSessionEnded, storage.AuditGrantRevoked, storage.AuditIdentityLinked,
		storage.AuditIdentityUnlinked, storage.AuditFactorAdded, storage.AuditFactorRemoved,
		storage.AuditRecoveryCodeUsed, storage.AuditUserCreated, storage.AuditUserRoleChanged,
		storage.AuditUserPasswordSet, storage.AuditUserDeleted, storage.AuditUserUnlocked,
		storage.AuditUserDisabled, storage.AuditUserEnabled, storage.AuditUserVerifiedChanged,
		storage.AuditMFAReset, storage.AuditClientCreated, storage.AuditClientDeleted,
		storage.AuditClientUpdated, storage.AuditClientSecretRotated, storage.AuditKeysRotated,
		storage.AuditUsersImported, storage.AuditDeviceApproved, storage.AuditDeviceDenied,
	}
}

// Audit reads the audit trail, newest first, a page at a time. Reading
// the trail is not itself audited (no read is).
func (s *Service) Audit(ctx context.Context, a Actor, q AuditQuery) (*AuditPage, error) {
	if err := begin(a); err != nil {
		return nil, err
	}
	limit, err := pageSize(q.Limit)
	if err != nil {
		return nil, err
	}
	for _, in := range []struct{ field, value string }{{"user", q.User}, {"actor", q.Actor}, {"cursor", q.Cursor}} {
		if !storable(in.value) { // PostgreSQL refuses NUL and invalid UTF-8 in text
			return nil, invalid(in.field, "the %s contains characters that are not allowed", in.field)
		}
	}
	f := storage.AuditFilter{Since: q.Since, Before: q.Cursor, Limit: limit + 1}
	for _, act := range q.Actions {
		if !slices.Contains(AuditActions(), act) {
			return nil, invalid("action", "%q is not an audit action", act)
		}
	}
	f.Actions = q.Actions
	if user := strings.TrimSpace(q.User); user != "" {
		if f.Subjects, err = s.auditSubjects(ctx, user); err != nil {
			return nil, err
		}
	}
	if actor := strings.TrimSpace(q.Actor); actor != "" {
		if f.Actor, err = s.auditActor(ctx, actor); err != nil {
			return nil, err
		}
	}
	list, err := s.store.ListAudit(ctx, f)
	if errors.Is(err, storage.ErrNotFound) {
		return nil, invalid("cursor", "the cursor names no event (it may have expired); start again from the first page")
	}
	if err != nil {
		return nil, fmt.Errorf("list audit events: %w", err)
	}
	page := &AuditPage{Items: list}
	if len(list) > limit {
		page.Items = list[:limit]
		page.NextCursor = list[limit-1].ID
	}
	return page, nil
}

// pageSize checks a requested page size (0: the default).
func pageSize(n int) (int, error) {
	switch {
	case n == 0:
		return DefaultPageSize, nil
	case n < 0 || n > MaxPageSize:
		return 0, invalid("limit", "the page size must be between 1 and %d", MaxPageSize)
	}
	return n, nil
}

// auditSubjects are the subjects that stand for a user given as an
// address (its pseudonym, and its account's ID when it has one) or an ID.
func (s *Service) auditSubjects(ctx context.Context, user string) ([]string, error) {
	if !strings.Contains(user, "@") {
		return []string{user}, nil
	}
	email := login.NormalizeEmail(user)
	subjects := []string{login.AuditEmailSubject(s.emails, email)}
	u, err := s.store.GetUserByEmail(ctx, email)
	switch {
	case err == nil:
		subjects = append(subjects, u.ID)
	case !errors.Is(err, storage.ErrNotFound):
		return nil, fmt.Errorf("load user: %w", err)
	}
	return subjects, nil
}

// auditActor is the recorded actor for one given as an address (the
// account's ID; an address without an account acted as nobody, so it
// selects nothing) or as recorded.
func (s *Service) auditActor(ctx context.Context, actor string) (string, error) {
	if !strings.Contains(actor, "@") {
		return actor, nil
	}
	u, err := s.store.GetUserByEmail(ctx, login.NormalizeEmail(actor))
	switch {
	case err == nil:
		return u.ID, nil
	case errors.Is(err, storage.ErrNotFound):
		return "email-without-account:" + actor, nil // matches no event
	default:
		return "", fmt.Errorf("load user: %w", err)
	}
}
