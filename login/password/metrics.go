package password

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the hasher's Prometheus collectors (a prometheus.Collector for
// cmd to register); pass them in Config. A nil *Metrics measures nothing.
type Metrics struct {
	wait     prometheus.Histogram
	refusals *prometheus.CounterVec
}

// Reasons of a refusal, the label values of the refusal counter.
const (
	refusedQueueFull = "queue_full" // Config.MaxQueue callers were waiting
	refusedMaxWait   = "max_wait"   // no slot came within Config.MaxWait
)

// NewMetrics returns the collectors, every refusal reason at zero.
func NewMetrics() *Metrics {
	m := &Metrics{
		wait: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "gatehouse_password_hash_wait_seconds",
			Help: "Time a password hash or check waited for a free hashing slot (GATEHOUSE_PASSWORD_HASH_CONCURRENCY slots), refusals included.",
			// From "no wait" past the 3 s default bound on the wait.
			Buckets: []float64{0.001, 0.005, 0.025, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 15},
		}),
		refusals: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gatehouse_password_hash_refused_total",
			Help: "Password hashes or checks refused because the hasher was overloaded (the sign-in pages answer 503), by reason: queue_full (64 callers per slot already waiting) or max_wait (no slot within GATEHOUSE_PASSWORD_HASH_MAX_WAIT).",
		}, []string{"reason"}),
	}
	for _, r := range []string{refusedQueueFull, refusedMaxWait} {
		m.refusals.WithLabelValues(r)
	}
	return m
}

// Describe implements prometheus.Collector.
func (m *Metrics) Describe(ch chan<- *prometheus.Desc) {
	m.wait.Describe(ch)
	m.refusals.Describe(ch)
}

// Collect implements prometheus.Collector.
func (m *Metrics) Collect(ch chan<- prometheus.Metric) {
	m.wait.Collect(ch)
	m.refusals.Collect(ch)
}

func (m *Metrics) waited(d time.Duration) {
	if m != nil {
		m.wait.Observe(d.Seconds())
	}
}

func (m *Metrics) refused(reason string) {
	if m != nil {
		m.refusals.WithLabelValues(reason).Inc()
	}
}
