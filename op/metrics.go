package op

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/gatehouse-id/gatehouse/op/backchannel"
	"github.com/gatehouse-id/gatehouse/storage"
)

// Metrics are the provider's Prometheus collectors. cmd creates them with
// NewMetrics, registers them on its registry (Metrics is a
// prometheus.Collector) and passes them in Config. A nil *Metrics counts
// nothing.
type Metrics struct {
	tokens       *prometheus.CounterVec
	refreshReuse prometheus.Counter
	logouts      *prometheus.CounterVec
}

// Grant types and token kinds, the label values of tokens_issued_total.
var (
	metricGrantTypes = []string{"authorization_code", "refresh_token", "client_credentials"}
	metricTokenKinds = []string{"access_opaque", "access_jwt", "id", "refresh"}
)

// NewMetrics returns the collectors, every label pair at zero so a scrape
// shows the series before the first token.
func NewMetrics() *Metrics {
	m := &Metrics{
		tokens: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gatehouse_tokens_issued_total",
			Help: "Tokens issued at the token endpoint, by grant type and kind (access_opaque, access_jwt, id, refresh).",
		}, []string{"grant_type", "kind"}),
		refreshReuse: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "gatehouse_refresh_token_reuse_total",
			Help: "Rotated refresh tokens presented again after the grace window (the grant is revoked each time).",
		}),
		// No client label: the series would grow with the client registry.
		// `gatehouse logout-deliveries list --client` answers per client.
		logouts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gatehouse_backchannel_logout_deliveries_total",
			Help: "Back-channel logout delivery attempts by outcome: delivered (2xx), retry (failed, tried again later), given_up (refused, or failed when retries ran out).",
		}, []string{"outcome"}),
	}
	for _, g := range metricGrantTypes {
		for _, k := range metricTokenKinds {
			m.tokens.WithLabelValues(g, k)
		}
	}
	for _, o := range []backchannel.Outcome{backchannel.Delivered, backchannel.Retry, backchannel.GiveUp} {
		m.logouts.WithLabelValues(o.String())
	}
	return m
}

// Describe implements prometheus.Collector.
func (m *Metrics) Describe(ch chan<- *prometheus.Desc) {
	m.tokens.Describe(ch)
	m.refreshReuse.Describe(ch)
	m.logouts.Describe(ch)
}

// Collect implements prometheus.Collector.
func (m *Metrics) Collect(ch chan<- prometheus.Metric) {
	m.tokens.Collect(ch)
	m.refreshReuse.Collect(ch)
	m.logouts.Collect(ch)
}

func (m *Metrics) tokenIssued(grantType, kind string) {
	if m != nil {
		m.tokens.WithLabelValues(grantType, kind).Inc()
	}
}

func (m *Metrics) refreshReused() {
	if m != nil {
		m.refreshReuse.Inc()
	}
}

// logoutMetrics is Metrics as the back-channel logout worker reports to it
// (backchannel.Metrics).
type logoutMetrics struct{ m *Metrics }

func (l logoutMetrics) Observe(_ string, o backchannel.Outcome) {
	if l.m != nil {
		l.m.logouts.WithLabelValues(o.String()).Inc()
	}
}

// Bounds of the pending-deliveries gauge's query, run at every scrape.
const (
	// maxPendingCounted caps the count: past it the gauge reads this value,
	// which already says the receivers are far behind, and a scrape costs
	// the same however far the outbox has grown.
	maxPendingCounted = 10000
	// pendingCountTimeout bounds the query when the store is slow; the
	// scrape then reports the error for this gauge alone.
	pendingCountTimeout = 2 * time.Second
)

// LogoutBacklog is a Prometheus collector of the back-channel logout
// outbox's pending deliveries (gatehouse_backchannel_logout_pending),
// counted in the store at each scrape. The outbox is shared, so every
// instance on one store reports the same value. cmd registers it beside
// Metrics.
type LogoutBacklog struct {
	store storage.LogoutOutbox
	desc  *prometheus.Desc
}

// NewLogoutBacklog returns the collector for store's outbox.
func NewLogoutBacklog(store storage.LogoutOutbox) *LogoutBacklog {
	return &LogoutBacklog{store: store, desc: prometheus.NewDesc(
		"gatehouse_backchannel_logout_pending",
		"Back-channel logout deliveries neither delivered nor given up (due, or waiting for a retry), counted in the store at each scrape, up to 10000.",
		nil, nil)}
}

// Describe implements prometheus.Collector.
func (b *LogoutBacklog) Describe(ch chan<- *prometheus.Desc) { ch <- b.desc }

// Collect implements prometheus.Collector. A failed count is reported as
// this metric's error; the rest of the scrape is served.
func (b *LogoutBacklog) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), pendingCountTimeout)
	defer cancel()
	n, err := b.store.CountPendingLogoutDeliveries(ctx, maxPendingCounted)
	if err != nil {
		ch <- prometheus.NewInvalidMetric(b.desc, err)
		return
	}
	ch <- prometheus.MustNewConstMetric(b.desc, prometheus.GaugeValue, float64(n))
}
