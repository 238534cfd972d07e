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

// rowTable describes a table that rows are batched into, with its INSERT
// statements prepared once for 64, 32, …, 1 rows.
type rowTable struct {
	cols  int
	head  string // INSERT INTO t (a, b) VALUES
	tail  string // e.g. ON CONFLICT DO NOTHING
	sizes map[int]*sql.Stmt
}

func prepareRowTable(ctx context.Context, db *sql.DB, head string, cols int, tail string) (*rowTable, error) {
	t := &rowTable{cols: cols, head: head, tail: tail, sizes: map[int]*sql.Stmt{}}
	for n := rowsPerInsert; n >= 1; n /= 2 {
		st, err := db.PrepareContext(ctx, t.sql(n))
		if err != nil {
			return nil, fmt.Errorf("prepare %q for %d rows: %w", head, n, err)
		}
		t.sizes[n] = st
	}
	return t, nil
}

func (t *rowTable) sql(rows int) string {
	tuple := "(" + strings.TrimSuffix(strings.Repeat("?, ", t.cols), ", ") + ")"
	return t.head + " " + strings.TrimSuffix(strings.Repeat(tuple+", ", rows), ", ") + " " + t.tail
}

func (t *rowTable) close() {
	for _, st := range t.sizes {
		st.Close()
	}
}

// rowBatcher queues rows for one table within one transaction.
type rowBatcher struct {
	ctx   context.Context
	tx    *sql.Tx
	t     *rowTable
	txs   map[int]*sql.Stmt // the table's statements bound to tx
	args  []any
	rows  int
	total int64 // rows affected so far
}

func (t *rowTable) batcher(ctx context.Context, tx *sql.Tx) *rowBatcher {
	return &rowBatcher{ctx: ctx, tx: tx, t: t, txs: map[int]*sql.Stmt{}, args: make([]any, 0, t.cols*rowsPerInsert)}
}

// add queues one row; its values must stay unchanged until flush.
func (b *rowBatcher) add(vals ...any) error {
	b.args = append(b.args, vals...)
	b.rows++
	if b.rows == rowsPerInsert {
		return b.flush()
	}
	return nil
}

// flush writes the queued rows, in statements of 64, 32, … rows.
func (b *rowBatcher) flush() error {
	for n := rowsPerInsert; b.rows > 0; n /= 2 {
		for b.rows >= n {
			if err := b.exec(n); err != nil {
				return err
			}
		}
	}
	b.args = b.args[:0]
	return nil
}

// exec inserts the first n queued rows.
func (b *rowBatcher) exec(n int) error {
	st := b.txs[n]
	if st == nil {
		st = b.tx.StmtContext(b.ctx, b.t.sizes[n])
		b.txs[n] = st
	}
	res, err := st.ExecContext(b.ctx, b.args[:n*b.t.cols]...)
	if err != nil {
		return fmt.Errorf("%s: %w", b.t.head, err)
	}
	affected, err := res.RowsAffected()
	if err != nil {
		return err
	}
	b.total += affected
	b.args = append(b.args[:0], b.args[n*b.t.cols:]...)
	b.rows -= n
	return nil
}

// arena hands out byte slices that stay valid for a whole transaction
// without one allocation per row. The commit loop keeps one and resets it
// at each transaction, so small commits do not allocate a block each. A
// query page copies its rows into one too (blockSize small: the page's
// events keep their blocks alive).
type arena struct {
	block     []byte
	blockSize int // of a new block; 0: 1 MiB
}

// reset makes the last block's space reusable: every slice handed out
// before must be dead (its transaction is over).
func (a *arena) reset() { a.block = a.block[:0] }

// copy returns a copy of b, full: an append by the caller copies rather
// than writing over the next.
func (a *arena) copy(b []byte) []byte {
	if cap(a.block)-len(a.block) < len(b) {
		size := a.blockSize
		if size == 0 {
			size = 1 << 20
		}
		a.block = make([]byte, 0, max(size, len(b)))
	}
	start := len(a.block)
	a.block = append(a.block, b...)
	return a.block[start:len(a.block):len(a.block)]
}
