package storagetest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse-id/gatehouse/storage"
)

func clientTests() []namedTest {
	return []namedTest{
		{"CreateAndGet", testClientCreateAndGet},
		{"PublicClientWithoutSecret", testClientPublic},
		{"DuplicateIDConflicts", testClientDuplicateID},
		{"NotFound", testClientNotFound},
		{"List", testClientList},
		{"UpdateReplacesAllFields", testClientUpdate},
		{"RequireMFARoundTrip", testClientRequireMFA},
		{"BackchannelLogoutRoundTrip", testClientBackchannelLogout},
		{"Delete", testClientDelete},
		{"UpdateCompareAndSet", testClientCompareAndSet},
	}
}

func testClientCreateAndGet(t *testing.T, s storage.Store) {
	ctx := context.Background()
	want := newClient("c1")
	mustNot(t, "create client", s.CreateClient(ctx, want))
	got, err := s.GetClient(ctx, "c1")
	mustNot(t, "get client", err)
	assertEqual(t, "GetClient", got, want)
}

func testClientPublic(t *testing.T, s storage.Store) {
	ctx := context.Background()
	want := newClient("native")
	want.SecretHash = nil
	want.AppType, want.AuthMethod, want.AccessTokenFormat = storage.AppTypeNative, storage.AuthMethodNone, storage.AccessTokenOpaque
	want.PostLogoutRedirectURIs, want.Resources, want.AllowedScopes = nil, nil, nil
	want.RequireConsent, want.RequireMFA = false, false
	want.BackchannelLogoutURI, want.BackchannelLogoutSessionRequired, want.OfflineSurvivesLogout = "", false, false
	mustNot(t, "create client", s.CreateClient(ctx, want))
	got, err := s.GetClient(ctx, "native")
	mustNot(t, "get client", err)
	assertEqual(t, "GetClient", got, want)
}

func testClientDuplicateID(t *testing.T, s storage.Store) {
	ctx := context.Background()
	mustNot(t, "create client", s.CreateClient(ctx, newClient("c1")))
	assertErrorIs(t, "second client with the same ID", s.CreateClient(ctx, newClient("c1")), storage.ErrConflict)
}

func testClientNotFound(t *testing.T, s storage.Store) {
	ctx := context.Background()
	_, err := s.GetClient(ctx, "nobody")
	assertErrorIs(t, "GetClient", err, storage.ErrNotFound)
	assertErrorIs(t, "UpdateClient", s.UpdateClient(ctx, newClient("nobody")), storage.ErrNotFound)
	assertErrorIs(t, "DeleteClient", s.DeleteClient(ctx, "nobody"), storage.ErrNotFound)
}

func testClientList(t *testing.T, s storage.Store) {
	ctx := context.Background()
	clients, err := s.ListClients(ctx)
	mustNot(t, "list clients of an empty store", err)
	if len(clients) != 0 {
		t.Fatalf("empty store lists %d clients", len(clients))
	}
	want := []*storage.Client{newClient("b"), newClient("a"), newClient("c")}
	for _, c := range want {
		mustNot(t, "create client "+c.ID, s.CreateClient(ctx, c))
	}
	clients, err = s.ListClients(ctx)
	mustNot(t, "list clients", err)
	if len(clients) != len(want) {
		t.Fatalf("ListClients returned %d clients, want %d", len(clients), len(want))
	}
	for _, w := range want {
		i := slices.IndexFunc(clients, func(c storage.Client) bool { return c.ID == w.ID })
		if i < 0 {
			t.Errorf("ListClients lacks %s", w.ID)
			continue
		}
		assertEqual(t, "ListClients["+w.ID+"]", &clients[i], w)
	}
}

func testClientUpdate(t *testing.T, s storage.Store) {
	ctx := context.Background()
	original := newClient("c1")
	mustNot(t, "create client", s.CreateClient(ctx, original))

	update := &storage.Client{
		ID:                     "c1",
		Name:                   "Renamed",
		SecretHash:             hash("rotated secret"),
		RedirectURIs:           []string{"http://127.0.0.1/cb"},
		PostLogoutRedirectURIs: []string{"http://127.0.0.1/bye", "http://127.0.0.1/bye2"},
		AppType:                storage.AppTypeNative,
		AuthMethod:             storage.AuthMethodPost,
		GrantTypes:             []string{"client_credentials"},
		AccessTokenFormat:      storage.AccessTokenOpaque,
		RequireConsent:         false,
		RequireMFA:             false,
		Resources:              []string{"https://other.example/api"},
		AllowedScopes:          []string{"reports:write"},
		BackchannelLogoutURI:   "http://127.0.0.1:9000/logout",
		// Flipped from newClient's, so each must be written.
		BackchannelLogoutSessionRequired: false,
		OfflineSurvivesLogout:            false,
		CreatedAt:                        at(time.Hour), // must be ignored
		UpdatedAt:                        at(time.Minute),
	}
	mustNot(t, "update client", s.UpdateClient(ctx, update))

	want := *update
	want.CreatedAt = original.CreatedAt
	got, err := s.GetClient(ctx, "c1")
	mustNot(t, "get client", err)
	assertEqual(t, "after UpdateClient", got, &want)

	// Back to a public client without resources or a back-channel logout
	// URI: the secret, the resources and the URI must go, not linger.
	update.SecretHash, update.AuthMethod, update.Resources = nil, storage.AuthMethodNone, nil
	update.AllowedScopes = nil
	update.BackchannelLogoutURI = ""
	mustNot(t, "update client to public", s.UpdateClient(ctx, update))
	got, err = s.GetClient(ctx, "c1")
	mustNot(t, "get client", err)
	if len(got.SecretHash) != 0 {
		t.Errorf("SecretHash after clearing it: %x", got.SecretHash)
	}
	if len(got.Resources) != 0 {
		t.Errorf("Resources after clearing them: %q", got.Resources)
	}
	if len(got.AllowedScopes) != 0 {
		t.Errorf("AllowedScopes after clearing them: %q", got.AllowedScopes)
	}
	if got.BackchannelLogoutURI != "" {
		t.Errorf("BackchannelLogoutURI after clearing it: %q", got.BackchannelLogoutURI)
	}
}

// RequireMFA is read back as written, both ways, by Get, List and Update:
// losing it would let a client's sign-ins through with one factor.
func testClientRequireMFA(t *testing.T, s storage.Store) {
	ctx := context.Background()
	c := newClient("c1")
	c.RequireMFA = false
	mustNot(t, "create client", s.CreateClient(ctx, c))
	got, err := s.GetClient(ctx, "c1")
	mustNot(t, "get client", err)
	if got.RequireMFA {
		t.Fatal("RequireMFA is true for a client created without it")
	}
	for _, want := range []bool{true, false, true} {
		c.RequireMFA = want
		mustNot(t, "update client", s.UpdateClient(ctx, c))
		got, err := s.GetClient(ctx, "c1")
		mustNot(t, "get client", err)
		if got.RequireMFA != want {
			t.Fatalf("GetClient after UpdateClient: RequireMFA = %t, want %t", got.RequireMFA, want)
		}
		list, err := s.ListClients(ctx)
		mustNot(t, "list clients", err)
		if len(list) != 1 || list[0].RequireMFA != want {
			t.Fatalf("ListClients after UpdateClient: %+v, want one client with RequireMFA %t", list, want)
		}
	}
}

func testClientDelete(t *testing.T, s storage.Store) {
	ctx := context.Background()
	mustNot(t, "create c1", s.CreateClient(ctx, newClient("c1")))
	mustNot(t, "create c2", s.CreateClient(ctx, newClient("c2")))
	mustNot(t, "delete c1", s.DeleteClient(ctx, "c1"))
	_, err := s.GetClient(ctx, "c1")
	assertErrorIs(t, "GetClient after delete", err, storage.ErrNotFound)
	_, err = s.GetClient(ctx, "c2")
	mustNot(t, "other client survives", err)
}

// The back-channel logout registration and OfflineSurvivesLogout are read
// back as written, each independently and both ways, by Get, List and
// Update: a lost URI means apps never hear of a sign-out, a lost flag keeps
// or ends refresh tokens against the client's registration.
func testClientBackchannelLogout(t *testing.T, s storage.Store) {
	ctx := context.Background()
	c := newClient("c1")
	c.BackchannelLogoutURI, c.BackchannelLogoutSessionRequired, c.OfflineSurvivesLogout = "", false, false
	mustNot(t, "create client", s.CreateClient(ctx, c))
	steps := []struct {
		uri              string
		session, offline bool
	}{
		{"", false, false},
		{"https://rp.example/bc?tenant=1", true, false},
		{"https://rp.example/bc?tenant=1", false, true},
		{"http://127.0.0.1:8080/api/backchannel-logout", true, true},
		{"", false, false},
	}
	for i, step := range steps {
		if i > 0 {
			c.BackchannelLogoutURI, c.BackchannelLogoutSessionRequired, c.OfflineSurvivesLogout = step.uri, step.session, step.offline
			mustNot(t, "update client", s.UpdateClient(ctx, c))
		}
		check := func(what string, got *storage.Client) {
			t.Helper()
			if got.BackchannelLogoutURI != step.uri || got.BackchannelLogoutSessionRequired != step.session ||
				got.OfflineSurvivesLogout != step.offline {
				t.Errorf("step %d, %s: URI %q, session required %t, offline survives %t; want %q, %t, %t", i, what,
					got.BackchannelLogoutURI, got.BackchannelLogoutSessionRequired, got.OfflineSurvivesLogout,
					step.uri, step.session, step.offline)
			}
		}
		got, err := s.GetClient(ctx, "c1")
		mustNot(t, "get client", err)
		check("GetClient", got)
		list, err := s.ListClients(ctx)
		mustNot(t, "list clients", err)
		if len(list) != 1 {
			t.Fatalf("ListClients returned %d clients, want 1", len(list))
		}
		check("ListClients", &list[0])
	}
}

// testClientCompareAndSet: CreateClient starts at version 1, every update
// adds one; an update carrying a version is refused with ErrConflict (and
// changes nothing) unless it is still the stored one; version 0 replaces
// unconditionally; of concurrent updates from one version exactly one wins.
func testClientCompareAndSet(t *testing.T, s storage.Store) {
	ctx := context.Background()
	c := newClient("c1")
	mustNot(t, "create client", s.CreateClient(ctx, c))
	if c.Version != 1 {
		t.Fatalf("CreateClient set Version %d, want 1", c.Version)
	}
	first, second := *c, *c
	first.Name = "First"
	mustNot(t, "first update", s.UpdateClient(ctx, &first))
	if first.Version != 2 {
		t.Errorf("Version after an update = %d, want 2", first.Version)
	}
	second.Name = "Second"
	assertErrorIs(t, "update from a stale version", s.UpdateClient(ctx, &second), storage.ErrConflict)
	got, err := s.GetClient(ctx, "c1")
	mustNot(t, "get client", err)
	assertEqual(t, "after the refused update", got, &first)

	blind := *c
	blind.Version, blind.Name = 0, "Blind"
	mustNot(t, "unconditional update", s.UpdateClient(ctx, &blind))
	if blind.Version != 3 {
		t.Errorf("Version after an unconditional update = %d, want 3", blind.Version)
	}
	ghost := newClient("ghost")
	ghost.Version = 1
	assertErrorIs(t, "compare-and-set on a missing client", s.UpdateClient(ctx, ghost), storage.ErrNotFound)

	const n = 8
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			w := blind
			w.Name = fmt.Sprintf("writer %d", i)
			errs[i] = s.UpdateClient(ctx, &w)
		}()
	}
	wg.Wait()
	won := 0
	for i, err := range errs {
		switch {
		case err == nil:
			won++
		case !errors.Is(err, storage.ErrConflict):
			t.Errorf("writer %d: %v, want nil or ErrConflict", i, err)
		}
	}
	if won != 1 {
		t.Fatalf("%d concurrent updates from one version succeeded, want exactly 1", won)
	}
}
