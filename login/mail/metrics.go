package mail

import "github.com/prometheus/client_golang/prometheus"

// Metrics are the mailer's Prometheus collectors (a prometheus.Collector
// for cmd to register); pass them in Config. A nil *Metrics counts nothing.
type Metrics struct {
	sent   *prometheus.CounterVec
	failed *prometheus.CounterVec
}

// NewMetrics returns the collectors, every kind of message at zero.
func NewMetrics() *Metrics {
	m := &Metrics{
		sent: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gatehouse_mail_sent_total",
			Help: "Emails handed to the SMTP server (or, without SMTP_URL, to the log), by kind.",
		}, []string{"kind"}),
		failed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gatehouse_mail_failed_total",
			Help: "Emails given up, by kind: refused or failing after every retry, dropped on a full queue or at shutdown.",
		}, []string{"kind"}),
	}
	for _, k := range kinds {
		m.sent.WithLabelValues(k.name)
		m.failed.WithLabelValues(k.name)
	}
	return m
}

// Describe implements prometheus.Collector.
func (m *Metrics) Describe(ch chan<- *prometheus.Desc) {
	m.sent.Describe(ch)
	m.failed.Describe(ch)
}

// Collect implements prometheus.Collector.
func (m *Metrics) Collect(ch chan<- prometheus.Metric) {
	m.sent.Collect(ch)
	m.failed.Collect(ch)
}

func (m *Metrics) result(k *kind, sent bool) {
	switch {
	case m == nil:
	case sent:
		m.sent.WithLabelValues(k.name).Inc()
	default:
		m.failed.WithLabelValues(k.name).Inc()
	}
}
