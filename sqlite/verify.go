package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"hash/maphash"
	"math/bits"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"time"

	veritrail "github.com/veritrail/veritrail"
	"github.com/veritrail/veritrail/verify"
)

// Offline verification (veritrail verify --data): the store's logs as a
// verify.Source, and the check of the columns it derives from envelopes
// for search. Open the store read-only; stop the server, or verify a copy,
// for a consistent view.

// VerifySource returns the store's logs as a verify.Source.
func (s *Store) VerifySource() verify.Source { return verifySource{s} }

type verifySource struct{ s *Store }

// Logs implements verify.Source: every organization.
func (v verifySource) Logs(ctx context.Context) ([]verify.LogRef, error) {
	orgs, err := v.s.ListOrgs(ctx)
	if err != nil {
		return nil, err
	}
	prefix, err := v.s.Setting(ctx, "log_origin_prefix", "")
	if err != nil && veritrail.ErrorCode(err) != veritrail.ENotFound {
		return nil, err
	}
	var out []verify.LogRef
	for _, o := range orgs {
		ref := verify.LogRef{Org: o.Name, ID: o.ID}
		if prefix != "" {
			ref.Origin = prefix + "/" + o.Name
		}
		out = append(out, ref)
	}
	return out, nil
}

// Open implements verify.Source.
func (v verifySource) Open(_ context.Context, ref verify.LogRef) (verify.LogReader, error) {
	db, err := v.s.verifyDB()
	if err != nil {
		return nil, err
	}
	return &verifyLog{s: v.s, db: db, raw: v.s.vraw, org: ref.ID}, nil
}

// verifyReaders is how many readers read a log's events at once
// (verify.ConcurrentReader): reading rows through the pure-Go driver is
// most of a check's CPU, so one per core of a small machine.
const verifyReaders = 2

// verifyDB returns verification's own pool of read connections: enough
// for verifyReaders readers of three cursors each, the index checker's
// two, and its re-reads, so that none waits for another (a reader waiting
// for a connection that the caller's loop holds would never get it), and
// the server's readers never wait for a check.
func (s *Store) verifyDB() (*sql.DB, error) {
	s.vdbMu.Lock()
	defer s.vdbMu.Unlock()
	if s.vdb == nil {
		db, err := sql.Open("sqlite", dsn(filepath.Join(s.dir, MainFile), false))
		if err != nil {
			return nil, err
		}
		db.SetMaxOpenConns(3*verifyReaders + 8)
		db.SetMaxIdleConns(3*verifyReaders + 8)
		s.vdb = db
		s.vraw = &rawPool{path: filepath.Join(s.dir, MainFile)}
	}
	return s.vdb, nil
}

// verifyLog reads one organization's log as stored.
type verifyLog struct {
	s   *Store
	db  *sql.DB  // verifyDB
	raw *rawPool // the full scans' connections
	org int64
}

// ConcurrentReads implements verify.ConcurrentReader: each Events call
// reads on connections of its own.
func (l *verifyLog) ConcurrentReads() int { return verifyReaders }

// Info implements verify.LogReader.
func (l *verifyLog) Info(ctx context.Context) (*verify.Info, error) {
	size, _, err := l.s.LogHead(ctx, l.org)
	if err != nil {
		return nil, err
	}
	info := &verify.Info{Size: size, StoredLeaves: true}
	for from := int64(0); ; {
		cps, err := l.s.Checkpoints(ctx, l.org, from, 1000)
		if err != nil {
			return nil, err
		}
		for _, cp := range cps {
			info.Checkpoints = append(info.Checkpoints, cp.Note)
		}
		if len(cps) < 1000 {
			return info, nil
		}
		from = cps[len(cps)-1].Size + 1
	}
}

// Removals implements verify.LogReader.
func (l *verifyLog) Removals(ctx context.Context) ([]*veritrail.Removal, error) {
	return l.s.Removals(ctx, l.org, 0, 1<<30)
}

// LeafTile implements verify.LogReader.
func (l *verifyLog) LeafTile(ctx context.Context, index int64) ([]byte, error) {
	return l.s.ReadTile(ctx, l.org, 0, uint64(index))
}

// Record implements verify.RecordReader.
func (l *verifyLog) Record(ctx context.Context, id string) (envelope, content []byte, err error) {
	ev, err := l.s.EventByID(ctx, l.org, id, true)
	if err != nil {
		return nil, nil, err
	}
	return ev.Envelope, ev.Content, nil
}

// Events implements verify.LogReader. It reads the events and contents
// tables as two sequential scans merged by key (a join would seek into
// contents for every event), and with each event its stored leaf hash
// (Event.Leaf) from a third scan, of the level-0 tiles: one query per
// 256 events would cost the checker's ordered loop more than the rest of
// an event's checks. The three run on one connection of its own through
// SQLite's C API (rawConn), and the event's slices point into SQLite's
// pages until fn returns.
func (l *verifyLog) Events(ctx context.Context, from, to int64, fn func(*verify.Event) error) error {
	conn, err := l.raw.get()
	if err != nil {
		return err
	}
	defer l.raw.put(conn)
	lo, hi := rid(l.org, from), rid(l.org+1, 0)
	if to < 1<<40 {
		hi = rid(l.org, to)
	}
	evs, err := conn.query(ctx, `SELECT rid, envelope FROM events WHERE rid >= ? AND rid < ? ORDER BY rid`, lo, hi)
	if err != nil {
		return err
	}
	defer evs.close()
	cts, err := conn.query(ctx, `SELECT rid, salt, body FROM contents WHERE rid >= ? AND rid < ? ORDER BY rid`, lo, hi)
	if err != nil {
		return err
	}
	defer cts.close()
	tilesTo := int64(1 << 62)
	if to < 1<<40 {
		tilesTo = (to + 255) / 256
	}
	tls, err := conn.query(ctx, `SELECT idx, hashes FROM tiles WHERE org_id = ? AND level = 0 AND idx >= ? AND idx < ? ORDER BY idx`, l.org, from/256, tilesTo)
	if err != nil {
		return err
	}
	defer tls.close()
	var (
		tile      int64 = -1
		tileBytes []byte
		tilesLeft = true
	)
	// leafOf returns seq's stored leaf hash (nil if none is stored).
	leafOf := func(seq int64) ([]byte, error) {
		for tilesLeft && tile < seq/256 {
			if !tls.next() {
				tilesLeft, tileBytes = false, nil
				return nil, tls.err
			}
			tile, tileBytes = tls.int64(0), tls.bytes(1)
		}
		off := int(seq%256) * 32
		if tile != seq/256 || off+32 > len(tileBytes) {
			return nil, nil
		}
		return tileBytes[off : off+32 : off+32], nil
	}
	var (
		cr           int64 = -1
		salt, body   []byte
		contentsLeft = true
	)
	nextContent := func() error {
		if !contentsLeft {
			return nil
		}
		if !cts.next() {
			contentsLeft, salt, body = false, nil, nil
			cr = hi
			return cts.err
		}
		cr, salt, body = cts.int64(0), cts.bytes(1), cts.bytes(2)
		return nil
	}
	if err := nextContent(); err != nil {
		return err
	}
	base := rid(l.org, 0)
	var ev verify.Event
	for evs.next() {
		er := evs.int64(0)
		for contentsLeft && cr < er {
			if err := nextContent(); err != nil {
				return err
			}
		}
		ev = verify.Event{Seq: er - base, Envelope: evs.bytes(1)}
		if ev.Leaf, err = leafOf(ev.Seq); err != nil {
			return err
		}
		if cr == er {
			ev.Content, ev.Salt = body, salt
			if ev.Content == nil {
				ev.Content = []byte{} // a row with an empty body is still content
			}
		}
		if err := fn(&ev); err != nil {
			return err
		}
	}
	return evs.err
}

// IndexChecker implements verify.IndexSource.
func (l *verifyLog) IndexChecker(ctx context.Context, opts verify.IndexOptions) (verify.IndexChecker, error) {
	c := &indexChecker{s: l.s, db: l.db, raw: l.raw, ctx: ctx, org: l.org, opts: opts, fail: opts.Fail, bucket: -1,
		stored: make(chan storedBucketSum, 64), storedID: make(chan storedIDSum, 1), storedCounts: make(chan storedIDSum, 1)}
	// A store with a writer first writes the organization's postings tail
	// out, so that every event's index entries are in the table and
	// checked against its envelope. A store without one (verify --data)
	// checks the postings below the stored frontier and that none lie at
	// or past it.
	if l.s.queue != nil {
		if err := l.s.runWrite(ctx, l.org, nil); err != nil {
			return nil, err
		}
	}
	var err error
	if c.frontier, _, err = frontierAndHead(ctx, l.db, l.org); err != nil {
		return nil, err
	}
	go c.readStoredSums()
	go func() {
		sum, n, err := c.storedIDSum()
		c.storedID <- storedIDSum{sum, n, err}
	}()
	go func() {
		sum, err := c.storedCountsSum()
		c.storedCounts <- storedIDSum{sum: sum, err: err}
	}()
	return c, nil
}

// indexChecker checks the search index and the id index of one
// organization against its envelopes: an edited index column could hide an
// event from an investigator while the envelope itself stays intact. It is
// fed every stored event in seq order, then Finish is called.
//
// Each bucket is compared through an order-independent checksum of its
// (field, key, offset) and (offset, time) entries, expected from the
// envelopes and read from the index; only a bucket whose checksums differ
// is compared entry by entry to name the events.
type indexChecker struct {
	s    *Store
	db   *sql.DB  // verifyDB
	raw  *rawPool // the full scans' connections
	ctx  context.Context
	org  int64
	opts verify.IndexOptions
	fail func(seq int64, kind, detail string)

	// frontier is the postings frontier (tail.go): the events at and
	// past it MUST have no postings (they are indexed in memory).
	frontier int64
	bucket   int64
	sum      uint64 // expected entries of the current bucket
	events   int64
	idSum    uint64
	idCount  int64

	// The stored side is read by two goroutines of its own while the
	// envelopes stream in: per-bucket checksums, and the id index's.
	stored   chan storedBucketSum
	storedID chan storedIDSum
	next     *storedBucketSum

	// The counts (event_counts) are compared through a checksum linear
	// in them: each event adds the hash of every slot and value it is
	// counted under, each stored row n times its slot and value's hash.
	countsSum    uint64
	storedCounts chan storedIDSum
	// totals caches, per width of totalWidths, the hash of the
	// all-events count of the slot the last event fell in (the next
	// events mostly fall in it too).
	totals []slotHash
}

type slotHash struct {
	slot int64
	hash uint64
}

type storedBucketSum struct {
	bucket int64
	sum    uint64
	times  int64
	err    error
}

type storedIDSum struct {
	sum uint64
	n   int64
	err error
}

// readStoredSums streams the checksum of every bucket's stored postings,
// in bucket order.
func (c *indexChecker) readStoredSums() {
	defer close(c.stored)
	conn, err := c.raw.get()
	if err != nil {
		c.stored <- storedBucketSum{err: err}
		return
	}
	defer c.raw.put(conn)
	rows, err := conn.query(c.ctx, `SELECT bucket, field, key, list FROM postings
		WHERE org_id = ? ORDER BY bucket, field, key, run`, c.org)
	if err != nil {
		c.stored <- storedBucketSum{err: err}
		return
	}
	defer rows.close()
	cur := storedBucketSum{bucket: -1}
	var offs []uint32
	var ts []int64
	for rows.next() {
		bucket, field, key, list := rows.int64(0), int(rows.int64(1)), rows.bytes(2), rows.bytes(3)
		if bucket != cur.bucket {
			if cur.bucket >= 0 {
				cur.times = int64(len(ts))
				select {
				case c.stored <- cur:
				case <-c.ctx.Done():
					return
				}
			}
			cur, ts = storedBucketSum{bucket: bucket}, ts[:0]
		}
		if field == timesField {
			base := len(ts)
			if ts, err = decodeTimes(ts, list); err != nil {
				cur.sum = 1 // unreadable: the detailed pass says what
				continue
			}
			for i, t := range ts[base:] {
				cur.sum += timeHash(uint32(base+i), t)
			}
			continue
		}
		if field == deadField {
			// Removed by retention: their times stay, their envelopes went.
			// (The tombstone field sorts after the times of its bucket.)
			if offs, err = decodeOffsets(offs[:0], list); err != nil {
				cur.sum = 1
				continue
			}
			for _, off := range offs {
				if int(off) < len(ts) {
					cur.sum -= timeHash(off, ts[off])
				}
			}
			continue
		}
		if offs, err = decodeOffsets(offs[:0], list); err != nil {
			cur.sum = 1
			continue
		}
		kh := keyHash(key)
		for _, off := range offs {
			cur.sum += entryHash(veritrail.Field(field), kh, off)
		}
	}
	if err := rows.close(); err != nil {
		c.stored <- storedBucketSum{err: err}
		return
	}
	if cur.bucket >= 0 {
		cur.times = int64(len(ts))
		c.stored <- cur
	}
}

// storedSumOf returns the stored checksum of a bucket (zero if it has no
// postings).
func (c *indexChecker) storedSumOf(bucket int64) (storedBucketSum, error) {
	for {
		if c.next != nil && c.next.bucket >= bucket {
			if c.next.bucket == bucket {
				return *c.next, nil
			}
			return storedBucketSum{bucket: bucket}, nil
		}
		b, ok := <-c.stored
		if !ok {
			c.next = &storedBucketSum{bucket: 1 << 62}
			continue
		}
		if b.err != nil {
			return b, b.err
		}
		c.next = &b
	}
}

var entrySeed = maphash.MakeSeed()

// keyHash is the seeded hash of an index or count key, the same for the
// same bytes: the stored side reads bytes, the envelope's side has
// strings. The entry and count hashes take it instead of the key, so a
// key is hashed once for all its entries (a stored list's offsets, an
// event's entry and counts).
func keyHash[K ~string | ~[]byte](key K) uint64 {
	if k, ok := any(key).(string); ok {
		return maphash.String(entrySeed, k)
	}
	return maphash.Bytes(entrySeed, []byte(key)) // a []byte kind: no copy
}

// entryHash hashes an index entry: its field, its key's hash and offset.
func entryHash(field veritrail.Field, key uint64, off uint32) uint64 {
	return mix(mixEntry, key, uint64(off)<<8|uint64(byte(field)))
}

func timeHash(off uint32, t int64) uint64 {
	return mix(mixTime, uint64(t), uint64(off))
}

// mix hashes two words under the keys of one domain (entries, times,
// count slots, counts), so that equal words of two domains hash apart:
// two rounds of a 128-bit multiply folded to 64 bits (wyhash's), every
// bit of a and b reaching every bit of the result. The keys are random
// per process, as maphash's seed was, so stored rows cannot be chosen to
// cancel out in a sum; the checksums take three or four of these per
// index entry and count, where maphash over the same bytes cost about
// five times as much (aeshashbody 6% of a check).
func mix(domain int, a, b uint64) uint64 {
	k := &mixKeys[domain]
	hi, lo := bits.Mul64(a^k[0], b^k[1])
	hi, lo = bits.Mul64(hi^lo^k[2], k[3])
	return hi ^ lo
}

const (
	mixEntry = iota
	mixTime
	mixSlot
	mixCount
)

var mixKeys = func() (k [4][4]uint64) {
	for d := range k {
		for i := range k[d] {
			k[d][i] = rand.Uint64() | 1 // odd: the second multiply loses no bit of its first factor
		}
	}
	return k
}()

// idHash is FNV-1a over an id and its seq.
func idHash[T ~string | ~[]byte](id T, seq int64) uint64 {
	const offset, prime = 14695981039346656037, 1099511628211
	h := uint64(offset)
	for i := 0; i < len(id); i++ {
		h = (h ^ uint64(id[i])) * prime
	}
	for _, b := range [7]byte{0, byte(seq), byte(seq >> 8), byte(seq >> 16), byte(seq >> 24), byte(seq >> 32), byte(seq >> 40)} {
		h = (h ^ uint64(b)) * prime
	}
	return h
}

// Event implements verify.IndexChecker: it adds one stored event's
// expected entries to its bucket's checksum.
func (c *indexChecker) Event(ev *verify.Checked) error {
	e := ev.Event
	if e == nil {
		return nil // the log check reports unreadable envelopes
	}
	seq := ev.Seq
	b := seq >> c.s.shift
	if b != c.bucket {
		if err := c.flush(); err != nil {
			return err
		}
		c.bucket, c.sum, c.events = b, 0, 0
	}
	off := uint32(seq - b<<c.s.shift)
	t := e.Time.UnixNano()
	if seq < c.frontier {
		c.sum += timeHash(off, t)
		c.countsSum += c.eventCountsHash(e, t, func(ie veritrail.IndexEntry, kh uint64) {
			c.sum += entryHash(ie.Field, kh, off)
		})
	} else {
		c.countsSum += c.eventCountsHash(e, t, func(veritrail.IndexEntry, uint64) {})
	}
	c.events++
	c.idSum += idHash(e.ID, seq)
	c.idCount++
	return nil
}

// deadOffsets returns the current bucket's tombstones.
func (c *indexChecker) deadOffsets() (map[uint32]bool, error) {
	var count int64
	c.db.QueryRowContext(c.ctx, `SELECT count FROM buckets WHERE org_id = ? AND bucket = ?`, c.org, c.bucket).Scan(&count)
	d, err := loadBucketData(c.ctx, c.db, c.org, c.bucket, c.indexed(count), nil)
	if err != nil {
		return nil, nil // the count check reports a damaged bucket
	}
	return d.dead, nil
}

// indexed returns how many of the current bucket's count events are below
// the postings frontier.
func (c *indexChecker) indexed(count int64) int64 {
	return min(max(c.frontier-c.bucket<<c.s.shift, 0), count)
}

// storedBucket reads a bucket's index entries.
func (c *indexChecker) storedBucket() (lists map[postKey][]uint32, times []int64, err error) {
	rows, err := c.db.QueryContext(c.ctx, `SELECT field, key, list FROM postings
		WHERE org_id = ? AND bucket = ? ORDER BY field, key, run`, c.org, c.bucket)
	if err != nil {
		return nil, nil, err
	}
	defer rows.Close()
	base := c.bucket << c.s.shift
	lists = map[postKey][]uint32{}
	for rows.Next() {
		var field int
		var key, list []byte
		if err := rows.Scan(&field, &key, &list); err != nil {
			return nil, nil, err
		}
		if field == timesField {
			if times, err = decodeTimes(times, list); err != nil {
				c.fail(base, verify.KindIndex, "the bucket's stored times are unreadable")
			}
			continue
		}
		if field == deadField {
			continue // removed by retention (explain skips them by their absence)
		}
		k := postKey{veritrail.Field(field), string(key)}
		if lists[k], err = decodeOffsets(lists[k], list); err != nil {
			c.fail(base, verify.KindIndex, fmt.Sprintf("the stored %s index is unreadable", k.field))
		}
	}
	return lists, times, rows.Err()
}

// flush checks the current bucket.
func (c *indexChecker) flush() error {
	if c.bucket < 0 {
		return nil
	}
	base := c.bucket << c.s.shift
	st, err := c.storedSumOf(c.bucket)
	if err != nil {
		return err
	}
	sum, n := st.sum, st.times
	if sum != c.sum {
		stored, times, err := c.storedBucket()
		if err != nil {
			return err
		}
		if err := c.explain(stored, times); err != nil {
			return err
		}
	}
	var count int64
	err = c.db.QueryRowContext(c.ctx, `SELECT count FROM buckets WHERE org_id = ? AND bucket = ?`, c.org, c.bucket).Scan(&count)
	if errors.Is(err, sql.ErrNoRows) || (err == nil && c.indexed(count) != n) {
		c.fail(base, verify.KindIndex, fmt.Sprintf("the bucket summary counts %d events below the postings frontier, the index %d", c.indexed(count), n))
	} else if err != nil {
		return err
	}
	return nil
}

// explain compares a bucket entry by entry, re-reading its envelopes, and
// names the events where the index and the envelopes part.
func (c *indexChecker) explain(stored map[postKey][]uint32, times []int64) error {
	base := c.bucket << c.s.shift
	want := map[postKey][]uint32{}
	wantTimes := map[uint32]int64{}
	err := c.opts.Reread(c.ctx, base, base+1<<c.s.shift, func(seq int64, e *veritrail.Event) error {
		if seq >= c.frontier {
			return nil // indexed in memory only
		}
		off := uint32(seq - base)
		wantTimes[off] = e.Time.UnixNano()
		for _, ie := range e.IndexKeys() {
			k := postKey{ie.Field, ie.Key}
			want[k] = append(want[k], off)
		}
		return nil
	})
	if err != nil {
		return err
	}
	for off, t := range wantTimes {
		if int(off) >= len(times) || times[off] != t {
			c.fail(base+int64(off), verify.KindIndex, "the indexed time differs from the envelope's")
		}
	}
	dead, err := c.deadOffsets()
	if err != nil {
		return err
	}
	for off := range times {
		if base+int64(off) >= c.frontier {
			c.fail(base+int64(off), verify.KindIndex, "the index holds a time for an event past the postings frontier")
			break
		}
		if _, ok := wantTimes[uint32(off)]; !ok && !dead[uint32(off)] {
			c.fail(base+int64(off), verify.KindIndex, "the index holds a time for an event that is not stored")
			break
		}
	}
	keys := make([]postKey, 0, len(want)+len(stored))
	for k := range want {
		keys = append(keys, k)
	}
	for k := range stored {
		if _, ok := want[k]; !ok {
			keys = append(keys, k)
		}
	}
	slices.SortFunc(keys, comparePostKeys)
	for _, k := range keys {
		w, g := want[k], stored[k]
		if slices.Equal(w, g) {
			continue
		}
		i := 0
		for i < len(w) && i < len(g) && w[i] == g[i] {
			i++
		}
		if i < len(w) && (i >= len(g) || w[i] < g[i]) {
			c.fail(base+int64(w[i]), verify.KindIndex, fmt.Sprintf("the %s index does not list this event under its value: a search by %s would miss it", k.field, k.field))
		} else {
			c.fail(base+int64(g[i]), verify.KindIndex, fmt.Sprintf("the %s index lists this event under a value its envelope does not have", k.field))
		}
	}
	return nil
}

// Finish checks the last bucket and the id index.
func (c *indexChecker) Finish() error {
	if err := c.flush(); err != nil {
		return err
	}
	ids := <-c.storedID
	if ids.err != nil {
		return ids.err
	}
	sum, n := ids.sum, ids.n
	if sum != c.idSum || n != c.idCount {
		if err := c.findIDMismatch(); err != nil {
			return err
		}
	}
	counts := <-c.storedCounts
	if counts.err != nil {
		return counts.err
	}
	if counts.sum != c.countsSum {
		return c.findCountsMismatch()
	}
	return nil
}

// countHash is the hash of one count's slot and value, given its key's
// keyHash (never even, so that a count changed by any amount changes the
// checksum).
func countHash(field veritrail.Field, width, slot int64, key uint64) uint64 {
	return mix(mixCount, key, mix(mixSlot, uint64(slot), uint64(width)<<8|uint64(byte(field)))) | 1
}

// eventCountsHash is the sum of the hashes of every count an event at
// time t adds to (as counter.addEvent adds it), the all-events ones taken
// from c.totals when the slot is the last event's. It calls each, if not
// nil, with every index key of the event and the key's hash.
func (c *indexChecker) eventCountsHash(e *veritrail.Event, t int64, each func(ie veritrail.IndexEntry, kh uint64)) uint64 {
	var sum uint64
	if c.totals == nil {
		c.totals = make([]slotHash, len(totalWidths))
	}
	for i, w := range totalWidths {
		if slot := slotOf(t, w); slot != c.totals[i].slot || c.totals[i].hash == 0 {
			c.totals[i] = slotHash{slot, countHash(allEvents, w, slot, keyHash(allEventsKey))}
		}
		sum += c.totals[i].hash
	}
	for _, ie := range e.IndexKeys() {
		kh := keyHash(ie.Key)
		if each != nil {
			each(ie, kh)
		}
		if countedField(ie.Field) {
			for _, w := range valueWidths {
				sum += countHash(ie.Field, w, slotOf(t, w), kh)
			}
		}
	}
	return sum
}

// storedCountsSum is the checksum of the organization's stored counts.
func (c *indexChecker) storedCountsSum() (uint64, error) {
	conn, err := c.raw.get()
	if err != nil {
		return 0, err
	}
	defer c.raw.put(conn)
	rows, err := conn.query(c.ctx, `SELECT field, width, slot, key, n FROM event_counts WHERE org_id = ?`, c.org)
	if err != nil {
		return 0, err
	}
	defer rows.close()
	var sum uint64
	for rows.next() {
		n := rows.int64(4)
		sum += uint64(n) * countHash(veritrail.Field(rows.int64(0)), rows.int64(1), rows.int64(2), keyHash(rows.bytes(3)))
	}
	return sum, rows.close()
}

// findCountsMismatch names the counts that differ from the envelopes
// (run only when the checksums differ): it counts the stored events again,
// in memory, and compares every stored row.
func (c *indexChecker) findCountsMismatch() error {
	want := counter{}
	err := c.opts.Reread(c.ctx, 0, c.opts.Size, func(seq int64, e *veritrail.Event) error {
		want.addEvent(c.org, e)
		return nil
	})
	if err != nil {
		return err
	}
	rows, err := c.db.QueryContext(c.ctx, `SELECT field, width, slot, key, n FROM event_counts WHERE org_id = ?`, c.org)
	if err != nil {
		return err
	}
	defer rows.Close()
	got := counter{}
	for rows.Next() {
		var k countKey
		var key []byte
		var n int64
		if err := rows.Scan(&k.field, &k.width, &k.slot, &key, &n); err != nil {
			return err
		}
		k.org, k.key = c.org, string(key)
		got[k] = n
	}
	if err := rows.Err(); err != nil {
		return err
	}
	for k := range want {
		if _, ok := got[k]; !ok {
			got[k] = 0 // counted by the envelopes, no row stored
		}
	}
	for _, k := range got.sortedAll() {
		if n, w := got[k], want[k]; n != w {
			c.fail(-1, verify.KindCounts, fmt.Sprintf("the stored counts (event_counts) hold %d %s, the envelopes %d: stats would show a wrong number",
				n, countDescription(k), w))
		}
	}
	return nil
}

// countDescription says what a count counts, for a failure.
func countDescription(k countKey) string {
	from := time.Unix(0, k.slot*k.width*int64(time.Second)).UTC().Format(time.RFC3339)
	span := map[int64]string{minuteSecs: "minute", hourSecs: "hour", daySecs: "day"}[k.width]
	if span == "" {
		span = fmt.Sprintf("%d-second slot", k.width)
	}
	if k.field == allEvents {
		return fmt.Sprintf("events in the %s from %s", span, from)
	}
	return fmt.Sprintf("events with %s %q in the %s from %s", k.field, k.key, span, from)
}

// storedIDSum is the checksum of the id index.
func (c *indexChecker) storedIDSum() (uint64, int64, error) {
	conn, err := c.raw.get()
	if err != nil {
		return 0, 0, err
	}
	defer c.raw.put(conn)
	rows, err := conn.query(c.ctx, `SELECT id, seq FROM event_ids WHERE org_id = ?`, c.org)
	if err != nil {
		return 0, 0, err
	}
	defer rows.close()
	var sum uint64
	var n int64
	for rows.next() {
		sum += idHash(rows.bytes(0), rows.int64(1))
		n++
	}
	return sum, n, rows.close()
}

// findIDMismatch names the events whose id index entry is wrong (slow: one
// lookup per event, run only when the checksums differ).
func (c *indexChecker) findIDMismatch() error {
	seen := map[string]bool{}
	err := c.opts.Reread(c.ctx, 0, c.opts.Size, func(seq int64, e *veritrail.Event) error {
		seen[e.ID] = true
		var got int64
		err := c.db.QueryRowContext(c.ctx, `SELECT seq FROM event_ids WHERE org_id = ? AND id = ?`, c.org, e.ID).Scan(&got)
		switch {
		case errors.Is(err, sql.ErrNoRows):
			c.fail(seq, verify.KindIDIndex, fmt.Sprintf("id %q is missing from the id index: GET /events/{id} would not find it", e.ID))
		case err != nil:
			return err
		case got != seq:
			c.fail(seq, verify.KindIDIndex, fmt.Sprintf("the id index sends id %q to seq %d", e.ID, got))
		}
		return nil
	})
	if err != nil {
		return err
	}
	rows, err := c.db.QueryContext(c.ctx, `SELECT id, seq FROM event_ids WHERE org_id = ?`, c.org)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var id string
		var seq int64
		if err := rows.Scan(&id, &seq); err != nil {
			return err
		}
		if !seen[id] {
			c.fail(seq, verify.KindIDIndex, fmt.Sprintf("the id index holds id %q, which no stored event has", id))
		}
	}
	return rows.Err()
}
