// Package sqlite is Veritrail's embedded store: one data directory holding a
// SQLite database (WAL mode, fully synced commits) for organizations,
// tokens, events, content, the Merkle tree and the search index, and a
// second database for the full-text index, maintained off the commit path.
// It uses modernc.org/sqlite, a pure-Go SQLite: the binary builds anywhere
// without a C compiler.
package sqlite

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	veritrail "github.com/veritrail/veritrail"
	"github.com/veritrail/veritrail/internal/commitq"
	"github.com/veritrail/veritrail/internal/statcol"
	sqlite3 "modernc.org/sqlite"
	sqlite3lib "modernc.org/sqlite/lib"
)

//go:embed migrations/*.sql
var migrations embed.FS

// File names inside the data directory.
const (
	MainFile = "veritrail.db"
	FTSFile  = "fts.db"
)

// Options configure a Store.
type Options struct {
	// Now is the clock (received_at, retention). Default time.Now.
	Now func() time.Time
	// Logger receives operational logs. Default slog.Default().
	Logger *slog.Logger
	// Observer receives commit and query measurements. Optional.
	Observer veritrail.Observer
	// MaxCommitEvents caps the events merged into one transaction.
	MaxCommitEvents int
	// BucketShift sets the index bucket size (2^BucketShift events) of a
	// new store; an existing store keeps its own. Default 14 (serve's
	// --index-bucket-shift).
	BucketShift uint
	// NoWorkers opens the store for administration (organizations, tokens)
	// beside a running server: no writer, no full-text indexer.
	NoWorkers bool
	// ReadOnly opens an existing store for reading only (offline tools such
	// as verify --data); implies NoWorkers.
	ReadOnly bool
	// StatsCacheBytes bounds the stats columns of index buckets kept in
	// memory (DefaultStatsCacheBytes if 0); the buckets' event times
	// take up to four thirds of it besides, so that both hold the same
	// events (eight bytes of time per event, one byte per counted field
	// of six). A filtered stats call visits every bucket of its window in
	// turn: a cache smaller than that keeps none of them for the next
	// call (at 10M events, 64 MB of times made such a call 300 ms
	// instead of 40).
	StatsCacheBytes int
}

// DefaultStatsCacheBytes is the default bound of Options.StatsCacheBytes:
// one byte per event and counted field, six fields of some 16M events.
const DefaultStatsCacheBytes = 96 << 20

func statsCacheBytes(o Options) int {
	if o.StatsCacheBytes > 0 {
		return o.StatsCacheBytes
	}
	return DefaultStatsCacheBytes
}

// Store is the SQLite implementation of veritrail.Store.
type Store struct {
	dir  string
	opts Options
	log  *slog.Logger
	now  func() time.Time
	obs  veritrail.Observer

	// commits announces new events (veritrail.CommitPublisher).
	commits veritrail.Commits

	wdb *sql.DB // one connection: the single writer
	rdb *sql.DB // readers, in WAL snapshots
	// vdb is verification's own pool of readers (verifyDB), opened on
	// first use.
	vdbMu sync.Mutex
	vdb   *sql.DB
	// vraw is verification's pool of connections through SQLite's C API
	// for its full scans (rawConn), opened with vdb.
	vraw *rawPool
	cdb  *sql.DB // one connection for background WAL checkpoints

	// queue is the commit queue: one lane, whose writer is the single
	// writer of the store. Nil without workers.
	queue   *commitq.Queue
	writer  *writer
	closing chan struct{} // closed when Close starts
	closeMu sync.Mutex
	closed  bool

	fts     *ftsIndex
	revoked *revocations // token revocations (revocations.go)
	lock    *os.File
	shift   uint // index bucket shift, from the meta table

	tails tailSet // the postings tails (tail.go)
	// tailEvents and tailAge are tailFlushEvents and tailMaxAge when the
	// store was opened (tails.idleAt is tailIdleEvents).
	tailEvents int
	tailAge    time.Duration
	tailDone   chan struct{} // closed when tailLoop returns

	times   *statcol.Cache // decoded bucket times (bucketData)
	columns *statcol.Cache // bucket columns of top fields (statcol.Column), for stats

	ckptDone   chan struct{}
	outboxDone chan struct{}
}

var _ veritrail.Store = (*Store)(nil)

func dsn(path string, write bool) string {
	q := url.Values{}
	q.Add("_pragma", busyTimeoutPragma)
	q.Add("_pragma", "foreign_keys(ON)")
	if write {
		q.Add("_pragma", "journal_mode(WAL)")
		// FULL: a commit is synced before it returns. Group commit makes
		// that one fsync per batch, not per event.
		q.Add("_pragma", "synchronous(FULL)")
		q.Add("_pragma", "cache_size(-65536)")
		// Checkpoints run in the background (checkpointLoop), off the commit
		// path; the writer only checkpoints itself if the WAL runs away.
		q.Add("_pragma", "wal_autocheckpoint(65536)")
		q.Add("_pragma", "journal_size_limit(67108864)")
		// Deleted content is overwritten, not just unlinked: what retention
		// and erasure remove is gone from the file.
		q.Add("_pragma", "secure_delete(ON)")
		q.Add("_txlock", "immediate")
	} else {
		for _, p := range readerPragmas {
			q.Add("_pragma", p)
		}
	}
	return "file:" + path + "?" + q.Encode()
}

// busyTimeoutPragma and readerPragmas set up every connection and the
// read-only ones (dsn's, and verification's rawConn).
const busyTimeoutPragma = "busy_timeout(10000)"

var readerPragmas = []string{
	"query_only(1)",
	// Reads through a memory map: no read syscall or page copy per page.
	"mmap_size(1073741824)",
	"cache_size(-32768)",
}

// Open opens (creating if needed) the store in directory dir.
func Open(ctx context.Context, dir string, opts Options) (*Store, error) {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Observer == nil {
		opts.Observer = veritrail.NopObserver{}
	}
	if opts.MaxCommitEvents <= 0 {
		opts.MaxCommitEvents = 20000
	}
	if opts.ReadOnly {
		opts.NoWorkers = true
		if _, err := os.Stat(filepath.Join(dir, MainFile)); err != nil {
			return nil, fmt.Errorf("no Veritrail data in %s: %w", dir, err)
		}
	} else if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("create data directory: %w", err)
	}
	s := &Store{
		dir: dir, opts: opts, log: opts.Logger, now: opts.Now, obs: opts.Observer,
		closing:    make(chan struct{}),
		tailEvents: tailFlushEvents, tailAge: tailMaxAge,
		tails:   tailSet{idleAt: max(1, tailIdleEvents)},
		times:   statcol.NewCache(statsCacheBytes(opts) * 4 / 3),
		columns: statcol.NewCache(statsCacheBytes(opts)),
	}
	path := filepath.Join(dir, MainFile)
	var err error
	if s.wdb, err = sql.Open("sqlite", dsn(path, true)); err != nil {
		return nil, err
	}
	s.wdb.SetMaxOpenConns(1)
	s.wdb.SetMaxIdleConns(1)
	s.wdb.SetConnMaxLifetime(0)
	s.wdb.SetConnMaxIdleTime(0)
	if err := s.migrate(ctx); err != nil {
		s.wdb.Close()
		return nil, fmt.Errorf("migrate %s: %w", path, err)
	}
	if err := s.loadMeta(ctx); err != nil {
		s.wdb.Close()
		return nil, err
	}
	if s.rdb, err = sql.Open("sqlite", dsn(path, false)); err != nil {
		s.wdb.Close()
		return nil, err
	}
	s.rdb.SetMaxOpenConns(4)
	s.rdb.SetMaxIdleConns(4)
	s.rdb.SetConnMaxIdleTime(0)
	s.rdb.SetConnMaxLifetime(0)

	if s.revoked, err = openRevocations(dir, opts.ReadOnly); err != nil {
		s.rdb.Close()
		s.wdb.Close()
		return nil, err
	}
	if s.fts, err = openFTS(ctx, s, filepath.Join(dir, FTSFile), opts.ReadOnly); err != nil {
		s.revoked.close()
		s.rdb.Close()
		s.wdb.Close()
		return nil, err
	}
	if opts.ReadOnly || opts.NoWorkers {
		return s, nil
	}
	// The writer keeps each log's head in memory, so exactly one process
	// may append to a data directory.
	var ws *writeStmts
	if s.lock, err = lockDir(dir); err == nil {
		if s.cdb, err = sql.Open("sqlite", dsn(path, false)); err == nil {
			s.cdb.SetMaxOpenConns(1)
			ws, err = prepareWriteStmts(ctx, s.wdb)
		}
	}
	if err != nil {
		s.Close()
		return nil, err
	}
	s.writer = &writer{s: s, stmts: ws, heads: map[int64]*orgState{}}
	// Commits are announced to subscribers (forwarding's feed, the rules
	// engine).
	s.queue = commitq.New(commitq.Config{MaxBatchEvents: opts.MaxCommitEvents, Observer: s.obs, Logger: s.log, Committed: s.commits.Publish, KeepEnvelopes: s.commits.EnvelopesWanted}, s.writer)
	s.pollGeneration(ctx)
	// A tail left by a crash is rebuilt from the events and written out.
	if err := s.flushStoredTails(ctx); err != nil {
		s.Close()
		return nil, err
	}
	s.tailDone = make(chan struct{})
	go s.tailLoop()
	s.ckptDone = make(chan struct{})
	s.outboxDone = make(chan struct{})
	go s.checkpointLoop()
	go s.outboxLoop()
	s.fts.start()
	return s, nil
}

// Dir is the data directory.
func (s *Store) Dir() string { return s.dir }

// Close stops accepting appends, commits what was queued, stops the
// full-text indexer after it catches up, and closes the databases.
func (s *Store) Close() error {
	s.closeMu.Lock()
	if s.closed {
		s.closeMu.Unlock()
		return nil
	}
	s.closed = true
	close(s.closing)
	s.closeMu.Unlock()
	if s.outboxDone != nil {
		<-s.outboxDone
	}
	if s.tailDone != nil {
		<-s.tailDone
	}
	if s.queue != nil {
		s.flushTails()
		s.queue.Close()
	}
	if s.ckptDone != nil {
		<-s.ckptDone
	}
	var errs []error
	if s.cdb != nil {
		errs = append(errs, s.cdb.Close())
	}
	if s.fts != nil {
		errs = append(errs, s.fts.close())
	}
	if s.revoked != nil {
		errs = append(errs, s.revoked.close())
	}
	if s.rdb != nil {
		errs = append(errs, s.rdb.Close())
	}
	s.vdbMu.Lock()
	if s.vdb != nil {
		errs = append(errs, s.vdb.Close())
		s.vraw.close()
	}
	s.vdbMu.Unlock()
	if s.writer != nil {
		s.writer.stmts.close()
	}
	if s.lock != nil {
		// Fold the WAL into the database so the files at rest are whole.
		// Only the process holding the directory lock: a TRUNCATE
		// checkpoint waits for every reader and holds off the writer, so a
		// second server refused at lockDir must not stall the running one.
		if _, err := s.wdb.Exec(`PRAGMA wal_checkpoint(TRUNCATE)`); err != nil {
			errs = append(errs, err)
		}
	}
	errs = append(errs, s.wdb.Close())
	if s.lock != nil {
		errs = append(errs, s.lock.Close())
	}
	return errors.Join(errs...)
}

func (s *Store) migrate(ctx context.Context) error {
	if _, err := s.wdb.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
		version TEXT PRIMARY KEY, applied_at INTEGER NOT NULL)`); err != nil {
		return err
	}
	names, err := fs.Glob(migrations, "migrations/*.sql")
	if err != nil {
		return err
	}
	for version := range goMigrations {
		names = append(names, version)
	}
	sort.Slice(names, func(i, j int) bool { return filepath.Base(names[i]) < filepath.Base(names[j]) })
	for _, name := range names {
		version := strings.TrimSuffix(filepath.Base(name), ".sql")
		var n int
		if err := s.wdb.QueryRowContext(ctx, `SELECT count(*) FROM schema_migrations WHERE version = ?`, version).Scan(&n); err != nil {
			return err
		}
		if n > 0 {
			continue
		}
		tx, err := s.wdb.BeginTx(ctx, nil)
		if err != nil {
			return err
		}
		if step := goMigrations[name]; step != nil {
			err = step(ctx, tx)
		} else {
			var body []byte
			if body, err = migrations.ReadFile(name); err == nil {
				_, err = tx.ExecContext(ctx, string(body))
			}
		}
		if err != nil {
			tx.Rollback()
			return fmt.Errorf("%s: %w", name, err)
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)`, version, s.now().UnixNano()); err != nil {
			tx.Rollback()
			return err
		}
		if err := tx.Commit(); err != nil {
			return err
		}
	}
	return nil
}

// checkpointLoop copies committed WAL frames into the database file every
// 200ms from its own connection, so the writer never pays for it.
// PASSIVE never blocks the writer or readers. Every second it also reads
// the token revocation generation (revocations.go).
func (s *Store) checkpointLoop() {
	defer close(s.ckptDone)
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	for n := 1; ; n++ {
		select {
		case <-s.closing:
			return
		case <-tick.C:
		}
		if _, err := s.cdb.Exec(`PRAGMA wal_checkpoint(PASSIVE)`); err != nil {
			s.log.Warn("background WAL checkpoint failed", slog.Any("err", err))
		}
		if n%5 == 0 {
			s.pollGeneration(context.Background())
		}
	}
}

// loadMeta reads the store-wide settings, fixing them on first open.
func (s *Store) loadMeta(ctx context.Context) error {
	shift := s.opts.BucketShift
	if shift == 0 {
		shift = DefaultBucketShift
	}
	if shift < MinBucketShift || shift > MaxBucketShift {
		return fmt.Errorf("bucket shift %d is outside %d..%d", shift, MinBucketShift, MaxBucketShift)
	}
	if !s.opts.ReadOnly {
		if _, err := s.wdb.ExecContext(ctx, `INSERT INTO meta (key, value) VALUES ('bucket_shift', ?) ON CONFLICT DO NOTHING`,
			fmt.Sprint(shift)); err != nil {
			return err
		}
	}
	var v string
	if err := s.wdb.QueryRowContext(ctx, `SELECT value FROM meta WHERE key = 'bucket_shift'`).Scan(&v); err != nil {
		return fmt.Errorf("read store settings: %w", err)
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < MinBucketShift || n > MaxBucketShift {
		return fmt.Errorf("store setting bucket_shift %q is invalid", v)
	}
	s.shift = uint(n)
	return nil
}

// rid packs an organization and a seq into the events/contents key.
func rid(org, seq int64) int64 { return org<<40 | seq }

const maxOrgID = 1<<23 - 1

// isUniqueViolation reports a UNIQUE or PRIMARY KEY constraint failure.
func isUniqueViolation(err error) bool {
	var se *sqlite3.Error
	if errors.As(err, &se) {
		return se.Code() == sqlite3lib.SQLITE_CONSTRAINT_UNIQUE || se.Code() == sqlite3lib.SQLITE_CONSTRAINT_PRIMARYKEY
	}
	return false
}

// isForeignKeyViolation reports a FOREIGN KEY constraint failure: every
// foreign key of the schema names an organization.
func isForeignKeyViolation(err error) bool {
	var se *sqlite3.Error
	return errors.As(err, &se) && se.Code() == sqlite3lib.SQLITE_CONSTRAINT_FOREIGNKEY
}

func nsOrNil(t *time.Time) any {
	if t == nil {
		return nil
	}
	return t.UnixNano()
}

func timePtr(ns sql.NullInt64) *time.Time {
	if !ns.Valid {
		return nil
	}
	t := time.Unix(0, ns.Int64).UTC()
	return &t
}

// lockDir takes an exclusive lock on the data directory for this process.
func lockDir(dir string) (*os.File, error) {
	f, err := os.OpenFile(filepath.Join(dir, "veritrail.lock"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		return nil, fmt.Errorf("another Veritrail server is using %s (stop it, or use --data with another directory): %w", dir, err)
	}
	return f, nil
}

// Commits implements veritrail.CommitPublisher: it announces every commit
// of new events, whichever process path appended them.
func (s *Store) Commits() *veritrail.Commits { return &s.commits }
