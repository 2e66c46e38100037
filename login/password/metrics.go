package password

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the hasher's Prometheus collectors (a prometheus.Collector for
// cmd to register); pass them in Config. A nil *Metrics measures nothing.
type Metrics struct {
	wait prometheus.Histogram
}

// NewMetrics returns the collectors.
func NewMetrics() *Metrics {
	return &Metrics{wait: prometheus.NewHistogram(prometheus.HistogramOpts{
		Name: "gatehouse_password_hash_wait_seconds",
		Help: "Time a password hash or check waited for a free hashing slot (the semaphore of GOMAXPROCS slots).",
		// From "no wait" to the 15 s after which a sign-in gives up.
		Buckets: []float64{0.001, 0.005, 0.025, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 15},
	})}
}

// Describe implements prometheus.Collector.
func (m *Metrics) Describe(ch chan<- *prometheus.Desc) { m.wait.Describe(ch) }

// Collect implements prometheus.Collector.
func (m *Metrics) Collect(ch chan<- prometheus.Metric) { m.wait.Collect(ch) }

func (m *Metrics) waited(d time.Duration) {
	if m != nil {
		m.wait.Observe(d.Seconds())
	}
}
