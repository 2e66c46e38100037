package admin

import (
	"context"

	"github.com/google/uuid"

	"github.com/gatehouse-id/gatehouse/storage"
)

// Moving users in (`gatehouse import`): the rules for each row are the
// store's (storage.ApplyImport, one transaction per batch); what an
// imported row must satisfy is the same as for CreateUser, checked here.

// CheckEmail normalises raw and applies the rule every new account meets
// (the registration page's), or says why not.
func CheckEmail(raw string) (string, error) { return checkEmail(raw) }

// NewUserID returns a new user ID: a UUIDv7, ordered by creation in indexes.
func NewUserID() string { return uuid.Must(uuid.NewV7()).String() }

// ImportUsers applies one batch of imported users in one transaction and
// reports each row's outcome; opt.DryRun rolls it back. The run is audited
// once, by RecordImport, not per row.
func (s *Service) ImportUsers(ctx context.Context, a Actor, users []storage.ImportUser, opt storage.ImportOptions) ([]storage.ImportOutcome, error) {
	if err := begin(a); err != nil {
		return nil, err
	}
	return s.store.ImportUsers(ctx, users, opt)
}

// RecordImport audits a finished import run with its counts.
func (s *Service) RecordImport(ctx context.Context, a Actor, detail map[string]string) {
	s.audit(ctx, a, storage.AuditEvent{Action: storage.AuditUsersImported, Detail: detail})
}
