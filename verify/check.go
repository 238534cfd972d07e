package verify

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"runtime"
	"slices"
	"strings"
	"sync"
	"time"

	veritrail "github.com/veritrail/veritrail"
	"github.com/veritrail/veritrail/tlog"
)

// Options say what Check verifies and against what.
type Options struct {
	// Keys are the verifier keys the auditor trusts, one per log (a key
	// names its log's origin). A log without one is not checked.
	Keys []string
	// KeyBeside returns the key found with the data (a data directory's
	// signing key, the key a server serves, a bundle's key.txt); it is
	// used only when Keys is empty, and the summary says so: a replaced key
	// would go unnoticed.
	KeyBeside func(ctx context.Context, log LogRef) (string, error)
	// Trusted is a checkpoint the auditor kept from an earlier look at a
	// log: that log must still extend it.
	Trusted []byte
	// Org, if set, is the only organization checked.
	Org string
	// Index also compares what stores derive from the envelopes (see
	// IndexSource).
	Index bool
	// Progress, if set, is called as events are checked.
	Progress func(org string, checked, size, bytes int64)
}

// ErrNoSuchOrg is Check's error when Options.Org names no organization of
// the source.
var ErrNoSuchOrg = errors.New("no organization")

// Summary is what Check did with one log.
type Summary struct {
	Org, Origin string
	// NotChecked says why the log was not checked; empty if it was.
	NotChecked string
	// KeyBeside: checked with Options.KeyBeside's key, not one the
	// auditor gave.
	KeyBeside bool
	Info      Info
	// Checked is the number of positions checked (every event, expired
	// ones included); for a sparse source, the events proven.
	Checked int64
	// Events and Contents are the events and contents read.
	Events, Contents int64
	Bytes            int64 // envelope and content bytes hashed
	Took             time.Duration
	// Checkpoints is the number of signed checkpoints verified; Latest is
	// the last of them (nil if none).
	Checkpoints int
	Latest      *tlog.Checkpoint
	// Trusted: a checkpoint the auditor kept was compared.
	Trusted bool
	// Expired and Erased count envelopes and contents found removed by a
	// recorded retention or erasure.
	Expired, Erased int64
	// IndexChecked: the store's derived data was compared too.
	IndexChecked bool
}

// selfChecker is a reader with checks of its own format (an evidence
// bundle's archive), made with the key Check chose: before the events are
// read and after.
type selfChecker interface {
	checkBefore(key string, fail func(Failure))
	checkAfter(fail func(Failure))
}

// Check verifies every log of src that opts select, adds what fails to
// rep, and returns a summary per log the source holds, checked or not. An
// error means the source could not be read: the check is incomplete.
func Check(ctx context.Context, src Source, opts Options, rep *Report) ([]*Summary, error) {
	logs, err := src.Logs(ctx)
	if err != nil {
		return nil, err
	}
	if opts.Org != "" && !slices.ContainsFunc(logs, func(l LogRef) bool { return l.Org == opts.Org }) {
		return nil, fmt.Errorf("%w %q", ErrNoSuchOrg, opts.Org)
	}
	keyOrigins := make([]string, len(opts.Keys))
	for i, k := range opts.Keys {
		if keyOrigins[i], err = tlog.VerifierKeyOrigin(k); err != nil {
			return nil, fmt.Errorf("verifier key %q: %w", k, err)
		}
	}
	keyUsed := make([]bool, len(opts.Keys))
	trustedOrigin := ""
	if opts.Trusted != nil {
		u, err := tlog.ParseUnverified(opts.Trusted)
		if err != nil {
			return nil, fmt.Errorf("the checkpoint you kept is not a checkpoint: %w", err)
		}
		trustedOrigin = u.Origin
	}
	trustedUsed := false
	var out []*Summary
	for _, ref := range logs {
		s := &Summary{Org: ref.Org, Origin: ref.Origin}
		out = append(out, s)
		if opts.Org != "" && ref.Org != opts.Org {
			s.NotChecked = "only organization " + opts.Org + " was asked for"
			continue
		}
		key := ""
		switch {
		case ref.Origin == "":
			// It has signed nothing: its events are checked against its
			// tree, with no signature to check.
		case len(opts.Keys) > 0:
			i := slices.Index(keyOrigins, ref.Origin)
			if i < 0 {
				s.NotChecked = "no verifier key was given for its log (" + ref.Origin + ")"
				continue
			}
			key, keyUsed[i] = opts.Keys[i], true
		case opts.KeyBeside != nil:
			if key, err = opts.KeyBeside(ctx, ref); err != nil {
				return out, err
			}
			s.KeyBeside = true
		default:
			s.NotChecked = "no verifier key was given"
			continue
		}
		var trusted []byte
		if opts.Trusted != nil && trustedOrigin == ref.Origin {
			trusted, trustedUsed = opts.Trusted, true
		}
		if err := checkOne(ctx, src, ref, key, trusted, opts, s, rep); err != nil {
			return out, err
		}
	}
	held := func() string {
		var o []string
		for _, l := range logs {
			o = append(o, l.Origin)
		}
		if len(o) > 5 {
			o = append(o[:5], fmt.Sprintf("and %d more", len(o)-5))
		}
		return strings.Join(o, ", ")
	}
	for i, used := range keyUsed {
		if !used && !slices.Contains(keyOrigins[:i], keyOrigins[i]) {
			rep.Add(Failure{Org: keyOrigins[i], Seq: -1, Kind: KindNoLog, Detail: fmt.Sprintf(
				"a key you gave names the log %s, which was not checked (here: %s)", keyOrigins[i], held())})
		}
	}
	if opts.Trusted != nil && !trustedUsed {
		rep.Add(Failure{Org: trustedOrigin, Seq: -1, Kind: KindNoLog, Detail: fmt.Sprintf(
			"the checkpoint you kept is of the log %s, which was not checked (here: %s)", trustedOrigin, held())})
	}
	return out, nil
}

// checkOne checks one log with key.
func checkOne(ctx context.Context, src Source, ref LogRef, key string, trusted []byte, opts Options, s *Summary, rep *Report) error {
	start := time.Now()
	r, err := src.Open(ctx, ref)
	if err != nil {
		return err
	}
	if c, ok := r.(io.Closer); ok {
		defer c.Close()
	}
	info, err := r.Info(ctx)
	if err != nil {
		return err
	}
	s.Info = *info
	s.Info.Checkpoints = nil
	cps := OpenCheckpoints(ref.Org, info.Checkpoints, key, rep)
	if s.Checkpoints = len(cps); len(cps) > 0 {
		s.Latest = cps[len(cps)-1]
	}
	sc, _ := r.(selfChecker)
	if sc != nil {
		sc.checkBefore(key, rep.Add)
	}
	if info.Sparse {
		err = checkSparse(ctx, r, ref, cps, s, rep)
	} else {
		err = checkFull(ctx, r, ref, key, trusted, info, cps, opts, s, rep)
	}
	if err != nil {
		return err
	}
	if sc != nil {
		sc.checkAfter(rep.Add)
	}
	s.Took = time.Since(start)
	return nil
}

// checkFull checks a whole log: every position, the tree, the checkpoints,
// the removals and, with opts.Index, the store's derived data.
func checkFull(ctx context.Context, r LogReader, ref LogRef, key string, trusted []byte, info *Info, cps []*tlog.Checkpoint, opts Options, s *Summary, rep *Report) error {
	fail := func(seq int64, kind, detail string) {
		rep.Add(Failure{Org: ref.Org, Seq: seq, Kind: kind, Detail: detail})
	}
	l := NewLog(ref.Org, cps, rep)
	if trusted != nil {
		t, err := tlog.OpenCheckpoint(trusted, key)
		if err != nil {
			fail(-1, KindSignature, fmt.Sprintf("the checkpoint you kept does not verify with the key: %v", err))
		} else {
			l.Trust(t)
			s.Trusted = true
		}
	}
	removals, err := r.Removals(ctx)
	if err != nil {
		return err
	}
	rm := NewRemovals(removals)
	tiles := &leafTiles{r: r, index: -1}
	size := info.Size
	absent := func(seq int64) {
		expired, _ := rm.At(seq)
		var leaf []byte
		if expired || info.StoredLeaves {
			leaf = tiles.at(ctx, seq)
		}
		if expired {
			rm.Expired++
		}
		l.Absent(seq, leaf, expired)
	}
	var ix IndexChecker
	if is, ok := r.(IndexSource); ok && opts.Index {
		if ix, err = is.IndexChecker(ctx, IndexOptions{Size: size, Fail: fail, Reread: reread(r)}); err != nil {
			return err
		}
		s.IndexChecked = true
	}
	progress := func() {
		if opts.Progress != nil {
			opts.Progress(ref.Org, l.Size(), size, l.Bytes())
		}
	}
	var checked Checked // one for every event: ix.Event may not keep it
	err = stream(ctx, r, 0, ToEnd, size, ix != nil, func(it *item) (bool, error) {
		if it.unreadable != "" {
			fail(it.seq, KindEnvelope, it.unreadable)
			return false, nil
		}
		seq := it.seq
		if seq < 0 {
			// Listed by its envelope's seq: that is its position.
			if it.h.event == nil {
				fail(l.Size(), KindEnvelope, "an event whose envelope cannot be read, so its position is unknown")
				return false, nil
			}
			seq, it.h.seq = it.h.event.Seq, it.h.event.Seq
		}
		if seq >= size {
			if info.Growing {
				return true, nil // appended after the latest checkpoint
			}
			fail(seq, KindExtra, fmt.Sprintf("an event is stored beyond the log's size (%d): it was inserted", size))
			return false, nil
		}
		s.Events++
		for l.Size() < seq {
			absent(l.Size())
		}
		_, contentGone := rm.At(seq)
		if it.content != nil {
			s.Contents++
		} else if contentGone {
			rm.Erased++
		}
		leaf := it.leaf
		if leaf == nil && info.StoredLeaves {
			leaf = tiles.at(ctx, seq)
		}
		l.hashed(&it.h, leaf, contentGone || info.ContentHidden)
		if ix != nil {
			checked = Checked{Seq: seq, Envelope: it.env, Event: it.h.event, Content: it.content, Derived: it.derived}
			return false, ix.Event(&checked)
		}
		return false, nil
	}, progress)
	if err != nil {
		return err
	}
	for l.Size() < size {
		absent(l.Size())
	}
	l.Finish(size)
	if rr, ok := r.(RecordReader); ok {
		if err := checkRemovalRecords(ctx, rr, removals, fail); err != nil {
			return err
		}
	}
	if ix != nil {
		if err := ix.Finish(); err != nil {
			return err
		}
	}
	s.Checked, s.Bytes, s.Expired, s.Erased = l.Size(), l.Bytes(), rm.Expired, rm.Erased
	return nil
}

// checkSparse checks a selection of events, each against its inclusion
// proof in the one checkpoint.
func checkSparse(ctx context.Context, r LogReader, ref LogRef, cps []*tlog.Checkpoint, s *Summary, rep *Report) error {
	if len(cps) == 0 {
		return nil // its signature failed: nothing can be proven against it
	}
	cp := cps[len(cps)-1]
	l := NewLog(ref.Org, nil, rep)
	err := stream(ctx, r, 0, int64(cp.Size), 0, false, func(it *item) (bool, error) {
		if it.unreadable != "" {
			l.fail(-1, KindEnvelope, it.unreadable)
			return false, nil
		}
		s.Events++
		if it.content != nil {
			s.Contents++
		}
		seq := it.seq
		l.checkEvent(&it.h, it.leaf, true)
		if it.proof == nil || seq < 0 || uint64(seq) >= cp.Size || tlog.VerifyInclusion(uint64(seq), cp.Size, it.h.leaf[:], it.proof, cp.Root) != nil {
			l.fail(seq, KindInclusion, fmt.Sprintf("the envelope is not proven in the checkpoint's tree of size %d: it was changed, or is not from this log", cp.Size))
		}
		return false, nil
	}, nil)
	s.Checked, s.Bytes = s.Events, l.Bytes()
	return err
}

// reread gives an IndexChecker the envelopes of a range again, read as
// Check reads them.
func reread(r LogReader) func(ctx context.Context, from, to int64, fn func(seq int64, e *veritrail.Event) error) error {
	return func(ctx context.Context, from, to int64, fn func(seq int64, e *veritrail.Event) error) error {
		return r.Events(ctx, from, to, func(ev *Event) error {
			if ev.Unreadable != "" {
				return nil
			}
			e, _ := readEnvelope(ev.Envelope, nil)
			if e == nil {
				return nil
			}
			seq := ev.Seq
			if seq < 0 {
				seq = e.Seq
			}
			return fn(seq, e)
		})
	}
}

// leafTiles reads stored leaf hashes a level-0 tile at a time.
type leafTiles struct {
	r     LogReader
	index int64
	tile  []byte
}

// at returns the stored leaf hash of seq, nil if the source has none.
func (t *leafTiles) at(ctx context.Context, seq int64) []byte {
	if seq/256 != t.index {
		t.index = seq / 256
		t.tile, _ = t.r.LeafTile(ctx, t.index)
	}
	off := int(seq%256) * 32
	if off+32 > len(t.tile) {
		return nil
	}
	return t.tile[off : off+32]
}

// checkRemovalRecords checks that every removal is recorded by a retention
// or erasure event in the log itself (signed like every event), which
// lists the removed range while its content is kept: a removals row alone,
// written by someone with the files, justifies nothing.
func checkRemovalRecords(ctx context.Context, rr RecordReader, rs []*veritrail.Removal, fail func(seq int64, kind, detail string)) error {
	type record struct {
		ok     bool
		ranges map[[2]int64]bool
	}
	recs := map[string]*record{}
	for _, r := range rs {
		rc, seen := recs[r.Record]
		if !seen {
			rc = &record{}
			recs[r.Record] = rc
			env, content, err := rr.Record(ctx, r.Record)
			if err != nil && veritrail.ErrorCode(err) != veritrail.ENotFound {
				return err
			}
			if e, _ := readEnvelope(env, nil); err == nil && e != nil {
				rc.ok = e.Type == "retention.run" || e.Type == "privacy.erasure"
				if rc.ok && content != nil {
					var body struct {
						Content  [][2]int64 `json:"content_ranges"`
						Envelope [][2]int64 `json:"envelope_ranges"`
					}
					if json.Unmarshal(content, &body) == nil {
						rc.ranges = map[[2]int64]bool{}
						for _, x := range append(body.Content, body.Envelope...) {
							rc.ranges[x] = true
						}
					}
				}
			}
		}
		switch {
		case !rc.ok:
			fail(r.From, KindUnrecorded, fmt.Sprintf("seqs %d–%d were removed under %q, which is not a retention or erasure record in this log", r.From, r.To, r.Record))
		case rc.ranges != nil && !rc.ranges[[2]int64{r.From, r.To}]:
			fail(r.From, KindUnrecorded, fmt.Sprintf("seqs %d–%d are not among the ranges its record %s lists", r.From, r.To, r.Record))
		}
	}
	return nil
}

// The pipeline: one goroutine reads the source into batches, workers hash
// them (leaf, envelope read and canonical check, content digest, index
// keys), and the caller's goroutine takes them in the source's order.
// Reading stays sequential; memory stays at a few batches.

const batchSize = 256

// item is one event in the pipeline: what the source gave (copied), and
// what a worker computed from it.
type item struct {
	seq                      int64
	env, content, salt, leaf []byte
	proof                    [][]byte
	derived                  any
	unreadable               string
	h                        hashed
}

type batch struct {
	items []item
	// arena holds the bytes the items keep, in chunks: chunks[filled] is
	// being filled, the ones before it are full. Bytes in it are not
	// written again until the caller is done with the batch and it is
	// reused (reset), so events read from them share them
	// (readEnvelope's kept) for as long as the caller holds the batch.
	// Reused, the chunks spare an allocation and its zeroing per 32 KiB
	// read.
	chunks [][]byte
	filled int
	// readers[i] reads item i's envelope into an event reused with the
	// batch (hashEvent's into).
	readers []veritrail.EnvelopeReader
	done    chan struct{} // closed once the items are hashed
}

// reader returns item i's envelope reader.
func (b *batch) reader(i int) *veritrail.EnvelopeReader {
	if i >= len(b.readers) {
		// All at once: an item's event points into its reader.
		b.readers = append(b.readers, make([]veritrail.EnvelopeReader, max(i+1, batchSize)-len(b.readers))...)
	}
	return &b.readers[i]
}

// keep copies p into the batch's arena.
func (b *batch) keep(p []byte) []byte {
	if p == nil {
		return nil
	}
	if len(b.chunks) == 0 || cap(b.chunks[b.filled])-len(b.chunks[b.filled]) < len(p) {
		b.nextChunk(len(p))
	}
	a := append(b.chunks[b.filled], p...)
	b.chunks[b.filled] = a
	return a[len(a)-len(p) : len(a) : len(a)]
}

// nextChunk moves to an arena chunk with room for n bytes: the next one
// kept from an earlier use, or a new one of the runtime's largest
// small-object size (larger ones would each be a span of their own,
// returned to the system and asked for again).
func (b *batch) nextChunk(n int) {
	if len(b.chunks) > 0 {
		b.filled++
	}
	for b.filled < len(b.chunks) {
		if cap(b.chunks[b.filled]) >= n {
			return // emptied by reset
		}
		b.filled++ // too small for p: left empty this time
	}
	b.chunks = append(b.chunks, make([]byte, 0, max(32<<10, n)))
}

// reset empties a batch the caller is done with, for reuse.
func (b *batch) reset() {
	b.items = b.items[:0]
	for i := range b.chunks[:min(b.filled+1, len(b.chunks))] {
		b.chunks[i] = b.chunks[i][:0]
	}
	b.filled = 0
}

func (b *batch) add(ev *Event) {
	it := item{seq: ev.Seq, derived: ev.Derived, unreadable: ev.Unreadable,
		env: b.keep(ev.Envelope), content: b.keep(ev.Content), salt: b.keep(ev.Salt), leaf: b.keep(ev.Leaf)}
	if ev.Proof != nil {
		it.proof = make([][]byte, len(ev.Proof))
		for i, p := range ev.Proof {
			it.proof[i] = b.keep(p)
		}
	}
	b.items = append(b.items, it)
}

// chunkSeqs is how many positions a reader of a ConcurrentReader reads
// at a time: a chunk is read whole while the check takes the ones before
// it, so it bounds memory (a few MB a reader) and should be a multiple of
// batchSize.
const chunkSeqs = 32 * batchSize

// chunk is one range of positions read by one reader, its batches in seq
// order.
type chunk struct {
	from, to int64
	batches  chan *batch
}

// stream reads the events of r with from ≤ seq < to and calls each for
// them in the source's order, hashed; each may stop the stream early.
// batchDone, if set, is called after each batch.
//
// A ConcurrentReader is read by several readers at once, each a chunk of
// positions below size at a time (the last chunk reaches to), and the
// chunks are taken in order: reading rows is most of a check's work, and a
// single reader would keep one core busy while the other waits.
func stream(ctx context.Context, r LogReader, from, to, size int64, indexKeys bool, each func(*item) (stop bool, err error), batchDone func()) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	readers, chunkLen := 1, int64(0)
	if cr, ok := r.(ConcurrentReader); ok && size > from {
		readers = max(1, cr.ConcurrentReads())
		// Small logs in a few chunks too, so that every check of a
		// concurrent reader (and every test) goes through the chunks.
		chunkLen = min(chunkSeqs, max(16, (size-from)/int64(2*readers)))
	}
	workers := max(1, runtime.GOMAXPROCS(0))
	work := make(chan *batch, 2*workers)
	free := make(chan *batch, 2*workers+4+readers*(chunkSeqs/batchSize+1))
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for b := range work {
				for i := range b.items {
					it := &b.items[i]
					if it.unreadable != "" {
						continue
					}
					it.h = hashEvent(it.seq, it.env, it.content, it.salt, b.reader(i))
					if indexKeys && it.h.event != nil {
						it.h.event.IndexKeys()
					}
				}
				close(b.done)
			}
		}()
	}
	newBatch := func() *batch {
		var b *batch
		select {
		case b = <-free:
			// The caller is done with it and the events read from it.
			b.reset()
		default:
			b = &batch{}
		}
		b.done = make(chan struct{})
		return b
	}
	// The chunks, in order: todo for the readers, ordered for the caller.
	// Every chunk in ordered was taken by a reader, which closes its
	// batches however it ends, so the caller's loop always ends.
	todo := make(chan *chunk)
	ordered := make(chan *chunk, readers)
	go func() {
		defer close(ordered)
		defer close(todo)
		for lo := from; ; lo += chunkLen {
			c := &chunk{from: lo, to: to, batches: make(chan *batch, chunkSeqs/batchSize+1)}
			last := readers == 1 || lo+chunkLen >= size || lo+chunkLen >= to
			if !last {
				c.to = lo + chunkLen
			}
			select {
			case todo <- c:
			case <-ctx.Done():
				return
			}
			ordered <- c // never blocks for long: the caller takes them in order
			if last {
				return
			}
		}
	}()
	readErrs := make(chan error, readers)
	var rwg sync.WaitGroup
	for range readers {
		rwg.Add(1)
		go func() {
			defer rwg.Done()
			for c := range todo {
				b := newBatch()
				// A batch goes to the workers first, then in order to the
				// caller, who waits for it to be hashed.
				send := func() error {
					select {
					case work <- b:
					case <-ctx.Done():
						return ctx.Err()
					}
					select {
					case c.batches <- b:
					case <-ctx.Done():
						return ctx.Err()
					}
					b = newBatch()
					return nil
				}
				err := r.Events(ctx, c.from, c.to, func(ev *Event) error {
					b.add(ev)
					if len(b.items) == batchSize {
						return send()
					}
					return nil
				})
				if err == nil && len(b.items) > 0 {
					err = send()
				}
				close(c.batches)
				if err != nil {
					readErrs <- err
					cancel()
					return
				}
			}
		}()
	}
	go func() {
		rwg.Wait()
		close(work)
		close(readErrs)
	}()
	var err error
	stopped := false
	for c := range ordered {
		for b := range c.batches {
			if stopped || err != nil {
				continue // drain, so the readers end
			}
			<-b.done
			for i := range b.items {
				var stop bool
				if stop, err = each(&b.items[i]); stop || err != nil {
					stopped = stop
					cancel()
					break
				}
			}
			if batchDone != nil {
				batchDone()
			}
			select {
			case free <- b:
			default:
			}
		}
	}
	rwg.Wait()
	wg.Wait()
	if err != nil {
		return err
	}
	if stopped {
		return nil
	}
	// The first reader's error; the others may be the cancellation it
	// caused.
	for rerr := range readErrs {
		return rerr
	}
	return nil
}
