// Package postgres is Veritrail's scale-out store: the same veritrail.Store
// as the embedded SQLite store, on a PostgreSQL the organization already
// runs, shared by any number of stateless Veritrail nodes.
//
// Appends from every node of one organization serialize on a row lock of
// the organization's log head, held for the length of the group-commit
// transaction: seqs stay gap-free and the Merkle tree consistent whichever
// node writes, and a node that dies mid-commit leaves nothing (PostgreSQL
// rolls its transaction back). Within a node, organizations are spread
// over a few commit lanes (Options.CommitLanes, internal/commitq), so
// organizations of different lanes commit in parallel; an organization
// always commits through the same lane. Events and contents are
// partitioned by month of event time; full text uses tsvector columns with
// GIN indexes; every key starts with org_id. Background work runs once
// across nodes through leases (Lease).
package postgres

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	veritrail "github.com/veritrail/veritrail"
	"github.com/veritrail/veritrail/internal/commitq"
	"github.com/veritrail/veritrail/internal/statcol"
	"github.com/veritrail/veritrail/tlog"
)

//go:embed migrations/*.sql
var migrations embed.FS

// Options configure a Store.
type Options struct {
	Logger   *slog.Logger
	Observer veritrail.Observer
	Now      func() time.Time
	// MaxCommitEvents caps the events of one group commit (default 10,000).
	MaxCommitEvents int
	// MaxConns caps the connection pool (default 16).
	MaxConns int
	// CommitLanes is how many group commits this node runs at once
	// (default 4, at most MaxConns/2): each organization belongs to one
	// lane, so organizations of different lanes commit in parallel, each
	// lane's transaction holding one connection.
	CommitLanes int
	// CommitTimeout bounds one group commit (default 15 s): a database
	// that stops answering fails the batch, whose callers are told to
	// retry (503), rather than holding them. A new connection gets at most
	// a third of it to be made.
	CommitTimeout time.Duration
	// StatsCacheBytes bounds the columns of hours of events this node
	// keeps for stats with filters or text (statcols.go; default
	// DefaultStatsCacheBytes, about 24 bytes per event).
	StatsCacheBytes int
}

// Store is a veritrail.Store on PostgreSQL.
type Store struct {
	pool *pgxpool.Pool
	opts Options
	log  *slog.Logger
	obs  veritrail.Observer
	now  func() time.Time

	// commits announces new events (veritrail.CommitPublisher).
	commits veritrail.Commits

	queue   *commitq.Queue
	closing chan struct{} // closed by Close
	stopped chan struct{} // closed when partitionLoop returns
	once    sync.Once

	partMu sync.Mutex
	parts  map[string]bool // partitions known to exist

	generation generations // token revocation generations (revocations.go)

	hours      *statcol.Cache // columns of hours of events, for stats (statcols.go)
	warming    atomic.Bool    // a warm-up of hours runs (warmHours)
	background sync.WaitGroup // warm-ups, which Close waits for
}

// Open connects to url, applies migrations and starts the commit lanes.
func Open(ctx context.Context, url string, opts Options) (*Store, error) {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Observer == nil {
		opts.Observer = veritrail.NopObserver{}
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.MaxCommitEvents <= 0 {
		opts.MaxCommitEvents = 10000
	}
	if opts.MaxConns <= 0 {
		opts.MaxConns = 16
	}
	if opts.CommitLanes <= 0 {
		opts.CommitLanes = 4
	}
	opts.CommitLanes = max(1, min(opts.CommitLanes, opts.MaxConns/2))
	if opts.CommitTimeout <= 0 {
		opts.CommitTimeout = 15 * time.Second
	}
	if opts.StatsCacheBytes <= 0 {
		opts.StatsCacheBytes = DefaultStatsCacheBytes
	}
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("postgres: the database URL: %w (expected postgres://user:password@host:5432/db)", err)
	}
	cfg.MaxConns = int32(opts.MaxConns)
	if cfg.ConnConfig.ConnectTimeout == 0 || cfg.ConnConfig.ConnectTimeout > opts.CommitTimeout/3 {
		// A database that is down or cut off fails fast (the URL's
		// connect_timeout may shorten this, not lengthen it).
		cfg.ConnConfig.ConnectTimeout = opts.CommitTimeout / 3
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("postgres: %w", err)
	}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("postgres: cannot reach the database: %w", err)
	}
	s := &Store{
		pool: pool, opts: opts, log: opts.Logger, obs: opts.Observer, now: opts.Now,
		closing: make(chan struct{}), stopped: make(chan struct{}), parts: map[string]bool{},
		hours: statcol.NewCache(opts.StatsCacheBytes),
	}
	if err := s.migrate(ctx); err != nil {
		pool.Close()
		return nil, err
	}
	if err := s.ensurePartitions(ctx, s.now()); err != nil {
		pool.Close()
		return nil, err
	}
	writers := make([]commitq.Writer, opts.CommitLanes)
	for i := range writers {
		writers[i] = &writer{s: s, heads: map[int64]*tlog.Head{}}
	}
	// Commits are announced to subscribers (forwarding's feed, the rules
	// engine).
	s.queue = commitq.New(commitq.Config{MaxBatchEvents: opts.MaxCommitEvents, Observer: s.obs, Logger: s.log, Committed: s.commits.Publish, KeepEnvelopes: s.commits.EnvelopesWanted,
		CommitTimeout: opts.CommitTimeout}, writers...)
	go s.partitionLoop()
	return s, nil
}

// Close finishes queued appends and closes the pool.
func (s *Store) Close() error {
	s.once.Do(func() {
		s.queue.Close()
		close(s.closing)
		<-s.stopped
		s.background.Wait()
		s.pool.Close()
	})
	return nil
}

// partitionLoop creates the coming months' partitions every hour.
func (s *Store) partitionLoop() {
	defer close(s.stopped)
	tick := time.NewTicker(time.Hour)
	defer tick.Stop()
	for {
		select {
		case <-s.closing:
			return
		case <-tick.C:
			if err := s.ensurePartitions(context.Background(), s.now()); err != nil {
				s.log.Error("creating the next months' partitions; will retry", slog.Any("err", err))
			}
		}
	}
}

// migrate applies the embedded migrations not applied yet, under an
// advisory lock so nodes starting together do not race.
func (s *Store) migrate(ctx context.Context) error {
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		return err
	}
	defer conn.Release()
	const lockID = 0x7665726974726c // "veritrl"
	if _, err := conn.Exec(ctx, `SELECT pg_advisory_lock($1)`, int64(lockID)); err != nil {
		return err
	}
	defer conn.Exec(context.Background(), `SELECT pg_advisory_unlock($1)`, int64(lockID))
	if _, err := conn.Exec(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (name text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())`); err != nil {
		return fmt.Errorf("postgres: migrations table: %w", err)
	}
	names, err := fs.Glob(migrations, "migrations/*.sql")
	if err != nil {
		return err
	}
	sort.Strings(names)
	for _, name := range names {
		var done bool
		if err := conn.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM schema_migrations WHERE name = $1)`, name).Scan(&done); err != nil {
			return err
		}
		if done {
			continue
		}
		body, err := migrations.ReadFile(name)
		if err != nil {
			return err
		}
		tx, err := conn.Begin(ctx)
		if err != nil {
			return err
		}
		for _, stmt := range statements(string(body)) {
			if _, err := tx.Exec(ctx, stmt); err != nil {
				tx.Rollback(ctx)
				return fmt.Errorf("postgres: migration %s: %w", name, err)
			}
		}
		if step := goMigrations[name]; step != nil {
			if err := step(ctx, tx); err != nil {
				tx.Rollback(ctx)
				return fmt.Errorf("postgres: migration %s: %w", name, err)
			}
		}
		if _, err := tx.Exec(ctx, `INSERT INTO schema_migrations (name) VALUES ($1)`, name); err != nil {
			tx.Rollback(ctx)
			return err
		}
		if err := tx.Commit(ctx); err != nil {
			return err
		}
	}
	return nil
}

// Partitions are one calendar month (UTC) of event time each. Events older
// than the first partition, or in a month without one, land in the default
// partition.

func monthStart(t time.Time) time.Time {
	t = t.UTC()
	return time.Date(t.Year(), t.Month(), 1, 0, 0, 0, 0, time.UTC)
}

func partitionName(table string, month time.Time) string {
	return fmt.Sprintf("%s_p%04d%02d", table, month.Year(), int(month.Month()))
}

// ensurePartitions creates the partitions from the newest existing one (or
// last month, on an empty database) to two months after now. Ingest refuses
// events more than a day in the future, so the default partition never
// holds rows of a month created later.
func (s *Store) ensurePartitions(ctx context.Context, now time.Time) error {
	last := monthStart(now).AddDate(0, 2, 0)
	s.partMu.Lock()
	known := s.parts[partitionName("events", last)]
	s.partMu.Unlock()
	if known {
		return nil
	}
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return err
	}
	defer tx.Rollback(ctx)
	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(7665726974727)`); err != nil {
		return err
	}
	var newest *string
	if err := tx.QueryRow(ctx, `SELECT max(c.relname::text) FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
		JOIN pg_class p ON p.oid = i.inhparent WHERE p.relname = 'events' AND c.relname LIKE 'events_p%'`).Scan(&newest); err != nil {
		return err
	}
	from := monthStart(now).AddDate(0, -1, 0)
	if newest != nil {
		t, err := time.Parse("events_p200601", *newest)
		if err != nil {
			return fmt.Errorf("postgres: partition %s: %w", *newest, err)
		}
		from = t.AddDate(0, 1, 0)
	}
	var created []string
	for m := from; !m.After(last); m = m.AddDate(0, 1, 0) {
		lo, hi := m.UnixNano(), m.AddDate(0, 1, 0).UnixNano()
		for _, table := range []string{"events", "contents"} {
			name := partitionName(table, m)
			if _, err := tx.Exec(ctx, fmt.Sprintf(`CREATE TABLE IF NOT EXISTS %s PARTITION OF %s FOR VALUES FROM (%d) TO (%d)`,
				name, table, lo, hi)); err != nil {
				return fmt.Errorf("postgres: create partition %s: %w", name, err)
			}
			created = append(created, name)
		}
	}
	if err := tx.Commit(ctx); err != nil {
		return err
	}
	s.partMu.Lock()
	for _, n := range created {
		s.parts[n] = true
	}
	s.parts[partitionName("events", last)] = true
	s.partMu.Unlock()
	return nil
}

// dropEmptyPartitions drops month partitions (events and contents) older
// than before that hold no rows any more: retention emptied them for every
// organization. DROP gives the space back at once, unlike deleted rows.
func (s *Store) dropEmptyPartitions(ctx context.Context, before time.Time) (int, error) {
	rows, err := s.pool.Query(ctx, `SELECT c.relname::text FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
		JOIN pg_class p ON p.oid = i.inhparent WHERE p.relname = 'events' AND c.relname LIKE 'events_p%' ORDER BY 1`)
	if err != nil {
		return 0, err
	}
	names, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return 0, err
	}
	dropped := 0
	for _, name := range names {
		m, err := time.Parse("events_p200601", name)
		if err != nil || !m.AddDate(0, 1, 0).Before(before) {
			continue
		}
		cname := "contents" + strings.TrimPrefix(name, "events")
		var any bool
		if err := s.pool.QueryRow(ctx, fmt.Sprintf(`SELECT EXISTS (SELECT 1 FROM %s) OR EXISTS (SELECT 1 FROM %s)`, name, cname)).Scan(&any); err != nil {
			return dropped, err
		}
		if any {
			continue
		}
		if _, err := s.pool.Exec(ctx, fmt.Sprintf(`DROP TABLE IF EXISTS %s, %s`, name, cname)); err != nil {
			return dropped, err
		}
		dropped++
	}
	return dropped, nil
}

// pgErr maps PostgreSQL errors to coded errors where they mean something
// to the caller.
func pgErr(err error, conflict string) error {
	var pe *pgconn.PgError
	if errors.As(err, &pe) && pe.Code == "23505" && conflict != "" {
		return veritrail.Errorf(veritrail.EConflict, "%s", conflict)
	}
	return err
}

func nsOrNil(t *time.Time) *int64 {
	if t == nil {
		return nil
	}
	n := t.UnixNano()
	return &n
}

func timePtr(ns *int64) *time.Time {
	if ns == nil {
		return nil
	}
	t := time.Unix(0, *ns).UTC()
	return &t
}

// Lease takes or renews the lease called name for holder until ttl from
// now, and reports whether holder has it. A lease whose holder stopped
// renewing it passes to the next node that asks once it expires.
func (s *Store) Lease(ctx context.Context, name, holder string, ttl time.Duration) (bool, error) {
	var got string
	// The proposed row carries the time of asking (taken_at): ON CONFLICT
	// … WHERE compares with it rather than calling now(), which Citus
	// refuses there (only immutable functions).
	err := s.pool.QueryRow(ctx, `INSERT INTO leases (name, holder, expires_at, taken_at)
		VALUES ($1, $2, now() + $3 * interval '1 millisecond', now())
		ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at, taken_at = excluded.taken_at
		WHERE leases.holder = excluded.holder OR leases.expires_at < excluded.taken_at
		RETURNING holder`, name, holder, ttl.Milliseconds()).Scan(&got)
	if errors.Is(err, pgx.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	return got == holder, nil
}

// Commits implements veritrail.CommitPublisher: it announces every commit
// of new events, whichever process path appended them.
func (s *Store) Commits() *veritrail.Commits { return &s.commits }
