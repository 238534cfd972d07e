// Package verify checks an organization's log the way an auditor would,
// trusting nothing but the log's verifier key: every leaf is recomputed
// from the exact stored envelope bytes, each envelope must be the
// canonical encoding of what it says, the tree is rebuilt and its root
// compared with signed checkpoints, content is checked against the salted
// digests in the envelopes, and positions are checked against the seqs the
// envelopes carry.
//
// The checks are written once (Check) and run over any Source: a SQLite
// data directory (sqlite.Store.VerifySource), a PostgreSQL database
// (postgres.OpenVerifySource), a server's API (NewServerSource) or an
// evidence bundle (OpenBundle). A source only reads; what a store derives
// from the envelopes for search is compared by the store's IndexChecker.
package verify

import (
	"bytes"
	"cmp"
	"fmt"
	"slices"

	veritrail "github.com/veritrail/veritrail"
	"github.com/veritrail/veritrail/tlog"
)

// Kinds of failure.
const (
	KindMissing        = "missing_event"           // a seq has no event
	KindExtra          = "extra_event"             // an event beyond the log's size
	KindSeq            = "seq_mismatch"            // an envelope sits at another position than its seq: reordered
	KindLeaf           = "leaf_mismatch"           // the envelope's bytes do not hash to the leaf committed in the tree
	KindEnvelope       = "envelope_not_canonical"  // the envelope is not the canonical encoding of an event
	KindContentDigest  = "content_digest_mismatch" // content or salt changed
	KindContentMissing = "content_missing"         // content gone without a recorded removal
	KindRoot           = "root_mismatch"           // the rebuilt tree does not match a signed checkpoint
	KindSignature      = "bad_signature"           // a checkpoint's signature does not verify with the key
	KindTrusted        = "inconsistent_with_trusted"
	KindInclusion      = "inclusion_proof_invalid"
	KindIndex          = "index_mismatch" // a derived search column disagrees with its envelope
	KindIDIndex        = "id_index_mismatch"
	KindCounts         = "count_mismatch"       // a stored count of events (for stats) disagrees with the envelopes
	KindUnrecorded     = "unrecorded_removal"   // data removed without a retention or erasure record
	KindArchive        = "bundle_not_canonical" // a bundle's file differs from the canonical archive of its contents
	KindNoLog          = "no_such_log"          // a key or kept checkpoint names a log that was not checked
)

// Failure is one thing that did not verify.
type Failure struct {
	Org    string
	Seq    int64 // -1 when it is not about one event
	Kind   string
	Detail string
}

func (f Failure) String() string {
	if f.Seq >= 0 {
		return fmt.Sprintf("org %s: seq %d: %s: %s", f.Org, f.Seq, f.Kind, f.Detail)
	}
	return fmt.Sprintf("org %s: %s: %s", f.Org, f.Kind, f.Detail)
}

// Report collects failures (the first ones, in the order found).
type Report struct {
	Failures []Failure
	Max      int // failures kept; default 20
	Total    int // failures found
}

// Add records a failure.
func (r *Report) Add(f Failure) {
	r.Total++
	max := r.Max
	if max == 0 {
		max = 20
	}
	if len(r.Failures) < max {
		r.Failures = append(r.Failures, f)
	}
}

// OK reports whether nothing failed.
func (r *Report) OK() bool { return r.Total == 0 }

// Log verifies one organization's log from its events in seq order: the
// per-event checks, and the tree rebuilt over every position and compared
// with the checkpoints. Check drives it; tests and tools may too.
type Log struct {
	Org    string
	Report *Report

	b     *tlog.Builder
	next  int64
	bytes int64
	cps   []*tlog.Checkpoint // checkpoints still to compare, ascending
	// trusted is a checkpoint the auditor kept: the log must extend it.
	trusted *tlog.Checkpoint
}

// Trust adds a checkpoint the auditor kept from an earlier look at the log
// (already verified): the rebuilt tree must have its root at its size, or
// the log was rewritten since.
func (l *Log) Trust(cp *tlog.Checkpoint) {
	l.trusted = cp
	l.compare()
}

// NewLog starts verifying org's log. checkpoints must already be verified
// (see OpenCheckpoints); the rebuilt root is compared with each.
func NewLog(org string, checkpoints []*tlog.Checkpoint, r *Report) *Log {
	l := &Log{Org: org, Report: r, b: tlog.NewBuilder(), cps: checkpoints}
	l.compare()
	return l
}

// Event checks the event at seq. storedLeaf, when not nil, is the leaf hash
// the store committed for seq (a data directory's tile), so a changed
// envelope is named exactly. removed says the content was dropped by a
// recorded retention or erasure (then its absence is not a failure).
func (l *Log) Event(seq int64, envelope, content, salt, storedLeaf []byte, removed bool) {
	h := hashEvent(seq, envelope, content, salt, nil)
	l.hashed(&h, storedLeaf, removed)
}

// hashed is what hashEvent computes from one event: the expensive,
// independent part of checking it, which Check runs on worker goroutines.
type hashed struct {
	seq   int64
	leaf  [32]byte
	bytes int
	// event is what the envelope says (nil if it cannot be read);
	// canonical, whether its bytes are exactly the encoding of that.
	event      *veritrail.Event
	canonical  bool
	hasContent bool
	contentOK  bool
}

// hashEvent computes an event's leaf hash, reads its envelope, and checks
// its content (nil: none stored) against the envelope's digest. into is
// readEnvelope's.
func hashEvent(seq int64, envelope, content, salt []byte, into *veritrail.EnvelopeReader) hashed {
	h := hashed{seq: seq, leaf: veritrail.LeafHash(envelope), bytes: len(envelope)}
	h.event, h.canonical = readEnvelope(envelope, into)
	if content != nil {
		h.hasContent, h.bytes = true, h.bytes+len(content)
		h.contentOK = h.event != nil && h.event.ContentDigest != "" && veritrail.ContentDigestMatches(salt, content, h.event.ContentDigest)
	}
	return h
}

// hashed checks an event from its hash, in seq order, and adds it to the
// tree.
func (l *Log) hashed(h *hashed, storedLeaf []byte, removed bool) {
	seq := h.seq
	for l.next < seq {
		l.Absent(l.next, nil, false)
	}
	if seq < l.next {
		l.fail(seq, KindExtra, "a second event at an already used position")
		return
	}
	l.checkEvent(h, storedLeaf, removed)
	l.b.Append(h.leaf[:])
	l.next++
	l.compare()
}

// checkEvent makes the checks of one event that need nothing but the
// event: its leaf against the stored one, its envelope's form and seq, its
// content against the digest.
func (l *Log) checkEvent(h *hashed, storedLeaf []byte, removed bool) {
	seq := h.seq
	l.bytes += int64(h.bytes)
	if storedLeaf != nil && !bytes.Equal(h.leaf[:], storedLeaf) {
		l.fail(seq, KindLeaf, "the envelope's bytes do not hash to the leaf committed in the tree: the event was changed")
	}
	switch {
	case h.event == nil:
		l.fail(seq, KindEnvelope, "the envelope cannot be read as an event")
	case !h.canonical:
		l.fail(seq, KindEnvelope, "the envelope is not the canonical encoding of what it says (Veritrail writes no other): it was rewritten")
	}
	if h.event != nil && h.event.Seq != seq {
		l.fail(seq, KindSeq, fmt.Sprintf("the envelope of seq %d is stored at position %d: events were reordered", h.event.Seq, seq))
	}
	hasDigest := h.event != nil && h.event.ContentDigest != ""
	switch {
	case h.hasContent && !hasDigest:
		l.fail(seq, KindContentDigest, "content is stored but the envelope commits to none")
	case h.hasContent && !h.contentOK:
		l.fail(seq, KindContentDigest, "the content (or its salt) does not match the digest in the envelope: the content was changed")
	case !h.hasContent && hasDigest && !removed:
		l.fail(seq, KindContentMissing, "the envelope commits to content that is gone, and no retention or erasure removed it")
	}
}

// Absent accounts for position seq holding no event. If expired, a
// retention policy removed it (and recorded it): that is not a failure.
// storedLeaf, the leaf hash the tree still holds, keeps the rebuilt tree
// whole so the rest of the log can be checked; without it the tree is
// rebuilt with a zero leaf and the checkpoints after seq fail too.
func (l *Log) Absent(seq int64, storedLeaf []byte, expired bool) {
	if seq != l.next {
		l.fail(seq, KindExtra, "positions out of order")
		return
	}
	if !expired {
		l.fail(seq, KindMissing, "no event is stored at this position: it was deleted")
	}
	if storedLeaf == nil {
		storedLeaf = make([]byte, 32)
	}
	l.b.Append(storedLeaf)
	l.next++
	l.compare()
}

// compare checks checkpoints whose size the builder has reached.
func (l *Log) compare() {
	if t := l.trusted; t != nil && t.Size == l.b.Size() {
		l.trusted = nil
		if !bytes.Equal(l.b.Root(), t.Root) {
			l.fail(-1, KindTrusted, fmt.Sprintf("the log does not extend the checkpoint you kept (size %d): its first %d events are not the ones you saw", t.Size, t.Size))
		}
	}
	for len(l.cps) > 0 && l.cps[0].Size <= l.b.Size() {
		cp := l.cps[0]
		l.cps = l.cps[1:]
		if cp.Size < l.b.Size() {
			continue // out of order, which OpenCheckpoints reported
		}
		if !bytes.Equal(l.b.Root(), cp.Root) {
			l.fail(-1, KindRoot, fmt.Sprintf("the tree rebuilt from the stored events has another root at size %d than the signed checkpoint: an event before seq %d was changed, removed, inserted or reordered", cp.Size, cp.Size))
		}
	}
}

// Finish ends the log at size (the number of events it should hold) and
// reports checkpoints beyond what was stored.
func (l *Log) Finish(size int64) {
	for l.next < size {
		l.Absent(l.next, nil, false)
	}
	for _, cp := range l.cps {
		l.fail(-1, KindRoot, fmt.Sprintf("a checkpoint signs size %d but only %d events are stored", cp.Size, l.next))
	}
	l.cps = nil
	if t := l.trusted; t != nil {
		l.fail(-1, KindTrusted, fmt.Sprintf("the checkpoint you kept has size %d but the log holds only %d events: it was truncated", t.Size, l.next))
		l.trusted = nil
	}
}

// Size is the number of positions checked.
func (l *Log) Size() int64 { return l.next }

// Bytes is the number of envelope and content bytes hashed.
func (l *Log) Bytes() int64 { return l.bytes }

// Root is the rebuilt root so far.
func (l *Log) Root() []byte { return l.b.Root() }

func (l *Log) fail(seq int64, kind, detail string) {
	l.Report.Add(Failure{Org: l.Org, Seq: seq, Kind: kind, Detail: detail})
}

// OpenCheckpoints verifies signed checkpoints with a verifier key; those
// that fail are reported and left out.
func OpenCheckpoints(org string, notes [][]byte, vkey string, r *Report) []*tlog.Checkpoint {
	var out []*tlog.Checkpoint
	for _, n := range notes {
		cp, err := tlog.OpenCheckpoint(n, vkey)
		if err != nil {
			claim := ""
			if u, perr := tlog.ParseUnverified(n); perr == nil {
				claim = fmt.Sprintf(" (it claims size %d)", u.Size)
			}
			r.Add(Failure{Org: org, Seq: -1, Kind: KindSignature, Detail: fmt.Sprintf("a checkpoint%s does not verify with the key: %v", claim, err)})
			continue
		}
		out = append(out, cp)
	}
	for i := 1; i < len(out); i++ {
		if out[i].Size < out[i-1].Size {
			r.Add(Failure{Org: org, Seq: -1, Kind: KindRoot, Detail: "checkpoints are not in ascending size order"})
			break
		}
	}
	return out
}

// Removals answers, in seq order, whether retention or erasure removed an
// event's envelope or content.
type Removals struct {
	list []*veritrail.Removal // sorted by From
	i    int
	// Records lists the ids of the events that record the removals.
	Records map[string]bool
	// Expired and Erased count what was looked up and found removed.
	Expired, Erased int64
}

// NewRemovals indexes removal ranges.
func NewRemovals(rs []*veritrail.Removal) *Removals {
	list := append([]*veritrail.Removal(nil), rs...)
	slices.SortFunc(list, func(a, b *veritrail.Removal) int { return cmp.Compare(a.From, b.From) })
	r := &Removals{list: list, Records: map[string]bool{}}
	for _, rm := range list {
		r.Records[rm.Record] = true
	}
	return r
}

// At reports what was removed at seq; calls must come in ascending seq.
func (r *Removals) At(seq int64) (envelope, content bool) {
	if r == nil {
		return false, false
	}
	for r.i < len(r.list) && r.list[r.i].To < seq && r.list[r.i].From <= seq {
		// Skip ranges that ended, but only those that started (ranges of
		// different kinds overlap).
		r.i++
	}
	for j := r.i; j < len(r.list) && r.list[j].From <= seq; j++ {
		rm := r.list[j]
		if seq > rm.To {
			continue
		}
		if rm.What == "envelope" {
			envelope, content = true, true
		} else {
			content = true
		}
	}
	return envelope, content
}
