package postgres

import (
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/gatehouse-id/gatehouse/storage"
)

// Collector returns a Prometheus collector of the connection pool's
// statistics (pgxpool.Stat) and of the statements sent
// (storage.StatementCollector), read at each scrape.
func (s *Store) Collector() prometheus.Collector {
	return poolCollector{s.pool, storage.StatementCollector("postgres", s)}
}

type poolCollector struct {
	pool       *pgxpool.Pool
	statements prometheus.Collector
}

func poolDesc(name, help string) *prometheus.Desc {
	return prometheus.NewDesc("gatehouse_db_pool_"+name, help, nil, prometheus.Labels{"db": "postgres"})
}

var (
	descAcquired     = poolDesc("acquired_conns", "Connections in use by a request.")
	descIdle         = poolDesc("idle_conns", "Idle connections.")
	descTotal        = poolDesc("total_conns", "Open connections (acquired, idle and being opened).")
	descMax          = poolDesc("max_conns", "Maximum size of the pool.")
	descAcquires     = poolDesc("acquires_total", "Connections acquired from the pool.")
	descAcquireTime  = poolDesc("acquire_wait_seconds_total", "Total time spent acquiring connections.")
	descEmptyAcquire = poolDesc("empty_acquires_total", "Acquires that had to wait for a connection (none idle).")
	descCanceled     = poolDesc("canceled_acquires_total", "Acquires given up because their context ended.")
	descNewConns     = poolDesc("new_conns_total", "Connections opened.")
)

func (c poolCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descAcquired, descIdle, descTotal, descMax, descAcquires,
		descAcquireTime, descEmptyAcquire, descCanceled, descNewConns} {
		ch <- d
	}
	c.statements.Describe(ch)
}

func (c poolCollector) Collect(ch chan<- prometheus.Metric) {
	s := c.pool.Stat()
	gauge := func(d *prometheus.Desc, v float64) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v)
	}
	counter := func(d *prometheus.Desc, v float64) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, v)
	}
	gauge(descAcquired, float64(s.AcquiredConns()))
	gauge(descIdle, float64(s.IdleConns()))
	gauge(descTotal, float64(s.TotalConns()))
	gauge(descMax, float64(s.MaxConns()))
	counter(descAcquires, float64(s.AcquireCount()))
	counter(descAcquireTime, s.AcquireDuration().Seconds())
	counter(descEmptyAcquire, float64(s.EmptyAcquireCount()))
	counter(descCanceled, float64(s.CanceledAcquireCount()))
	counter(descNewConns, float64(s.NewConnsCount()))
	c.statements.Collect(ch)
}
