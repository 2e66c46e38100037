package op

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/gatehouse-id/gatehouse/storage"
)

// countingOutbox answers CountPendingLogoutDeliveries; any other method
// panics (the nil embedded interface).
type countingOutbox struct {
	storage.LogoutOutbox
	n        int
	err      error
	gotLimit int
}

func (o *countingOutbox) CountPendingLogoutDeliveries(_ context.Context, limit int) (int, error) {
	o.gotLimit = limit
	return min(o.n, limit), o.err
}

// The pending gauge is the store's count, asked with the cap; a failed
// count fails this metric alone, not the scrape's other metrics.
func TestLogoutBacklog(t *testing.T) {
	outbox := &countingOutbox{n: 7}
	reg := prometheus.NewRegistry()
	reg.MustRegister(NewLogoutBacklog(outbox), NewMetrics())
	fams, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var got float64
	found := false
	for _, f := range fams {
		if f.GetName() == "gatehouse_backchannel_logout_pending" {
			got, found = f.GetMetric()[0].GetGauge().GetValue(), true
		}
	}
	if !found || got != 7 || outbox.gotLimit != maxPendingCounted {
		t.Errorf("pending gauge %v (present %v), counted with limit %d; want 7 with %d", got, found, outbox.gotLimit, maxPendingCounted)
	}

	outbox.err = errors.New("database is down")
	fams, err = reg.Gather()
	if err == nil || !strings.Contains(err.Error(), "database is down") {
		t.Errorf("a failed count gathered without its error: %v", err)
	}
	for _, f := range fams {
		if f.GetName() == "gatehouse_backchannel_logout_pending" {
			t.Errorf("a failed count still reported a value")
		}
	}
	if len(fams) == 0 {
		t.Error("a failed count dropped the other metrics too")
	}
}
