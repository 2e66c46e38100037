package admin

import (
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-id/gatehouse/storage"
)

func TestRegistrationTokens(t *testing.T) {
	forBackends(t, func(t *testing.T, f *fixture) {
		_, _, err := f.svc.CreateRegistrationToken(f.ctx, CLI, RegistrationTokenSpec{ExpiresIn: -time.Hour})
		expectCode(t, "negative expiry", err, CodeInvalid, "expires")
		_, _, err = f.svc.CreateRegistrationToken(f.ctx, CLI, RegistrationTokenSpec{Uses: -1})
		expectCode(t, "negative uses", err, CodeInvalid, "uses")

		tok, secret, err := f.svc.CreateRegistrationToken(f.ctx, CLI, RegistrationTokenSpec{ExpiresIn: time.Hour, Uses: 2})
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(tok.ID, "rt-") || len(secret) < 40 || tok.MaxUses != 2 || tok.ExpiresAt == nil ||
			!tok.ExpiresAt.Equal(f.clock.now().Add(time.Hour)) {
			t.Errorf("created %+v with a token of %d characters", tok, len(secret))
		}
		ev := f.oneEvent(tok.ID, storage.AuditRegistrationTokenCreated, storage.ActorCLI)
		if ev.Detail["uses"] != "2" || ev.Detail["expires_at"] == "" || strings.Contains(strings.Join([]string{ev.Detail["uses"], ev.Detail["expires_at"]}, ""), secret) {
			t.Errorf("creation event detail %v", ev.Detail)
		}
		// The store keeps only the hash: the token is found by it.
		if _, err := f.store.UseRegistrationToken(f.ctx, HashRegistrationToken(secret), f.clock.now()); err != nil {
			t.Errorf("token not usable by its hash: %v", err)
		}

		f.clock.advance(time.Second) // listed after the first
		open, _, err := f.svc.CreateRegistrationToken(f.ctx, CLI, RegistrationTokenSpec{})
		if err != nil || open.ExpiresAt != nil || open.MaxUses != 0 || !open.Usable(f.clock.now().Add(1000*time.Hour)) {
			t.Fatalf("token without limits: %+v, %v", open, err)
		}
		list, err := f.svc.ListRegistrationTokens(f.ctx, CLI)
		if err != nil || len(list) != 2 || list[0].ID != tok.ID || list[0].Uses != 1 {
			t.Fatalf("list: %+v, %v", list, err)
		}
		if list[0].Usable(f.clock.now().Add(time.Hour - time.Second)) {
			t.Error("a token is usable at its expiry")
		}

		if err := f.svc.RevokeRegistrationToken(f.ctx, admin, tok.ID); err != nil {
			t.Fatal(err)
		}
		f.oneEvent(tok.ID, storage.AuditRegistrationTokenRevoked, admin.UserID)
		expectCode(t, "revoke again", f.svc.RevokeRegistrationToken(f.ctx, CLI, tok.ID), CodeNotFound, "")
		if list, _ := f.svc.ListRegistrationTokens(f.ctx, CLI); len(list) != 1 || list[0].ID != open.ID {
			t.Errorf("after revocation: %+v", list)
		}
	})
}

// TestRegistrationActor: the registration endpoint's changes are recorded
// under registration (or registration:<token id>).
func TestRegistrationActor(t *testing.T) {
	forBackends(t, func(t *testing.T, f *fixture) {
		for _, c := range []struct{ token, want string }{{"", "registration"}, {"rt-1", "registration:rt-1"}} {
			a := Registration(c.token)
			a.IP = "192.0.2.9"
			cl, _, err := f.svc.CreateClient(f.ctx, a, ClientSpec{RedirectURIs: []string{"https://app.example/cb"}, RequireConsent: true})
			if err != nil {
				t.Fatal(err)
			}
			if ev := f.oneEvent(cl.ID, storage.AuditClientCreated, c.want); ev.IP != "192.0.2.9" {
				t.Errorf("event IP %q", ev.IP)
			}
		}
	})
}
