package storagetest

import (
	"context"
	"testing"
	"time"

	"github.com/gatehouse-id/gatehouse/storage"
)

func consentTests() []namedTest {
	return []namedTest{{"SaveGetReplace", testConsent}}
}

func testConsent(t *testing.T, s storage.Store) {
	ctx := context.Background()
	seedStore(t, s)
	_, err := s.GetConsent(ctx, "alice", "web")
	assertErrorIs(t, "GetConsent before any", err, storage.ErrNotFound)

	first := &storage.Consent{UserID: "alice", ClientID: "web", Scopes: []string{"openid", "email"}, GrantedAt: t0()}
	mustNot(t, "save consent", s.SaveConsent(ctx, first))
	got, err := s.GetConsent(ctx, "alice", "web")
	mustNot(t, "get consent", err)
	assertEqual(t, "GetConsent", got, first)

	second := &storage.Consent{UserID: "alice", ClientID: "web", Scopes: []string{"openid", "profile"}, GrantedAt: at(time.Hour)}
	mustNot(t, "replace consent", s.SaveConsent(ctx, second))
	got, err = s.GetConsent(ctx, "alice", "web")
	mustNot(t, "get replaced consent", err)
	assertEqual(t, "GetConsent after replace", got, second)

	_, err = s.GetConsent(ctx, "alice", "spa")
	assertErrorIs(t, "GetConsent for another client", err, storage.ErrNotFound)
	_, err = s.GetConsent(ctx, "bob", "web")
	assertErrorIs(t, "GetConsent for another user", err, storage.ErrNotFound)
}
