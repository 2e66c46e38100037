package admin

import (
	"slices"
	"testing"
	"time"

	"github.com/gatehouse-id/gatehouse/storage"
)

// TestAudit: the trail read through the service, filtered by user (by
// address, taking in the address's pseudonym, or by ID), by actor (by
// address or as recorded), by action and period, a page at a time.
func TestAudit(t *testing.T) {
	forBackends(t, func(t *testing.T, f *fixture) {
		alice := f.createUser("alice@example.com")
		f.clock.advance(time.Minute)
		bob := f.createUser("bob@example.com")
		f.clock.advance(time.Minute)
		if _, err := f.svc.SetRole(f.ctx, admin, bob.ID, "BILLING", ""); err != nil {
			t.Fatal(err)
		}
		// An attempt on an address without an account, recorded under its pseudonym.
		ghost := storage.AuditEvent{Time: f.clock.now(), Action: storage.AuditSignInFailed, Actor: storage.ActorAnonymous,
			Subject: "email:" + f.svc.emails.Sum("ghost@example.com")}
		if err := f.store.AppendAudit(f.ctx, &ghost); err != nil {
			t.Fatal(err)
		}
		actions := func(q AuditQuery) []string {
			t.Helper()
			page, err := f.svc.Audit(f.ctx, admin, q)
			if err != nil {
				t.Fatalf("Audit(%+v): %v", q, err)
			}
			var out []string
			for _, e := range page.Items {
				out = append(out, e.Action+":"+e.Subject)
			}
			return out
		}
		want := func(what string, got []string, want ...string) {
			t.Helper()
			if !slices.Equal(got, want) {
				t.Errorf("%s: got %v, want %v", what, got, want)
			}
		}
		want("bob by address", actions(AuditQuery{User: "Bob@Example.com"}), "user_role_changed:"+bob.ID, "user_created:"+bob.ID)
		want("bob by ID", actions(AuditQuery{User: bob.ID}), "user_role_changed:"+bob.ID, "user_created:"+bob.ID)
		want("an address without an account", actions(AuditQuery{User: "ghost@example.com"}), "sign_in_failed:"+ghost.Subject)
		want("by the admin", actions(AuditQuery{Actor: "admin-user"}), "user_role_changed:"+bob.ID)
		want("by the CLI, created", actions(AuditQuery{Actor: storage.ActorCLI, Actions: []string{storage.AuditUserCreated}}),
			"user_created:"+bob.ID, "user_created:"+alice.ID)
		want("by an address without an account", actions(AuditQuery{Actor: "nobody@example.com"}))
		want("since", actions(AuditQuery{Since: f.clock.now().Add(-90 * time.Second)}), "sign_in_failed:"+ghost.Subject,
			"user_role_changed:"+bob.ID, "user_created:"+bob.ID)

		// Pages of one, each event once, newest first.
		var seen []string
		q := AuditQuery{Limit: 1}
		for range 10 {
			page, err := f.svc.Audit(f.ctx, admin, q)
			if err != nil {
				t.Fatal(err)
			}
			for _, e := range page.Items {
				seen = append(seen, e.ID)
			}
			if page.NextCursor == "" {
				break
			}
			q.Cursor = page.NextCursor
		}
		if len(seen) != 4 {
			t.Errorf("paged through %d events, want 4", len(seen))
		}

		_, err := f.svc.Audit(f.ctx, admin, AuditQuery{Actions: []string{"drop_table"}})
		expectCode(t, "unknown action", err, CodeInvalid, "action")
		_, err = f.svc.Audit(f.ctx, admin, AuditQuery{Cursor: "no-such-event"})
		expectCode(t, "unknown cursor", err, CodeInvalid, "cursor")
		_, err = f.svc.Audit(f.ctx, admin, AuditQuery{Limit: MaxPageSize + 1})
		expectCode(t, "page too large", err, CodeInvalid, "limit")
		_, err = f.svc.Audit(f.ctx, Actor{}, AuditQuery{})
		if err == nil {
			t.Error("Audit without an actor succeeded")
		}
	})
}

type forgetful struct{ forgotten []string }

func (c *forgetful) ForgetClient(id string) { c.forgotten = append(c.forgotten, id) }

// TestClientCacheForgets: every change to a client tells the server's
// cache, so a rotated secret or a deleted client stops working at once.
func TestClientCacheForgets(t *testing.T) {
	forBackends(t, func(t *testing.T, f *fixture) {
		cache := &forgetful{}
		f.svc.clients = cache
		if _, _, err := f.svc.CreateClient(f.ctx, admin, ClientSpec{ID: "shop", RedirectURIs: []string{"https://shop.example/cb"}}); err != nil {
			t.Fatal(err)
		}
		name := "Shop"
		if _, err := f.svc.UpdateClient(f.ctx, admin, "shop", ClientUpdate{Name: &name}, ""); err != nil {
			t.Fatal(err)
		}
		if _, err := f.svc.UpdateClient(f.ctx, admin, "shop", ClientUpdate{Name: &name}, ""); err != nil { // no change
			t.Fatal(err)
		}
		if _, _, err := f.svc.RotateSecret(f.ctx, admin, "shop", ""); err != nil {
			t.Fatal(err)
		}
		if err := f.svc.DeleteClient(f.ctx, admin, "shop", ""); err != nil {
			t.Fatal(err)
		}
		if want := []string{"shop", "shop", "shop"}; !slices.Equal(cache.forgotten, want) {
			t.Errorf("forgotten %v, want %v (update, rotate, delete)", cache.forgotten, want)
		}
	})
}
