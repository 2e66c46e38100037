package main

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"fmt"
	"os/exec"
	"regexp"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/crypto/argon2"

	"github.com/gatehouse-id/gatehouse/login/password"
)

// reference is one raw rate of the machine, measured without any server.
type reference struct {
	name  string
	rates []float64 // one per run
	unit  string
	note  string
}

// spin runs f on every CPU for d and returns the calls per second.
func spin(ctx context.Context, d time.Duration, f func()) float64 {
	var n atomic.Int64
	var stop atomic.Bool
	timer := time.AfterFunc(d, func() { stop.Store(true) })
	defer timer.Stop()
	var wg sync.WaitGroup
	start := time.Now()
	for range runtime.GOMAXPROCS(0) {
		wg.Go(func() {
			for !stop.Load() && ctx.Err() == nil {
				f()
				n.Add(1)
			}
		})
	}
	wg.Wait()
	return float64(n.Load()) / time.Since(start).Seconds()
}

// signatureRefs measures Go's RS256 (RSA 2048), ES256 (P-256) and EdDSA
// (Ed25519) signatures of a token-sized payload, on every CPU.
func signatureRefs(ctx context.Context, cfg config) ([]reference, error) {
	payload := make([]byte, 400)
	rand.Read(payload)
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, err
	}
	ecKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	_, edKey, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, err
	}
	signers := []struct {
		name string
		sign func()
	}{
		{"RS256 signatures (RSA 2048, Go)", func() {
			h := sha256.Sum256(payload)
			if _, err := rsa.SignPKCS1v15(nil, rsaKey, crypto.SHA256, h[:]); err != nil {
				panic(err)
			}
		}},
		{"ES256 signatures (P-256, Go)", func() {
			h := sha256.Sum256(payload)
			if _, err := ecdsa.SignASN1(rand.Reader, ecKey, h[:]); err != nil {
				panic(err)
			}
		}},
		{"EdDSA signatures (Ed25519, Go)", func() { ed25519.Sign(edKey, payload) }},
	}
	var refs []reference
	for _, s := range signers {
		r := reference{name: s.name, unit: "/s", note: fmt.Sprintf("%d goroutines", runtime.GOMAXPROCS(0))}
		for range cfg.runs {
			r.rates = append(r.rates, spin(ctx, cfg.refDuration(), s.sign))
		}
		refs = append(refs, r)
	}
	return refs, ctx.Err()
}

// argon2Ref measures argon2id at Gatehouse's default parameters on every CPU:
// the most sign-ins per second the machine could check.
func argon2Ref(ctx context.Context, cfg config) reference {
	salt := make([]byte, 16)
	rand.Read(salt)
	r := reference{
		name: fmt.Sprintf("argon2id hashes (m=%d KiB, t=%d, p=%d, Gatehouse's defaults)",
			password.DefaultArgon2Memory, password.DefaultArgon2Time, password.DefaultArgon2Threads),
		unit: "/s", note: fmt.Sprintf("%d goroutines", runtime.GOMAXPROCS(0)),
	}
	for range cfg.runs {
		r.rates = append(r.rates, spin(ctx, max(cfg.refDuration(), 2*time.Second), func() {
			argon2.IDKey([]byte(benchPassword), salt, password.DefaultArgon2Time, password.DefaultArgon2Memory, password.DefaultArgon2Threads, 32)
		}))
	}
	return r
}

var tpsLine = regexp.MustCompile(`(?m)^tps = ([0-9.]+)`)

// pgbenchRef runs pgbench's simple-update transactions (-N: one UPDATE,
// one SELECT, one INSERT per transaction, each commit durable) with
// prepared statements on the scratch database, as many clients as the
// request scenarios use.
func pgbenchRef(ctx context.Context, cfg config, pg *pgScratch) (reference, error) {
	r := reference{name: "pgbench -N TPS (PostgreSQL " + pg.version + ")", unit: " TPS",
		note: fmt.Sprintf("-M prepared -c %d -j 2, scale %d", cfg.conc, cfg.pgbenchScale)}
	bin, err := exec.LookPath("pgbench")
	if err != nil {
		return r, skip("no pgbench on PATH")
	}
	if out, err := exec.CommandContext(ctx, bin, "-i", "-q", "-s", strconv.Itoa(cfg.pgbenchScale), pg.url).CombinedOutput(); err != nil {
		return r, fmt.Errorf("pgbench -i: %w: %s", err, out)
	}
	// The load just written would be checkpointed during the first run.
	if err := pg.checkpoint(ctx); err != nil {
		return r, err
	}
	bench := func(d time.Duration) (float64, error) {
		// Whole seconds; at least 3: every client connects and prepares
		// its statements first.
		secs := max(3, int(d.Round(time.Second)/time.Second))
		out, err := exec.CommandContext(ctx, bin, "-n", "-N", "-M", "prepared", "-c", strconv.Itoa(cfg.conc), "-j", "2",
			"-T", strconv.Itoa(secs), pg.url).CombinedOutput()
		if err != nil {
			return 0, fmt.Errorf("pgbench: %w: %s", err, out)
		}
		m := tpsLine.FindSubmatch(out)
		if m == nil {
			return 0, fmt.Errorf("pgbench printed no tps: %s", out)
		}
		return strconv.ParseFloat(string(m[1]), 64)
	}
	if _, err := bench(cfg.warmup); err != nil { // warm-up: caches, autovacuum of the new tables
		return r, err
	}
	for range cfg.runs {
		tps, err := bench(cfg.refDuration())
		if err != nil {
			return r, err
		}
		r.rates = append(r.rates, tps)
	}
	return r, nil
}

func (r reference) best() float64 {
	best := 0.0
	for _, v := range r.rates {
		best = max(best, v)
	}
	return best
}
