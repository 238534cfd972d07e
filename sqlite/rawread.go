package sqlite

import (
	"context"
	"fmt"
	"sync"
	"unsafe"

	"modernc.org/libc"
	"modernc.org/libc/sys/types"
	sqlite3 "modernc.org/sqlite/lib"
)

// Verification reads every row of the events, contents, tiles, postings,
// event_ids and event_counts tables once. Through database/sql each row
// costs more than SQLite's own work on it: Rows.Next and Scan convert
// every column to a driver value, the driver copies every blob into a new
// slice, and every column read takes the connection's mutex (the driver
// opens connections SQLITE_OPEN_FULLMUTEX). rawConn reads those scans
// through SQLite's C API itself (modernc.org/sqlite/lib, the library the
// driver wraps): a connection opened SQLITE_OPEN_NOMUTEX, used by one
// goroutine at a time, whose blob columns are read in place.
//
// Only these read-only scans use it; everything else goes through
// database/sql.

// rawConn is a read-only connection to a database file through SQLite's
// C API. It MUST be used by one goroutine at a time (it has no mutex).
type rawConn struct {
	tls *libc.TLS
	db  uintptr
}

// openRawConn opens path for reading as the store's other readers do
// (dsn(path, false): query only, memory-mapped, the same cache and busy
// timeout).
func openRawConn(path string) (*rawConn, error) {
	c := &rawConn{tls: libc.NewTLS()}
	rc, err := c.open(path)
	if err == nil && rc != sqlite3.SQLITE_OK {
		err = c.errorOf(rc)
	}
	for _, p := range append([]string{busyTimeoutPragma}, readerPragmas...) {
		if err == nil {
			err = c.exec("PRAGMA " + p)
		}
	}
	if err != nil {
		c.close()
		return nil, err
	}
	return c, nil
}

// open calls sqlite3_open_v2, which sets c.db whatever its result.
func (c *rawConn) open(path string) (int32, error) {
	name, err := libc.CString(path)
	if err != nil {
		return 0, err
	}
	defer libc.Xfree(c.tls, name)
	pdb := libc.Xmalloc(c.tls, types.Size_t(unsafe.Sizeof(uintptr(0))))
	if pdb == 0 {
		return 0, fmt.Errorf("sqlite: out of memory")
	}
	defer libc.Xfree(c.tls, pdb)
	rc := sqlite3.Xsqlite3_open_v2(c.tls, name, pdb, sqlite3.SQLITE_OPEN_READWRITE|sqlite3.SQLITE_OPEN_NOMUTEX, 0)
	c.db = libc.AtomicLoadPUintptr(pdb)
	return rc, nil
}

// close closes the connection; its statements must be closed first.
func (c *rawConn) close() {
	if c.db != 0 {
		sqlite3.Xsqlite3_close_v2(c.tls, c.db)
		c.db = 0
	}
	c.tls.Close()
}

// errorOf is the error of a result code, with SQLite's message.
func (c *rawConn) errorOf(rc int32) error {
	msg := libc.GoString(sqlite3.Xsqlite3_errstr(c.tls, rc))
	if c.db != 0 {
		if m := libc.GoString(sqlite3.Xsqlite3_errmsg(c.tls, c.db)); m != msg {
			msg += ": " + m
		}
	}
	return fmt.Errorf("sqlite: %s (%d)", msg, rc)
}

// exec runs a statement that returns no rows to read.
func (c *rawConn) exec(query string) error {
	r, err := c.query(context.Background(), query)
	if err != nil {
		return err
	}
	for r.next() {
	}
	return r.close()
}

// query prepares query with its ? bound to args, in order.
func (c *rawConn) query(ctx context.Context, query string, args ...int64) (*rawRows, error) {
	z, err := libc.CString(query)
	if err != nil {
		return nil, err
	}
	defer libc.Xfree(c.tls, z)
	pstmt := libc.Xmalloc(c.tls, types.Size_t(unsafe.Sizeof(uintptr(0))))
	if pstmt == 0 {
		return nil, fmt.Errorf("sqlite: out of memory")
	}
	defer libc.Xfree(c.tls, pstmt)
	if rc := sqlite3.Xsqlite3_prepare_v2(c.tls, c.db, z, -1, pstmt, 0); rc != sqlite3.SQLITE_OK {
		return nil, c.errorOf(rc)
	}
	r := &rawRows{c: c, ctx: ctx, stmt: libc.AtomicLoadPUintptr(pstmt)}
	for i, a := range args {
		if rc := sqlite3.Xsqlite3_bind_int64(c.tls, r.stmt, int32(i+1), a); rc != sqlite3.SQLITE_OK {
			err := c.errorOf(rc)
			r.close()
			return nil, err
		}
	}
	return r, nil
}

// rawRows is a statement being stepped through its rows.
type rawRows struct {
	c    *rawConn
	ctx  context.Context
	stmt uintptr
	rows int
	err  error
	done bool
}

// next steps to the next row; false at the end or on an error (err).
func (r *rawRows) next() bool {
	if r.done {
		return false
	}
	// The context is looked at before the first row and every 1024 after.
	if r.rows++; r.rows%1024 == 1 {
		if r.err = r.ctx.Err(); r.err != nil {
			r.done = true
			return false
		}
	}
	switch rc := sqlite3.Xsqlite3_step(r.c.tls, r.stmt); rc {
	case sqlite3.SQLITE_ROW:
		return true
	case sqlite3.SQLITE_DONE:
	default:
		r.err = r.c.errorOf(rc)
	}
	r.done = true
	return false
}

// int64 is column i of the current row as an integer.
func (r *rawRows) int64(i int) int64 {
	return sqlite3.Xsqlite3_column_int64(r.c.tls, r.stmt, int32(i))
}

// bytes is column i of the current row as bytes, nil if NULL: SQLite's
// own copy, valid only until the next call of next or close (a caller
// that keeps them copies them).
func (r *rawRows) bytes(i int) []byte {
	p := sqlite3.Xsqlite3_column_blob(r.c.tls, r.stmt, int32(i))
	n := sqlite3.Xsqlite3_column_bytes(r.c.tls, r.stmt, int32(i))
	if p == 0 || n == 0 {
		// NULL or empty (the type is asked only then: most values are
		// neither).
		if sqlite3.Xsqlite3_column_type(r.c.tls, r.stmt, int32(i)) == sqlite3.SQLITE_NULL {
			return nil
		}
		return []byte{}
	}
	// p is C memory (SQLite's page or buffer), which Go's GC neither
	// moves nor frees.
	return unsafe.Slice((*byte)(unsafe.Add(unsafe.Pointer(nil), p)), n)
}

// close finalizes the statement and returns the first error met.
func (r *rawRows) close() error {
	if r.stmt != 0 {
		sqlite3.Xsqlite3_finalize(r.c.tls, r.stmt)
		r.stmt = 0
		r.done = true
	}
	return r.err
}

// rawPool keeps verification's raw connections for reuse. It never
// waits: get opens a connection when none is idle, so a reader never
// waits for one another holds.
type rawPool struct {
	path   string
	mu     sync.Mutex
	idle   []*rawConn
	closed bool
}

// get returns an idle connection or opens one.
func (p *rawPool) get() (*rawConn, error) {
	p.mu.Lock()
	if n := len(p.idle); n > 0 {
		c := p.idle[n-1]
		p.idle = p.idle[:n-1]
		p.mu.Unlock()
		return c, nil
	}
	p.mu.Unlock()
	return openRawConn(p.path)
}

// put gives a connection back, its statements closed (closing it if the
// pool was closed meanwhile).
func (p *rawPool) put(c *rawConn) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		c.close()
		return
	}
	p.idle = append(p.idle, c)
}

// close closes the idle connections, and those given back later.
func (p *rawPool) close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.idle {
		c.close()
	}
	p.idle, p.closed = nil, true
}
