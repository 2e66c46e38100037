package main

import (
	"os"
	"runtime/debug"

	"github.com/gatehouse-id/gatehouse/login/password"
)

// The soft memory limit `serve` gives the Go runtime when the operator set
// none (GOMEMLIMIT): a base for everything but password hashing, plus, per
// hashing slot, one hash's memory (argon2id's m) and a little room. Hashes
// reuse their memory (internal/argon2's Pool), so a slot holds one hash's
// memory and leaves no garbage; without a limit the collector would still
// let the rest of the heap grow to twice what is live, hashes' memory
// included, and a sign-in flood took the process to 150 MiB and more
// (bench/compare). With it the collector runs sooner when memory is high,
// and only then; GOMEMLIMIT (or GOMEMLIMIT=off) overrides it.
const (
	memoryLimitBase    = 40 << 20
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
