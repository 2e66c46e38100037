package main

import (
	"context"
	"database/sql"
	"fmt"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/jackc/pgx/v5"
	_ "modernc.org/sqlite"
)

// TestAuthorizeFloodCannotGrowTheStore sends 5,000 /authorize requests from
// one address, every parameter just under its cap, while the same address
// signs in: the store grows by less than 2 MB (a pending request is sealed
// into the sign-in URL, never stored) and every sign-in works during and
// after the flood.
func TestAuthorizeFloodCannotGrowTheStore(t *testing.T) {
	if testing.Short() {
		t.Skip("floods the server with 5,000 requests")
	}
	const requests, workers, maxGrowth = 5000, 8, 2 << 20
	for _, backend := range backends {
		t.Run(backend, func(t *testing.T) {
			ts := startServer(t, backend, nil)
			app := ts.createClient("--name", "App", "--redirect-uri", redirectA)
			ts.createUser("dave@example.com", testPassword)
			r := newRP(t, ts, app)
			size := storeSize(t, ts, backend)
			before := size()

			flood := r.authURL().url
			u, _ := url.Parse(flood)
			q := u.Query()
			q.Set("state", strings.Repeat("s", 2<<10-1))
			q.Set("nonce", strings.Repeat("n", 511))
			q.Set("login_hint", strings.Repeat("h", 319))
			q.Set("scope", "openid email "+strings.Repeat("x", 2<<10-13))
			u.RawQuery = q.Encode()
			flood = u.String()

			noFollow := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
			var sent, accepted atomic.Int64
			var firstBad atomic.Value
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			var wg sync.WaitGroup
			for range workers {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for ctx.Err() == nil && sent.Add(1) <= requests {
						resp, err := noFollow.Get(flood)
						if err != nil {
							firstBad.CompareAndSwap(nil, err.Error())
							continue
						}
						resp.Body.Close()
						if loc := resp.Header.Get("Location"); resp.StatusCode == http.StatusFound && strings.Contains(loc, "/login?authRequestID=") {
							accepted.Add(1)
						} else {
							firstBad.CompareAndSwap(nil, fmt.Sprintf("status %d location %q", resp.StatusCode, loc))
						}
					}
				}()
			}
			signIns := 0
			for sent.Load() < requests { // sign in while the flood runs
				ar, code := r.signIn(newBrowser(t, ts.issuer), "dave@example.com", testPassword)
				r.exchange(ar, code)
				signIns++
			}
			wg.Wait()
			ar, code := r.signIn(newBrowser(t, ts.issuer), "dave@example.com", testPassword) // and after it
			r.exchange(ar, code)
			signIns++

			if v := firstBad.Load(); v != nil {
				t.Errorf("a flood request was not sent on to sign-in: %v", v)
			}
			after := size()
			growth := after - before
			t.Logf("flood[%s]: %d /authorize requests accepted, %d sign-ins during and after, store %d → %d bytes (growth %d)",
				backend, accepted.Load(), signIns, before, after, growth)
			fmt.Printf("flood[%s]: authorize=%d sign-ins=%d store-growth=%d bytes\n", backend, accepted.Load(), signIns, growth)
			if accepted.Load() != requests {
				t.Errorf("%d of %d flood requests accepted", accepted.Load(), requests)
			}
			if growth >= maxGrowth {
				t.Errorf("the store grew by %d bytes under the flood, want < %d", growth, maxGrowth)
			}
		})
	}
}

// storeSize returns a function measuring the bytes the store occupies: the
// SQLite database's pages in use, or the PostgreSQL tables (with indexes and
// TOAST) of the test's schema.
func storeSize(t *testing.T, ts *testServer, backend string) func() int64 {
	t.Helper()
	if backend == "sqlite" {
		// The database's logical size, read through SQLite itself: the WAL
		// file is a reused journal (up to 4 MB before a checkpoint by
		// default) whose size says nothing about how much is stored.
		db, err := sql.Open("sqlite", filepath.Join(ts.env["GATEHOUSE_DATA_DIR"], "gatehouse.db"))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		return func() int64 {
			var pages, pageSize, free int64
			for q, v := range map[string]*int64{"PRAGMA page_count": &pages, "PRAGMA page_size": &pageSize, "PRAGMA freelist_count": &free} {
				if err := db.QueryRow(q).Scan(v); err != nil {
					t.Fatal(err)
				}
			}
			return (pages - free) * pageSize
		}
	}
	conn, err := pgx.Connect(context.Background(), ts.env["DATABASE_URL"])
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return func() int64 {
		var n int64
		err := conn.QueryRow(context.Background(), `SELECT coalesce(sum(pg_total_relation_size(c.oid)), 0)::bigint
			FROM pg_class c JOIN pg_namespace ns ON ns.oid = c.relnamespace
			WHERE ns.nspname = current_schema() AND c.relkind = 'r'`).Scan(&n)
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
}
