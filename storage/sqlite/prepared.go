package sqlite

import (
	"context"
	"database/sql"
	"sync"

	"github.com/gatehouse-id/gatehouse/storage"
)

// preparedDB runs the store's statements as prepared statements, prepared
// once per query text. Without it SQLite parses every query on every call:
// the parser was a quarter of the CPU of a userinfo request (bench/README.md).
// The query texts are constants of this package, so the cache is bounded.
// database/sql re-prepares a statement on each pooled connection as needed.
type preparedDB struct {
	db    *sql.DB
	mu    sync.RWMutex
	stmts map[string]*sql.Stmt
	// tally counts every statement run, here and in write transactions.
	tally storage.StatementTally
}

func newPreparedDB(db *sql.DB) *preparedDB {
	return &preparedDB{db: db, stmts: make(map[string]*sql.Stmt)}
}

func (p *preparedDB) stmt(ctx context.Context, query string) (*sql.Stmt, error) {
	p.tally.Count(query)
	p.mu.RLock()
	st, ok := p.stmts[query]
	p.mu.RUnlock()
	if ok {
		return st, nil
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if st, ok := p.stmts[query]; ok {
		return st, nil
	}
	st, err := p.db.PrepareContext(ctx, query)
	if err != nil {
		return nil, err
	}
	p.stmts[query] = st
	return st, nil
}

func (p *preparedDB) QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row {
	st, err := p.stmt(ctx, query)
	if err != nil {
		// sql.Row cannot carry an error of ours; the unprepared call reports it.
		return p.db.QueryRowContext(ctx, query, args...)
	}
	return st.QueryRowContext(ctx, args...)
}

func (p *preparedDB) QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	st, err := p.stmt(ctx, query)
	if err != nil {
		return nil, err
	}
	return st.QueryContext(ctx, args...)
}

func (p *preparedDB) ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error) {
	st, err := p.stmt(ctx, query)
	if err != nil {
		return nil, err
	}
	return st.ExecContext(ctx, args...)
}

func (p *preparedDB) close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, st := range p.stmts {
		st.Close()
	}
	p.stmts = nil
}

// txq runs a write transaction's statements from the same cache: each is
// prepared once per connection (database/sql keeps it with the connection)
// and bound to the transaction, so the time the write lock is held is not
// spent parsing SQL. A write transaction is where that matters most: every
// other writer waits for it.
type txq struct {
	tx *sql.Tx
	p  *preparedDB
}

func (t *txq) ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error) {
	st, err := t.p.stmt(ctx, query)
	if err != nil {
		return nil, err
	}
	return t.tx.StmtContext(ctx, st).ExecContext(ctx, args...)
}

func (t *txq) QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row {
	st, err := t.p.stmt(ctx, query)
	if err != nil {
		return t.tx.QueryRowContext(ctx, query, args...) // reports the error
	}
	return t.tx.StmtContext(ctx, st).QueryRowContext(ctx, args...)
}

func (t *txq) QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	st, err := t.p.stmt(ctx, query)
	if err != nil {
		return nil, err
	}
	return t.tx.StmtContext(ctx, st).QueryContext(ctx, args...)
}
