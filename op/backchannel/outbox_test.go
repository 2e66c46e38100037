package backchannel

import (
	"context"
	"fmt"
	"sync"
	"time"
)

// fakeClock is a settable clock.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = t
}

func (c *fakeClock) Advance(d time.Duration) { c.Set(c.Now().Add(d)) }

// Outbox row states.
const (
	statePending = "pending"
	stateDone    = "delivered"
	stateGaveUp  = "given_up"
)

// fakeRow is a delivery and its bookkeeping.
type fakeRow struct {
	d          Delivery
	state      string
	next       time.Time // due at
	leaseUntil time.Time
	lastStatus int
	lastErr    string
	recorded   []string // outcomes in order
}

// memOutbox is an in-memory Outbox with the leasing a real store must do:
// Claim hands out a delivery only when it is pending, due and not leased.
// Recording an outcome for a delivery that is not pending or not leased is
// an error, so a double send shows up as a failed test.
type memOutbox struct {
	mu      sync.Mutex
	rows    []*fakeRow
	claims  int
	onClaim func() // called after each Claim, outside the lock
}

func (o *memOutbox) add(d Delivery) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.rows = append(o.rows, &fakeRow{d: d, state: statePending, next: d.CreatedAt})
}

func (o *memOutbox) row(id string) *fakeRow {
	for _, r := range o.rows {
		if r.d.ID == id {
			return r
		}
	}
	return nil
}

// get returns a copy of the row id.
func (o *memOutbox) get(id string) fakeRow {
	o.mu.Lock()
	defer o.mu.Unlock()
	r := *o.row(id)
	r.recorded = append([]string(nil), r.recorded...)
	return r
}

func (o *memOutbox) Claim(ctx context.Context, now time.Time, limit int, lease time.Duration) ([]Delivery, error) {
	o.mu.Lock()
	var out []Delivery
	for _, r := range o.rows {
		if len(out) == limit {
			break
		}
		if r.state != statePending || r.next.After(now) || r.leaseUntil.After(now) {
			continue
		}
		r.leaseUntil = now.Add(lease)
		out = append(out, r.d)
	}
	o.claims++
	hook := o.onClaim
	o.mu.Unlock()
	if hook != nil {
		hook()
	}
	return out, nil
}

// leased finds the pending, leased row id for recording an outcome.
func (o *memOutbox) leased(id string, at time.Time) (*fakeRow, error) {
	r := o.row(id)
	if r == nil {
		return nil, fmt.Errorf("no delivery %s", id)
	}
	if r.state != statePending {
		return nil, fmt.Errorf("delivery %s is %s already", id, r.state)
	}
	if !r.leaseUntil.After(at) {
		return nil, fmt.Errorf("delivery %s is not leased at %v", id, at)
	}
	return r, nil
}

func (o *memOutbox) Complete(ctx context.Context, id string, at time.Time, status int) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	r, err := o.leased(id, at)
	if err != nil {
		return err
	}
	r.state, r.lastStatus, r.leaseUntil = stateDone, status, time.Time{}
	r.recorded = append(r.recorded, "complete")
	return nil
}

func (o *memOutbox) Retry(ctx context.Context, id string, at time.Time, status int, errText string, next time.Time) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	r, err := o.leased(id, at)
	if err != nil {
		return err
	}
	r.d.Attempts++
	r.next, r.leaseUntil, r.lastStatus, r.lastErr = next, time.Time{}, status, errText
	r.recorded = append(r.recorded, "retry")
	return nil
}

func (o *memOutbox) GiveUp(ctx context.Context, id string, at time.Time, status int, errText string) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	r, err := o.leased(id, at)
	if err != nil {
		return err
	}
	r.state, r.lastStatus, r.lastErr, r.leaseUntil = stateGaveUp, status, errText, time.Time{}
	r.recorded = append(r.recorded, "give_up")
	return nil
}
