package clientkeys

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/gatehouse-id/gatehouse/op/backchannel"
)

// Fetch policy for jwks_uri documents.
const (
	// DefaultTimeout bounds one fetch (connect, TLS, answer, body).
	DefaultTimeout = 5 * time.Second
	// cacheTTL is how long a fetched set is used without asking again.
	cacheTTL = 5 * time.Minute
	// refetchEvery is how often a set may be fetched again before its TTL
	// because an assertion named a kid it lacks (the client rotated keys):
	// anyone can send assertions naming any kid, so this bounds the fetches
	// a stranger can cause.
	refetchEvery = time.Minute
	// retryFailedEvery is how soon a URI that failed, with nothing cached,
	// is tried again: a dead host is not asked on every request.
	retryFailedEvery = 10 * time.Second
	// maxStale is how long a set fetched before keeps verifying while its
	// URI fails: a blip at the client's host does not lock it out, but a
	// host gone for good does not keep old keys alive for ever.
	maxStale = time.Hour
	// maxEntries bounds the cache (one entry per jwks_uri in use).
	maxEntries = 1024
)

// FetcherConfig configures a Fetcher; zero values get defaults.
type FetcherConfig struct {
	// Client makes the requests; default backchannel.NewHTTPClient(Timeout):
	// bounded in time and header size, never following a redirect.
	Client  *http.Client
	Timeout time.Duration
	Now     func() time.Time
}

// Fetcher fetches and caches the JWKS documents clients publish at their
// jwks_uri. It is safe for concurrent use; one URI is fetched by one caller
// at a time, and the others wait for its result.
type Fetcher struct {
	client *http.Client
	now    func() time.Time

	mu      sync.Mutex
	entries map[string]*entry
}

type entry struct {
	mu        sync.Mutex // held while fetching
	keys      *jose.JSONWebKeySet
	fetched   time.Time // when keys were fetched
	attempted time.Time // the last fetch, successful or not
	err       error     // why the last fetch failed, nil if it did not
}

// NewFetcher returns a Fetcher.
func NewFetcher(cfg FetcherConfig) *Fetcher {
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultTimeout
	}
	if cfg.Client == nil {
		cfg.Client = backchannel.NewHTTPClient(cfg.Timeout)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Fetcher{client: cfg.Client, now: cfg.Now, entries: make(map[string]*entry)}
}

// Keys returns the key set published at uri. A cached set younger than
// the TTL is used as is, unless kid is not "" and the set has no such key:
// then the document is fetched again, at most once a minute. When a fetch
// fails, a set fetched within the last hour is used instead; the error
// says why there is no set at all.
func (f *Fetcher) Keys(ctx context.Context, uri, kid string) (*jose.JSONWebKeySet, error) {
	e := f.entry(uri)
	e.mu.Lock()
	defer e.mu.Unlock()
	now := f.now()
	if e.keys != nil && now.Before(e.fetched.Add(cacheTTL)) && (kid == "" || len(e.keys.Key(kid)) > 0) {
		return e.keys, nil
	}
	wait := refetchEvery
	if e.keys == nil {
		wait = retryFailedEvery
	}
	if !e.attempted.IsZero() && now.Before(e.attempted.Add(wait)) {
		return e.usable(now)
	}
	e.attempted = now
	// The fetch outlives the request that caused it: a caller who hangs up
	// must not leave a failure cached for the client's other requests.
	keys, err := f.fetch(context.WithoutCancel(ctx), uri)
	if err != nil {
		e.err = err
		return e.usable(now)
	}
	e.keys, e.fetched, e.err = keys, now, nil
	return keys, nil
}

// usable is the cached set if it is not too stale, else why there is none.
func (e *entry) usable(now time.Time) (*jose.JSONWebKeySet, error) {
	if e.keys != nil && now.Before(e.fetched.Add(maxStale)) {
		return e.keys, nil
	}
	if e.err != nil {
		return nil, e.err
	}
	return nil, errors.New("no usable JWKS")
}

func (f *Fetcher) entry(uri string) *entry {
	f.mu.Lock()
	defer f.mu.Unlock()
	e, ok := f.entries[uri]
	if !ok {
		if len(f.entries) >= maxEntries {
			for k := range f.entries { // drop any one: a refetch costs little
				delete(f.entries, k)
				break
			}
		}
		e = &entry{}
		f.entries[uri] = e
	}
	return e
}

// fetch GETs uri (which must pass ValidateURI: registration checked it,
// and this is the last line) and parses the answer leniently: a client's
// JWKS may also publish keys for other purposes.
func (f *Fetcher) fetch(ctx context.Context, uri string) (*jose.JSONWebKeySet, error) {
	if err := ValidateURI(uri); err != nil {
		return nil, fmt.Errorf("jwks_uri: %w", err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, uri, nil)
	if err != nil {
		return nil, fmt.Errorf("fetch JWKS: %w", err)
	}
	req.Header.Set("Accept", "application/jwk-set+json, application/json")
	req.Header.Set("User-Agent", "Gatehouse-JWKS-Fetch/1")
	resp, err := f.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("fetch JWKS: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("fetch JWKS: HTTP status %d", resp.StatusCode)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, MaxJWKSBytes+1))
	if err != nil {
		return nil, fmt.Errorf("fetch JWKS: read body: %w", err)
	}
	if len(body) > MaxJWKSBytes {
		return nil, fmt.Errorf("fetch JWKS: document larger than %d KiB", MaxJWKSBytes>>10)
	}
	set, err := ParseJWKS(body, false)
	if err != nil {
		return nil, fmt.Errorf("fetched JWKS: %w", err)
	}
	return set, nil
}
