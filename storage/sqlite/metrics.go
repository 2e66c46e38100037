package sqlite

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// Collector returns a Prometheus collector of the connection pool's
// statistics (sql.DBStats, as the standard go_sql_* metrics with
// db_name="sqlite"), read at each scrape.
func (s *Store) Collector() prometheus.Collector {
	return collectors.NewDBStatsCollector(s.db, "sqlite")
}
