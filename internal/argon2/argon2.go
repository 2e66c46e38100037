// Copyright 2017 The Go Authors. All rights reserved.
// Use of this source code is governed by a BSD-style
// license that can be found in the LICENSE file.

// Package argon2 is golang.org/x/crypto/argon2 (v0.58.0) with three changes:
// a Pool lends the memory of one computation to the next instead of
// allocating it afresh (19 MiB at OWASP's parameters, for every password
// checked); the first pass over the memory overwrites blocks instead of
// XORing into zeroed ones (RFC 9106 §3.2 as written; the same result), so
// that lent memory needs no clearing; and the lanes of a slice are computed
// one after another on the caller's goroutine rather than each on a
// goroutine of its own, so that a hash runs on the thread that asked for it
// (login/password's low-priority threads).
//
// Why a copy: at sign-in rates that allocation is the process's allocation
// rate: it starts a garbage collection every few hashes, and each collection
// stops the world, which waits for the hashing goroutines to reach a safe
// point. With hashing on low-priority threads (login/password) that wait is
// as long as the kernel keeps those threads off a core, and every token
// request of the moment waits with it (docs/design.md, "Password hashing
// under load"). x/crypto offers no way to pass the memory in, and no other
// maintained pure-Go Argon2 exists. The tests check every key against
// x/crypto's and the RFC 9106 vectors.
//
// Only Argon2id is exported. The loong64 assembly is left out (the generic
// code runs there).
package argon2

import (
	"encoding/binary"
	"sync"
	"weak"

	"golang.org/x/crypto/blake2b"
)

// The Argon2 version implemented by this package.
const Version = 0x13

const (
	argon2d = iota
	argon2i
	argon2id
)

// IDKey derives a key from the password, salt, and cost parameters using
// Argon2id returning a byte slice of length keyLen that can be used as
// cryptographic key. The CPU cost and parallelism degree must be greater than
// zero.
//
// For example, you can get a derived key for e.g. AES-256 (which needs a
// 32-byte key) by doing:
//
//	key := argon2.IDKey([]byte("some password"), salt, 1, 2*1024*1024, 4, 32)
//
// The example above uses the first [RFC 9106 Section 4] recommended option.
// If much less memory is available, the second recommended option is time=3,
// memory=64*1024 KiB (64 MiB), and threads=4.
//
// The time parameter specifies the number of passes over the memory and the
// memory parameter specifies the size of the memory in KiB. For example
// memory=2*1024*1024 sets the memory cost to ~2 GiB. The number of threads can
// be adjusted to the numbers of available CPUs. The cost parameters should be
// increased as memory latency and CPU parallelism increases. Remember to get a
// good random salt.
//
// [RFC 9106 Section 4]: https://www.rfc-editor.org/rfc/rfc9106.html#section-4
func IDKey(password, salt []byte, time, memory uint32, threads uint8, keyLen uint32) []byte {
	return deriveKey(argon2id, password, salt, nil, nil, time, memory, threads, keyLen)
}

// Pool keeps the memory of finished computations for the next ones, weakly:
// memory still unused when the garbage collector next runs is freed, so an
// idle server gives it back, while under load a computation takes the
// memory the last one returned microseconds before. The zero Pool is ready
// to use and safe for concurrent use.
//
// Not a sync.Pool: that keeps a returned object in a slot private to the
// processor (P) that returned it, which a Get on another P does not look
// at, and the hashing threads (login/password) move between Ps, so under a
// sign-in flood half of the computations allocated afresh (seen in gctrace:
// the live heap jumping by two hashes' memory between collections).
type Pool struct {
	mu   sync.Mutex
	free []weak.Pointer[[]block]
}

// IDKey is IDKey computed in memory taken from the pool when it holds enough,
// and given back to it afterwards.
func (p *Pool) IDKey(password, salt []byte, time, memory uint32, threads uint8, keyLen uint32) []byte {
	return p.deriveKey(argon2id, password, salt, nil, nil, time, memory, threads, keyLen)
}

// get returns n blocks, holding whatever the last computation left: each is
// written before it is read (initBlocks writes the first two of each lane,
// the first pass of processBlocks every other one).
func (p *Pool) get(n uint32) *[]block {
	if p != nil {
		p.mu.Lock()
		for len(p.free) > 0 {
			w := p.free[len(p.free)-1]
			p.free = p.free[:len(p.free)-1]
			// Collected, smaller than this computation needs, or more than
			// twice as large (a stored hash with a larger m: kept, it
			// would hold its memory as long as hashing goes on): dropped.
			if b := w.Value(); b != nil && uint32(cap(*b)) >= n && uint32(cap(*b))/2 <= n {
				p.mu.Unlock()
				*b = (*b)[:n]
				return b
			}
		}
		p.mu.Unlock()
	}
	b := make([]block, n)
	return &b
}

func (p *Pool) put(b *[]block) {
	if p != nil {
		p.mu.Lock()
		p.free = append(p.free, weak.Make(b))
		p.mu.Unlock()
	}
}

func deriveKey(mode int, password, salt, secret, data []byte, time, memory uint32, threads uint8, keyLen uint32) []byte {
	return (*Pool)(nil).deriveKey(mode, password, salt, secret, data, time, memory, threads, keyLen)
}

func (p *Pool) deriveKey(mode int, password, salt, secret, data []byte, time, memory uint32, threads uint8, keyLen uint32) []byte {
	if time < 1 {
		panic("argon2: number of rounds too small")
	}
	if threads < 1 {
		panic("argon2: parallelism degree too low")
	}
	h0 := initHash(password, salt, secret, data, time, memory, uint32(threads), keyLen, mode)

	memory = memory / (syncPoints * uint32(threads)) * (syncPoints * uint32(threads))
	if memory < 2*syncPoints*uint32(threads) {
		memory = 2 * syncPoints * uint32(threads)
	}
	buf := p.get(memory)
	defer p.put(buf)
	B := *buf
	initBlocks(B, &h0, memory, uint32(threads))
	processBlocks(B, time, memory, uint32(threads), mode)
	return extractKey(B, memory, uint32(threads), keyLen)
}

const (
	blockLength = 128
	syncPoints  = 4
)

type block [blockLength]uint64

func initHash(password, salt, key, data []byte, time, memory, threads, keyLen uint32, mode int) [blake2b.Size + 8]byte {
	var (
		h0     [blake2b.Size + 8]byte
		params [24]byte
		tmp    [4]byte
	)

	b2, _ := blake2b.New512(nil)
	binary.LittleEndian.PutUint32(params[0:4], threads)
	binary.LittleEndian.PutUint32(params[4:8], keyLen)
	binary.LittleEndian.PutUint32(params[8:12], memory)
	binary.LittleEndian.PutUint32(params[12:16], time)
	binary.LittleEndian.PutUint32(params[16:20], uint32(Version))
	binary.LittleEndian.PutUint32(params[20:24], uint32(mode))
	b2.Write(params[:])
	binary.LittleEndian.PutUint32(tmp[:], uint32(len(password)))
	b2.Write(tmp[:])
	b2.Write(password)
	binary.LittleEndian.PutUint32(tmp[:], uint32(len(salt)))
	b2.Write(tmp[:])
	b2.Write(salt)
	binary.LittleEndian.PutUint32(tmp[:], uint32(len(key)))
	b2.Write(tmp[:])
	b2.Write(key)
	binary.LittleEndian.PutUint32(tmp[:], uint32(len(data)))
	b2.Write(tmp[:])
	b2.Write(data)
	b2.Sum(h0[:0])
	return h0
}

func initBlocks(B []block, h0 *[blake2b.Size + 8]byte, memory, threads uint32) {
	var block0 [1024]byte
	for lane := uint32(0); lane < threads; lane++ {
		j := lane * (memory / threads)
		binary.LittleEndian.PutUint32(h0[blake2b.Size+4:], lane)

		binary.LittleEndian.PutUint32(h0[blake2b.Size:], 0)
		blake2bHash(block0[:], h0[:])
		for i := range B[j+0] {
			B[j+0][i] = binary.LittleEndian.Uint64(block0[i*8:])
		}

		binary.LittleEndian.PutUint32(h0[blake2b.Size:], 1)
		blake2bHash(block0[:], h0[:])
		for i := range B[j+1] {
			B[j+1][i] = binary.LittleEndian.Uint64(block0[i*8:])
		}
	}
}

func processBlocks(B []block, time, memory, threads uint32, mode int) {
	lanes := memory / threads
	segments := lanes / syncPoints

	processSegment := func(n, slice, lane uint32) {
		var addresses, in, zero block
		if mode == argon2i || (mode == argon2id && n == 0 && slice < syncPoints/2) {
			in[0] = uint64(n)
			in[1] = uint64(lane)
			in[2] = uint64(slice)
			in[3] = uint64(memory)
			in[4] = uint64(time)
			in[5] = uint64(mode)
		}

		index := uint32(0)
		if n == 0 && slice == 0 {
			index = 2 // we have already generated the first two blocks
			if mode == argon2i || mode == argon2id {
				in[6]++
				processBlock(&addresses, &in, &zero)
				processBlock(&addresses, &addresses, &zero)
			}
		}

		offset := lane*lanes + slice*segments + index
		var random uint64
		for index < segments {
			prev := offset - 1
			if index == 0 && slice == 0 {
				prev += lanes // last block in lane
			}
			if mode == argon2i || (mode == argon2id && n == 0 && slice < syncPoints/2) {
				if index%blockLength == 0 {
					in[6]++
					processBlock(&addresses, &in, &zero)
					processBlock(&addresses, &addresses, &zero)
				}
				random = addresses[index%blockLength]
			} else {
				random = B[prev][0]
			}
			newOffset := indexAlpha(random, lanes, segments, threads, n, slice, lane, index)
			// RFC 9106 §3.2: the first pass computes each block afresh, the
			// later ones XOR into it. x/crypto XORs in the first pass too,
			// into memory it has just zeroed; overwriting instead is the same
			// result and lets the Pool hand out memory without clearing it
			// (19 MiB per hash, a third of its time where the memory
			// bandwidth is low).
			if n == 0 {
				processBlock(&B[offset], &B[prev], &B[newOffset])
			} else {
				processBlockXOR(&B[offset], &B[prev], &B[newOffset])
			}
			index, offset = index+1, offset+1
		}
	}

	// The lanes of a slice are computed one after another on the caller's
	// goroutine, where x/crypto starts a goroutine for each: the caller may
	// be a low-priority thread (login/password), and work handed to other
	// goroutines would run on ordinary threads at normal priority. The
	// segments of one slice are independent, so the order changes nothing
	// but the wall time of a hash with several lanes (Gatehouse's have one).
	for n := uint32(0); n < time; n++ {
		for slice := uint32(0); slice < syncPoints; slice++ {
			for lane := uint32(0); lane < threads; lane++ {
				processSegment(n, slice, lane)
			}
		}
	}
}

func extractKey(B []block, memory, threads, keyLen uint32) []byte {
	lanes := memory / threads
	for lane := uint32(0); lane < threads-1; lane++ {
		for i, v := range B[(lane*lanes)+lanes-1] {
			B[memory-1][i] ^= v
		}
	}

	var block [1024]byte
	for i, v := range B[memory-1] {
		binary.LittleEndian.PutUint64(block[i*8:], v)
	}
	key := make([]byte, keyLen)
	blake2bHash(key, block[:])
	return key
}

func indexAlpha(rand uint64, lanes, segments, threads, n, slice, lane, index uint32) uint32 {
	refLane := uint32(rand>>32) % threads
	if n == 0 && slice == 0 {
		refLane = lane
	}
	m, s := 3*segments, ((slice+1)%syncPoints)*segments
	if lane == refLane {
		m += index
	}
	if n == 0 {
		m, s = slice*segments, 0
		if slice == 0 || lane == refLane {
			m += index
		}
	}
	if index == 0 || lane == refLane {
		m--
	}
	return phi(rand, uint64(m), uint64(s), refLane, lanes)
}

func phi(rand, m, s uint64, lane, lanes uint32) uint32 {
	p := rand & 0xFFFFFFFF
	p = (p * p) >> 32
	p = (p * m) >> 32
	return lane*lanes + uint32((s+m-(p+1))%uint64(lanes))
}
