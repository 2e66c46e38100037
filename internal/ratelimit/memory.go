package ratelimit

import (
	"container/list"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"sync"
	"time"
)

// DefaultMaxKeys bounds the keys a Memory limiter made by Open keeps (about
// 200 bytes each, so some 20 MiB at most).
const DefaultMaxKeys = 100_000

// evictScan is how many keys from the least recently used end a full Memory
// looks at for a fully refilled one before it drops a key with state.
const evictScan = 32

// Memory is an in-process GCRA limiter for one instance. It keeps at most
// maxKeys keys: when full, it first drops a key whose budget has fully
// refilled (it carries no state), then the least recently used one.
// Dropping a key that still carried state forgets its spent budget, so size
// maxKeys above the number of keys that can be live within one Period.
// Keys are stored as SHA-256 digests, so a long key costs no more memory than
// a short one. Memory is safe for concurrent use.
type Memory struct {
	now     func() time.Time
	maxKeys int

	mu      sync.Mutex
	entries map[[sha256.Size]byte]*list.Element // of *memEntry
	lru     *list.List                          // front: most recently used
	// inserted counts insertions at capacity since the last sweep of fully
	// refilled keys, so a sweep (O(maxKeys)) runs at most once per maxKeys/4
	// insertions: O(1) amortised.
	inserted int
}

type memEntry struct {
	id  [sha256.Size]byte
	tat time.Time // GCRA theoretical arrival time; at or before now: budget full
}

var _ Limiter = (*Memory)(nil)

// NewMemory returns an in-process limiter keeping at most maxKeys keys
// (DefaultMaxKeys when maxKeys < 1), reading the time from now (time.Now when
// nil).
func NewMemory(maxKeys int, now func() time.Time) *Memory {
	if maxKeys < 1 {
		maxKeys = DefaultMaxKeys
	}
	if now == nil {
		now = time.Now
	}
	return &Memory{
		now:     now,
		maxKeys: maxKeys,
		entries: make(map[[sha256.Size]byte]*list.Element),
		lru:     list.New(),
	}
}

// Allow implements Limiter. It never fails for a valid rule.
func (m *Memory) Allow(_ context.Context, rule Rule, key string) (bool, time.Duration, error) {
	emission, err := rule.validate()
	if err != nil {
		return false, 0, err
	}
	id := memoryID(rule.Name, key)
	// tau is how far ahead of now the TAT may run: Limit events' worth.
	tau := emission * time.Duration(rule.Limit)

	m.mu.Lock()
	defer m.mu.Unlock()
	now := m.now()

	var e *memEntry
	if el, ok := m.entries[id]; ok {
		m.lru.MoveToFront(el)
		e = el.Value.(*memEntry)
	}
	tat := now
	if e != nil && e.tat.After(now) {
		tat = e.tat
	}
	newTAT := tat.Add(emission)
	if allowAt := newTAT.Add(-tau); now.Before(allowAt) {
		return false, allowAt.Sub(now), nil
	}
	if e == nil {
		m.makeRoom(now)
		e = &memEntry{id: id}
		m.entries[id] = m.lru.PushFront(e)
	}
	e.tat = newTAT
	return true, 0, nil
}

// Len returns the number of keys held.
func (m *Memory) Len() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.entries)
}

// makeRoom makes room for one more key. m.mu is held.
func (m *Memory) makeRoom(now time.Time) {
	if len(m.entries) < m.maxKeys {
		return
	}
	// Cheap first: a fully refilled key near the LRU end.
	el := m.lru.Back()
	for i := 0; i < evictScan && el != nil; i++ {
		if !el.Value.(*memEntry).tat.After(now) {
			m.remove(el)
			return
		}
		el = el.Prev()
	}
	m.inserted++
	if m.inserted >= m.maxKeys/4 {
		m.inserted = 0
		for el := m.lru.Back(); el != nil; {
			prev := el.Prev()
			if e := el.Value.(*memEntry); !e.tat.After(now) {
				m.remove(el)
			}
			el = prev
		}
	}
	for len(m.entries) >= m.maxKeys {
		m.remove(m.lru.Back())
	}
}

func (m *Memory) remove(el *list.Element) {
	delete(m.entries, el.Value.(*memEntry).id)
	m.lru.Remove(el)
}

func memoryID(rule, key string) [sha256.Size]byte {
	h := sha256.New()
	// Length-prefixed, so no (rule, key) pair can pose as another.
	h.Write(binary.AppendUvarint(nil, uint64(len(rule))))
	h.Write([]byte(rule))
	h.Write([]byte(key))
	var id [sha256.Size]byte
	h.Sum(id[:0])
	return id
}
