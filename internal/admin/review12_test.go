package admin

import (
	"encoding/base64"
	"errors"
	"testing"
)

// An ID, address, search or cursor with a NUL byte is the caller's mistake:
// PostgreSQL refuses NUL in text and failed the query, which the admin API
// answered 500 (and logged as a server error) before (review of issue 12).
func TestReview12NulIsTheCallersMistake(t *testing.T) {
	forBackends(t, func(t *testing.T, f *fixture) {
		u := f.createUser("nul@example.com")
		wantCode := func(what string, err error, code Code) {
			t.Helper()
			var ae *Error
			if !errors.As(err, &ae) || ae.Code != code {
				t.Errorf("%s: %v, want an admin error %s", what, err, code)
			}
		}
		_, err := f.svc.GetUser(f.ctx, admin, "a\x00b")
		wantCode("GetUser", err, CodeNotFound)
		_, err = f.svc.SetRole(f.ctx, admin, "a\x00b", "ADMIN", "")
		wantCode("SetRole", err, CodeNotFound)
		wantCode("DeleteUser", f.svc.DeleteUser(f.ctx, admin, "\x00", "1"), CodeNotFound)
		_, err = f.svc.UserByEmail(f.ctx, admin, "nul\x00@example.com")
		wantCode("UserByEmail", err, CodeNotFound)
		wantCode("Unlock", f.svc.Unlock(f.ctx, admin, "nul\x00@example.com"), CodeInvalid)
		for _, q := range []UserQuery{
			{Email: "nul\x00@example.com"},
			{Search: "\x00"},
			{Cursor: base64.RawURLEncoding.EncodeToString([]byte(`{"e":"a\u0000","i":"x"}`))},
		} {
			_, err := f.svc.ListUsers(f.ctx, admin, q)
			wantCode("ListUsers "+q.Email+q.Search+q.Cursor, err, CodeInvalid)
		}
		if got, err := f.svc.GetUser(f.ctx, admin, u.ID); err != nil || got.Email != "nul@example.com" {
			t.Errorf("the user itself: %+v, %v", got, err)
		}
	})
}
