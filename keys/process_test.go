package keys

import (
	"context"
	"path/filepath"
	"sync"
	"testing"

	"github.com/gatehouse-id/gatehouse/storage"
	"github.com/gatehouse-id/gatehouse/storage/sqlite"
)

// openShared opens n Store instances on one database file. Each has its own
// in-process lock, like separate processes sharing a database.
func openShared(t *testing.T, n int) []storage.Store {
	t.Helper()
	path := filepath.Join(t.TempDir(), "db.sqlite")
	stores := make([]storage.Store, n)
	for i := range stores {
		s, err := sqlite.Open(context.Background(), path)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		stores[i] = s
	}
	return stores
}

func TestInitLosesCreateRaceToAnotherProcess(t *testing.T) {
	stores := openShared(t, 2)
	cfg := Config{Algorithm: "ES256"}
	winner := newTestManager(t, stores[0], cfg)

	// The loser saw no keys, then the winner created them all before the
	// loser's first insert: the store's one-active/one-next-per-algorithm
	// constraint rejects the loser's keys and it must adopt the winner's.
	hooked := &hookStore{Store: stores[1]}
	hooked.beforeCreate = func() {
		hooked.beforeCreate = nil
		mustInit(t, winner)
	}
	loser := newTestManager(t, hooked, cfg)
	mustInit(t, loser)

	assertComplete(t, stores[0])
	for _, alg := range algorithms {
		if loser.ActiveFor(alg).ID != winner.ActiveFor(alg).ID {
			t.Fatalf("the loser did not adopt the winner's active %s key", alg)
		}
	}
	signAndVerify(t, loser, winner)
}

func TestConcurrentInitAcrossProcesses(t *testing.T) {
	const n = 4
	stores := openShared(t, n)
	managers := make([]*Manager, n)
	for i := range managers {
		managers[i] = newTestManager(t, stores[i], Config{Algorithm: "ES256"})
	}
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i, m := range managers {
		wg.Go(func() { errs[i] = m.Init(context.Background()) })
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("Init %d: %v", i, err)
		}
	}
	assertComplete(t, stores[0])
	for _, m := range managers[1:] {
		if m.Active().ID != managers[0].Active().ID {
			t.Fatal("managers disagree on the active key")
		}
	}
}
