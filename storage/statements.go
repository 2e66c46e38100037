package storage

import (
	"strings"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
)

// StatementCounts is what a store has asked of its database since it was
// opened: the benchmarks report it per request ("db-reads/op", …) so a
// change that adds a round trip or a write to a hot path shows, and the
// /metrics endpoint exports it (gatehouse_db_statements_total,
// gatehouse_db_transactions_total).
type StatementCounts struct {
	Reads  int64 // statements that only read (SELECT)
	Writes int64 // statements that change or may change rows: each a write
	// Transactions are explicit transactions begun; each costs its BEGIN and
	// COMMIT on top of its statements (two more round trips on PostgreSQL).
	Transactions int64
}

// StatementCounter is implemented by the built-in stores.
type StatementCounter interface {
	Statements() StatementCounts
}

// StatementTally counts statements for a store; safe for concurrent use.
type StatementTally struct{ reads, writes, txs atomic.Int64 }

// Count records one statement of query's kind.
func (t *StatementTally) Count(query string) {
	if IsReadOnlyStatement(query) {
		t.reads.Add(1)
	} else {
		t.writes.Add(1)
	}
}

// CountTransaction records one transaction begun.
func (t *StatementTally) CountTransaction() { t.txs.Add(1) }

// Counts is the tally so far.
func (t *StatementTally) Counts() StatementCounts {
	return StatementCounts{Reads: t.reads.Load(), Writes: t.writes.Load(), Transactions: t.txs.Load()}
}

// IsReadOnlyStatement reports whether query is a plain SELECT (after
// leading space and comments are skipped). Anything else — INSERT, UPDATE,
// DELETE, UPDATE … RETURNING, a WITH that may write — counts as a write.
func IsReadOnlyStatement(query string) bool {
	q := strings.TrimLeft(query, " \t\r\n(")
	return len(q) >= 6 && strings.EqualFold(q[:6], "select")
}

// StatementCollector exports c's counts as gatehouse_db_statements_total
// {db, kind="read"|"write"} and gatehouse_db_transactions_total{db}, read at
// each scrape.
func StatementCollector(db string, c StatementCounter) prometheus.Collector {
	return statementCollector{
		c: c,
		statements: prometheus.NewDesc("gatehouse_db_statements_total",
			"Statements the store sent to its database, by kind (read: SELECT; write: anything else).",
			[]string{"kind"}, prometheus.Labels{"db": db}),
		txs: prometheus.NewDesc("gatehouse_db_transactions_total",
			"Explicit transactions the store began.", nil, prometheus.Labels{"db": db}),
	}
}

type statementCollector struct {
	c               StatementCounter
	statements, txs *prometheus.Desc
}

func (s statementCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- s.statements
	ch <- s.txs
}

func (s statementCollector) Collect(ch chan<- prometheus.Metric) {
	n := s.c.Statements()
	ch <- prometheus.MustNewConstMetric(s.statements, prometheus.CounterValue, float64(n.Reads), "read")
	ch <- prometheus.MustNewConstMetric(s.statements, prometheus.CounterValue, float64(n.Writes), "write")
	ch <- prometheus.MustNewConstMetric(s.txs, prometheus.CounterValue, float64(n.Transactions))
}
