package postgres

import (
	"context"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/gatehouse-id/gatehouse/storage"
)

// statementTracer counts what the pool sends (pgx.QueryTracer sees every
// query, including the BEGIN and COMMIT of a transaction, each a round
// trip). Counting is two atomic adds; nothing is logged.
type statementTracer struct{ tally *storage.StatementTally }

func (t statementTracer) TraceQueryStart(ctx context.Context, _ *pgx.Conn, data pgx.TraceQueryStartData) context.Context {
	q := strings.TrimSpace(data.SQL)
	switch {
	case len(q) >= 5 && strings.EqualFold(q[:5], "begin"):
		t.tally.CountTransaction()
	case strings.EqualFold(q, "commit"), strings.EqualFold(q, "rollback"):
	default:
		t.tally.Count(q)
	}
	return ctx
}

func (statementTracer) TraceQueryEnd(context.Context, *pgx.Conn, pgx.TraceQueryEndData) {}

// Statements implements storage.StatementCounter: every statement sent
// through the pool since Open, migrations included. On PostgreSQL each is
// a round trip, and each transaction adds two (BEGIN, COMMIT).
func (s *Store) Statements() storage.StatementCounts { return s.tally.Counts() }
