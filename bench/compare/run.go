package main

import (
	"context"
	"errors"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// errStopWorker, wrapped, ends a worker's loop: its state (a refresh chain)
// cannot be used any more. The other workers go on.
var errStopWorker = errors.New("worker stopped")

// load is concurrent work against one target.
type load struct {
	workers int
	// rate > 0 sends that many operations per second in total, each on
	// its own goroutine whatever the others do (an open loop, as
	// independent clients are: a slow answer does not slow the arrivals),
	// with at most workers in flight; 0 is a closed loop of workers
	// operations one after the other.
	rate float64
	// op is one operation of worker w (the same w is never used by two
	// goroutines at once in a closed loop); it returns the HTTP requests
	// it made.
	op func(ctx context.Context, w int) (requests int, err error)
}

// sample is what one drive measured.
type sample struct {
	elapsed   time.Duration
	ops, errs int
	firstErr  error
	requests  int             // HTTP requests of the successful operations
	lat       []time.Duration // of the successful operations, sorted
	dropped   int             // open loop: arrivals with workers already in flight
}

func (s sample) rate() float64 {
	if s.elapsed <= 0 {
		return 0
	}
	return float64(s.ops) / s.elapsed.Seconds()
}

// percentile of the sorted latencies (nearest rank).
func (s sample) percentile(p float64) time.Duration {
	if len(s.lat) == 0 {
		return 0
	}
	i := int(p/100*float64(len(s.lat))+0.5) - 1
	return s.lat[min(max(i, 0), len(s.lat)-1)]
}

// tally collects the outcomes of operations from many goroutines.
type tally struct {
	mu       sync.Mutex
	lat      []time.Duration
	requests int
	errs     int
	firstErr error
}

func (t *tally) add(d time.Duration, requests int, err error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if err != nil {
		t.errs++
		if t.firstErr == nil {
			t.firstErr = err
		}
		return
	}
	t.lat = append(t.lat, d)
	t.requests += requests
}

// drive runs l for d (or until ctx ends). When the time is up no new
// operation starts, and the ones in flight finish and count: cancelling
// them would measure disconnects rather than the server.
func drive(ctx context.Context, l load, d time.Duration) sample {
	var stop atomic.Bool
	timer := time.AfterFunc(d, func() { stop.Store(true) })
	defer timer.Stop()
	t := &tally{lat: make([]time.Duration, 0, 1<<14)}
	var wg sync.WaitGroup
	dropped := 0
	start := time.Now()
	one := func(w int) error {
		t0 := time.Now()
		n, err := l.op(ctx, w)
		t.add(time.Since(t0), n, err)
		return err
	}
	if l.rate > 0 {
		free := make(chan int, l.workers) // worker numbers not in flight
		for w := range l.workers {
			free <- w
		}
		interval := time.Duration(float64(time.Second) / l.rate)
		next := start
		for !stop.Load() && ctx.Err() == nil {
			select {
			case w := <-free:
				wg.Go(func() {
					_ = one(w)
					free <- w
				})
			default:
				dropped++
			}
			next = next.Add(interval)
			if wait := time.Until(next); wait > 0 {
				select {
				case <-time.After(wait):
				case <-ctx.Done():
				}
			}
		}
	} else {
		for w := range l.workers {
			wg.Go(func() {
				for !stop.Load() && ctx.Err() == nil {
					if err := one(w); errors.Is(err, errStopWorker) {
						return
					}
				}
			})
		}
	}
	wg.Wait()
	slices.Sort(t.lat)
	return sample{
		elapsed: time.Since(start), ops: len(t.lat), errs: t.errs, firstErr: t.firstErr,
		requests: t.requests, lat: t.lat, dropped: dropped,
	}
}

// background runs l's workers in a closed loop until stop is called, and
// counts the successful operations as they finish.
type background struct {
	ops, errs atomic.Int64
	firstErr  atomic.Pointer[error]
	stopped   atomic.Bool
	wg        sync.WaitGroup
}

func startBackground(ctx context.Context, l load) *background {
	b := &background{}
	for w := range l.workers {
		b.wg.Go(func() {
			for !b.stopped.Load() && ctx.Err() == nil {
				if _, err := l.op(ctx, w); err != nil {
					b.errs.Add(1)
					b.firstErr.CompareAndSwap(nil, &err)
					if errors.Is(err, errStopWorker) {
						return
					}
					continue
				}
				b.ops.Add(1)
			}
		})
	}
	return b
}

func (b *background) stop() {
	b.stopped.Store(true)
	b.wg.Wait()
}
