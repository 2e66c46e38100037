package postgres_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse-id/gatehouse/storage"
	"github.com/gatehouse-id/gatehouse/storage/postgres"
	"github.com/gatehouse-id/gatehouse/storage/postgres/pgtest"
	"github.com/gatehouse-id/gatehouse/storage/storagetest"
)

func open(t *testing.T, url string) *postgres.Store {
	t.Helper()
	s, err := postgres.Open(context.Background(), url)
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	return s
}

func TestConformance(t *testing.T) {
	pgtest.URL(t) // skip (or fail under CI) once, not in every subtest, without a server
	storagetest.Run(t, func(t *testing.T) storage.Store { return open(t, pgtest.URL(t)) })
}

// TestConcurrentOpensMigrateOnce is several processes starting together against
// one database: they take turns migrating and all end up on the same version.
func TestConcurrentOpensMigrateOnce(t *testing.T) {
	url := pgtest.URL(t)
	const n = 4
	stores := make([]*postgres.Store, n)
	errs := make([]error, n)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			stores[i], errs[i] = postgres.Open(context.Background(), url)
		}()
	}
	close(start)
	wg.Wait()
	for i, s := range stores {
		if errs[i] != nil {
			t.Fatalf("open #%d: %v", i, errs[i])
		}
		t.Cleanup(func() { s.Close() })
	}

	ctx := context.Background()
	want, err := stores[0].MigrationVersion(ctx)
	if err != nil || want < 1 {
		t.Fatalf("MigrationVersion = %d, %v; want >= 1", want, err)
	}
	for i, s := range stores[1:] {
		if v, err := s.MigrationVersion(ctx); err != nil || v != want {
			t.Errorf("store #%d: MigrationVersion = %d, %v; want %d", i+1, v, err, want)
		}
	}
	if err := stores[0].CreateUser(ctx, &storage.User{ID: "u1", Email: "u1@example.com"}); err != nil {
		t.Fatalf("create user: %v", err)
	}
	if _, err := stores[n-1].GetUser(ctx, "u1"); err != nil {
		t.Errorf("another store does not see the user: %v", err)
	}
}

// TestWithLockAcrossStores checks the lock excludes another connection pool,
// the way it excludes another process.
func TestWithLockAcrossStores(t *testing.T) {
	url := pgtest.URL(t)
	first, second := open(t, url), open(t, url)
	ctx := context.Background()
	ran, err := first.WithLock(ctx, "job", func(ctx context.Context) error {
		ran, err := second.WithLock(ctx, "job", func(context.Context) error {
			t.Error("second store ran fn while the first held the lock")
			return nil
		})
		if ran || err != nil {
			t.Errorf("second store's WithLock: ran=%v err=%v; want ran=false", ran, err)
		}
		return nil
	})
	if !ran || err != nil {
		t.Fatalf("first store's WithLock: ran=%v err=%v", ran, err)
	}
	ran, err = second.WithLock(ctx, "job", func(context.Context) error { return nil })
	if !ran || err != nil {
		t.Errorf("second store's WithLock after release: ran=%v err=%v; want ran", ran, err)
	}
}

// TestWithLockReleasesAfterCancel checks that a caller whose context ends while
// fn runs still releases the lock.
func TestWithLockReleasesAfterCancel(t *testing.T) {
	s := open(t, pgtest.URL(t))
	ctx, cancel := context.WithCancel(context.Background())
	ran, err := s.WithLock(ctx, "job", func(ctx context.Context) error {
		cancel()
		return ctx.Err()
	})
	if !ran || !errors.Is(err, context.Canceled) {
		t.Fatalf("WithLock: ran=%v err=%v; want ran and context.Canceled", ran, err)
	}
	ran, err = s.WithLock(context.Background(), "job", func(context.Context) error { return nil })
	if !ran || err != nil {
		t.Errorf("WithLock after a cancelled holder: ran=%v err=%v; want ran", ran, err)
	}
}

func TestOpenUnreachableFailsFast(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	start := time.Now()
	// Port 1 on localhost refuses connections.
	s, err := postgres.Open(ctx, "postgres://postgres@127.0.0.1:1/test?sslmode=disable")
	if err == nil {
		s.Close()
		t.Fatal("Open against a closed port succeeded")
	}
	if elapsed := time.Since(start); elapsed > 4*time.Second {
		t.Errorf("Open took %v to fail", elapsed)
	}
}
