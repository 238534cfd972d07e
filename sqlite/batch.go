package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
)

// rowsPerInsert is how many rows one INSERT statement carries. database/sql
// and the driver cost about as much per statement as SQLite spends per row,
// so multi-row statements take most of that overhead off the commit path.
const rowsPerInsert = 64

// rowBatcher inserts rows into one table with multi-row INSERTs.
type rowBatcher struct {
	ctx   context.Context
	tx    *sql.Tx
	cols  int
	head  string // INSERT INTO t (a, b) VALUES
	tail  string // e.g. ON CONFLICT DO NOTHING
	full  *sql.Stmt
	args  []any
	rows  int
	total int64 // rows affected so far
}

func newRowBatcher(ctx context.Context, tx *sql.Tx, head string, cols int, tail string) (*rowBatcher, error) {
	b := &rowBatcher{ctx: ctx, tx: tx, cols: cols, head: head, tail: tail, args: make([]any, 0, cols*rowsPerInsert)}
	var err error
	if b.full, err = tx.PrepareContext(ctx, b.sql(rowsPerInsert)); err != nil {
		return nil, fmt.Errorf("prepare %q: %w", head, err)
	}
	return b, nil
}

func (b *rowBatcher) sql(rows int) string {
	tuple := "(" + strings.TrimSuffix(strings.Repeat("?, ", b.cols), ", ") + ")"
	return b.head + " " + strings.TrimSuffix(strings.Repeat(tuple+", ", rows), ", ") + " " + b.tail
}

// add queues one row; its values must stay unchanged until flush.
func (b *rowBatcher) add(vals ...any) error {
	b.args = append(b.args, vals...)
	b.rows++
	if b.rows == rowsPerInsert {
		return b.exec(b.full)
	}
	return nil
}

// flush writes the queued rows.
func (b *rowBatcher) flush() error {
	if b.rows == 0 {
		return nil
	}
	return b.exec(nil)
}

func (b *rowBatcher) exec(stmt *sql.Stmt) error {
	var res sql.Result
	var err error
	if stmt != nil {
		res, err = stmt.ExecContext(b.ctx, b.args...)
	} else {
		res, err = b.tx.ExecContext(b.ctx, b.sql(b.rows), b.args...)
	}
	if err != nil {
		return fmt.Errorf("%s: %w", b.head, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return err
	}
	b.total += n
	b.args = b.args[:0]
	b.rows = 0
	return nil
}

func (b *rowBatcher) close() {
	if b.full != nil {
		b.full.Close()
	}
}

// arena hands out byte slices that stay valid for a whole transaction
// without one allocation per row.
type arena struct {
	block []byte
}

func (a *arena) copy(b []byte) []byte {
	if cap(a.block)-len(a.block) < len(b) {
		a.block = make([]byte, 0, max(1<<20, len(b)))
	}
	start := len(a.block)
	a.block = append(a.block, b...)
	return a.block[start:len(a.block):len(a.block)]
}
