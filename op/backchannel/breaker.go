package backchannel

import (
	"sync"
	"time"
)

// A receiver that does not answer (connection timeouts, a black-holed
// address) costs a sending slot for the whole timeout on every attempt, and
// the outbox is shared: one such client with many ending sessions would keep
// every other app's logout tokens waiting behind its own. The breaker stops
// sending to a host after breakerTrip consecutive failures without an
// answer; its deliveries are then left unsent (to their lease, so they come
// back later at no sending cost) until the host's pause ends, when one
// delivery probes it. A failure of the probe doubles the pause, up to
// breakerMaxPause; an answer of any kind closes the breaker. An HTTP error
// status does not count: it came back at once and cost nothing.
const (
	breakerTrip     = 3
	breakerPause    = 30 * time.Second
	breakerMaxPause = 10 * time.Minute
	// breakerMaxHosts bounds the breaker's memory: it forgets every host
	// when full (some sends that would have been skipped happen).
	breakerMaxHosts = 10000
)

type hostState struct {
	failures    int // consecutive failures without an answer
	pause       time.Duration
	pausedUntil time.Time // zero: closed
	probing     bool      // one attempt in flight while half-open
}

// breaker is the per-host circuit breaker of one Worker (per instance).
type breaker struct {
	mu    sync.Mutex
	hosts map[string]*hostState
}

// allow reports whether a delivery to host may be attempted at now. When a
// pause has ended, exactly one caller gets true (the probe) until it reports.
func (b *breaker) allow(host string, now time.Time) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	h := b.hosts[host]
	if h == nil || h.pausedUntil.IsZero() {
		return true
	}
	if now.Before(h.pausedUntil) || h.probing {
		return false
	}
	h.probing = true
	return true
}

// pausedUntil returns when host's pause ends (zero when it is not paused).
func (b *breaker) pausedUntil(host string) time.Time {
	b.mu.Lock()
	defer b.mu.Unlock()
	if h := b.hosts[host]; h != nil {
		return h.pausedUntil
	}
	return time.Time{}
}

// report records an attempt's result for host: answered is false when no
// HTTP answer came back (timeout, refused, DNS). It returns true when this
// report opened (or re-opened) the breaker.
func (b *breaker) report(host string, answered bool, now time.Time) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if answered {
		delete(b.hosts, host)
		return false
	}
	if b.hosts == nil || len(b.hosts) >= breakerMaxHosts {
		b.hosts = make(map[string]*hostState)
	}
	h := b.hosts[host]
	if h == nil {
		h = &hostState{}
		b.hosts[host] = h
	}
	h.failures++
	wasProbe := h.probing
	h.probing = false
	if h.failures < breakerTrip && !wasProbe {
		return false
	}
	if h.pause == 0 {
		h.pause = breakerPause
	} else if wasProbe {
		h.pause = min(2*h.pause, breakerMaxPause)
	}
	h.pausedUntil = now.Add(h.pause)
	return true
}
