package sqlite

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/gatehouse-id/gatehouse/storage"
)

// Collector returns a Prometheus collector of the connection pool's
// statistics (sql.DBStats, as the standard go_sql_* metrics with
// db_name="sqlite") and of the statements run (storage.StatementCollector),
// read at each scrape.
func (s *Store) Collector() prometheus.Collector {
	return collectorList{collectors.NewDBStatsCollector(s.db, "sqlite"), storage.StatementCollector("sqlite", s)}
}

// collectorList is several collectors as one.
type collectorList []prometheus.Collector

func (l collectorList) Describe(ch chan<- *prometheus.Desc) {
	for _, c := range l {
		c.Describe(ch)
	}
}

func (l collectorList) Collect(ch chan<- prometheus.Metric) {
	for _, c := range l {
		c.Collect(ch)
	}
}
