package verify

import (
	"context"
	"math"

	veritrail "github.com/veritrail/veritrail"
)

// Source is where logs are read from: a store's files or database, a
// server's API, an evidence bundle. A source only reads and reports what it
// holds as it holds it; Check decides what is right.
type Source interface {
	// Logs lists the logs the source holds, one per organization.
	Logs(ctx context.Context) ([]LogRef, error)
	// Open returns a reader of one of them. If the reader is an io.Closer,
	// Check closes it.
	Open(ctx context.Context, log LogRef) (LogReader, error)
}

// LogRef names one log of a source.
type LogRef struct {
	Org    string // the organization's name
	Origin string // the log's origin, as its checkpoints and verifier key name it; "" if it has signed nothing yet
	ID     int64  // the source's own handle for it
}

// Info is what a source says of a log before its events are read.
type Info struct {
	// Size is the number of positions to check: a store's log head, or
	// the latest checkpoint's size when the log keeps growing (Growing).
	Size int64
	// Checkpoints are the log's signed checkpoint notes, ascending size.
	Checkpoints [][]byte
	// StoredLeaves: the source keeps the tree's leaf hashes (LeafTile)
	// beside the events, and every event's leaf is compared with its own,
	// so a changed event is named exactly. Without it LeafTile is read only
	// for removed envelopes.
	StoredLeaves bool
	// Growing: events past Size may exist (appended after the latest
	// checkpoint); they are not checked, and Events may be stopped there.
	Growing bool
	// ContentHidden: the source may leave content out (a token without
	// content:read, a bundle made for one): its absence is no failure.
	ContentHidden bool
	// Sparse: the events are a selection, in any order, each with an
	// inclusion proof against the one checkpoint (an evidence bundle); no
	// tree is rebuilt and absent positions are no failure.
	Sparse bool
	// Where says how the log was read, for the output ("through …").
	Where string
}

// Event is a stored event as a source reads it. Its slices are only valid
// during the callback that receives it.
type Event struct {
	// Seq is the event's position; -1 when the source knows none but the
	// envelope's own (a server's API lists events by it).
	Seq      int64
	Envelope []byte
	Content  []byte // nil: none stored (or shown)
	Salt     []byte
	// Leaf is a leaf hash kept beside the event (a bundle line's, a
	// store's level-0 tile entry), nil if none: a source with StoredLeaves
	// that fills it spares Check a LeafTile read per 256 events.
	Leaf []byte
	// Proof is a sparse source's inclusion proof against its checkpoint;
	// nil if there is none or it could not be read.
	Proof [][]byte
	// Derived is what the store derived from the event for its index, for
	// its own IndexChecker (see IndexSource); owned by the event.
	Derived any
	// Unreadable says why the source could not read the event, if it could
	// not; the other fields are then unset.
	Unreadable string
}

// LogReader reads one log.
type LogReader interface {
	Info(ctx context.Context) (*Info, error)
	// Removals lists the ranges retention and erasure removed.
	Removals(ctx context.Context) ([]*veritrail.Removal, error)
	// LeafTile returns level-0 tile index: the leaf hashes of positions
	// 256·index to 256·index+255, or fewer at the right edge.
	LeafTile(ctx context.Context, index int64) ([]byte, error)
	// Events calls fn for every stored event with from ≤ seq < to, in seq
	// order (any order for a Sparse source, which may ignore the range);
	// to = ToEnd reads every stored event from from on, past the log's
	// size too. It stops at fn's first error and returns it.
	Events(ctx context.Context, from, to int64, fn func(*Event) error) error
}

// ConcurrentReader is a LogReader whose Events MAY be called from several
// goroutines at once, over disjoint ranges, each call reading on its own
// connection; every event it gives MUST carry its Seq. Check then reads a
// log in ranges by ConcurrentReads readers at once, takes them in seq
// order, and rebuilds the tree from them as from one reader.
type ConcurrentReader interface {
	ConcurrentReads() int
}

// ToEnd is the Events bound past every stored event: Check reads a store
// to its end, so that events inserted past the log's size are found.
const ToEnd = math.MaxInt64

// RecordReader is a LogReader that can read an event by id with its
// content: Check then confirms that every removal is recorded by a
// retention or erasure event in the log itself.
type RecordReader interface {
	// Record returns the envelope and content (nil if none) of the event
	// with the id, or an error of code veritrail.ENotFound.
	Record(ctx context.Context, id string) (envelope, content []byte, err error)
}

// IndexSource is a LogReader whose store keeps data derived from the
// envelopes (search index columns, full-text vectors, the id index). An
// edited derived value could hide an event from an investigator while its
// envelope stays intact, so every one must be re-derived and compared.
//
// Once IndexChecker was called, Events MAY fill Event.Derived for it.
type IndexSource interface {
	IndexChecker(ctx context.Context, opts IndexOptions) (IndexChecker, error)
}

// IndexOptions are what Check gives a store's IndexChecker.
type IndexOptions struct {
	// Size is the log's size being checked.
	Size int64
	// Fail reports a failure (KindIndex, KindIDIndex) at an event.
	Fail func(seq int64, kind, detail string)
	// Reread reads the envelopes with from ≤ seq < to again, in seq order,
	// as Check reads them (e is what the envelope says; unreadable ones
	// are left out): for a checker that must look closer after a cheap
	// comparison failed.
	Reread func(ctx context.Context, from, to int64, fn func(seq int64, e *veritrail.Event) error) error
}

// IndexChecker compares a store's derived data with the events it is fed,
// in seq order, then reports what is left with Finish. Errors are failures
// to read, not findings (those go to IndexOptions.Fail).
type IndexChecker interface {
	Event(ev *Checked) error
	Finish() error
}

// Checked is a stored event as Check read it, for an IndexChecker. Its
// slices, and Event with its strings, are only valid during the call: an
// IndexChecker MUST copy what it keeps.
type Checked struct {
	Seq      int64
	Envelope []byte
	// Event is what the envelope says: nil if it cannot be read (Check
	// reports that). Its IndexKeys are already computed.
	Event   *veritrail.Event
	Content []byte // nil: none stored
	Derived any    // the source's Event.Derived
}
