package op

import "github.com/prometheus/client_golang/prometheus"

// Metrics are the provider's Prometheus collectors. cmd creates them with
// NewMetrics, registers them on its registry (Metrics is a
// prometheus.Collector) and passes them in Config. A nil *Metrics counts
// nothing.
type Metrics struct {
	tokens       *prometheus.CounterVec
	refreshReuse prometheus.Counter
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
	}
	for _, g := range metricGrantTypes {
		for _, k := range metricTokenKinds {
			m.tokens.WithLabelValues(g, k)
		}
	}
	return m
}

// Describe implements prometheus.Collector.
func (m *Metrics) Describe(ch chan<- *prometheus.Desc) {
	m.tokens.Describe(ch)
	m.refreshReuse.Describe(ch)
}

// Collect implements prometheus.Collector.
func (m *Metrics) Collect(ch chan<- prometheus.Metric) {
	m.tokens.Collect(ch)
	m.refreshReuse.Collect(ch)
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
