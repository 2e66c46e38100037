package admin

import (
	"testing"
)

// TestReviewConsoleNulIsTheCallersMistake: what review 12 did for users,
// for the rest of what the console and the API pass on from a URL or a
// form: a client ID, a session ID, an upstream name, the audit filters
// and cursor with a NUL byte or invalid UTF-8 are the caller's mistake
// (not found or invalid). PostgreSQL refused them and the console and the
// API answered 500 (GET /admin/clients/%00, /admin/audit?user=%00).
func TestReviewConsoleNulIsTheCallersMistake(t *testing.T) {
	forBackends(t, func(t *testing.T, f *fixture) {
		u := f.createUser("nul@example.com")
		for _, bad := range []string{"a\x00b", "a\xffb"} {
			_, err := f.svc.GetClient(f.ctx, admin, bad)
			expectCode(t, "GetClient", err, CodeNotFound, "")
			name := "X"
			_, err = f.svc.UpdateClient(f.ctx, admin, bad, ClientUpdate{Name: &name}, "1")
			expectCode(t, "UpdateClient", err, CodeNotFound, "")
			_, _, err = f.svc.RotateSecret(f.ctx, admin, bad, "")
			expectCode(t, "RotateSecret", err, CodeNotFound, "")
			expectCode(t, "DeleteClient", f.svc.DeleteClient(f.ctx, admin, bad, ""), CodeNotFound, "")
			expectCode(t, "DeleteClient with a version", f.svc.DeleteClient(f.ctx, admin, bad, "1"), CodeNotFound, "")

			_, err = f.svc.SignOut(f.ctx, admin, u.ID, bad)
			expectCode(t, "SignOut of a session", err, CodeNotFound, "session")
			_, err = f.svc.UnlinkIdentity(f.ctx, admin, u.ID, bad)
			expectCode(t, "UnlinkIdentity", err, CodeNotFound, "upstream")

			for _, c := range []struct {
				field string
				q     AuditQuery
			}{
				{"user", AuditQuery{User: bad}}, {"user", AuditQuery{User: bad + "@example.com"}},
				{"actor", AuditQuery{Actor: bad}}, {"actor", AuditQuery{Actor: bad + "@example.com"}},
				{"cursor", AuditQuery{Cursor: bad}},
			} {
				_, err := f.svc.Audit(f.ctx, admin, c.q)
				expectCode(t, "Audit by "+c.field, err, CodeInvalid, c.field)
			}
		}
	})
}
