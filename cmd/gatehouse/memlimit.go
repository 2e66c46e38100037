package main

import (
	"os"
	"runtime/debug"

	"github.com/gatehouse-id/gatehouse/login/password"
)

// The soft memory limit `serve` gives the Go runtime when the operator set
// none (GOMEMLIMIT): a base for everything but password hashing, plus, per
// hashing slot, one hash's memory (argon2id's m) and a little room. The base
// is what Go itself manages beside the hashes: under the token and SSO-flow
// scenarios of bench/compare the process stays near 50 MiB resident, of
// which about 26 MiB are the binary's own pages, which the limit does not
// count; 28 MiB keeps a sign-in flood's peak under 100 MiB resident (97 MiB
// on SQLite, 90 MiB on PostgreSQL; 111/101 with a 40 MiB base). Hashes
// reuse their memory (internal/argon2's Pool), so a slot holds one hash's
// memory and leaves little garbage (a stored hash with other parameters
// still allocates its own); without a limit the collector would still
// let the rest of the heap grow to twice what is live, hashes' memory
// included, and a sign-in flood took the process to 150 MiB and more
// (bench/compare). With it the collector runs sooner when memory is high,
// and only then; GOMEMLIMIT (or GOMEMLIMIT=off) overrides it.
const (
	memoryLimitBase    = 28 << 20
	memoryLimitPerHash = 1 << 20
)

// setDefaultMemoryLimit applies the default limit unless GOMEMLIMIT is set,
// and returns it (0 when the operator's setting stands).
func setDefaultMemoryLimit(h *password.Hasher) int64 {
	if _, set := os.LookupEnv("GOMEMLIMIT"); set {
		return 0
	}
	limit := int64(memoryLimitBase) + int64(h.Concurrency())*(h.MemoryPerHash()+memoryLimitPerHash)
	debug.SetMemoryLimit(limit)
	return limit
}
