package commitq

import (
	"context"
	"crypto/sha256"
	"fmt"
	"time"

	veritrail "github.com/veritrail/veritrail"
	"github.com/veritrail/veritrail/tlog"
)

// Tx is what Assign needs of the transaction a writer opened for a batch.
type Tx interface {
	// Log returns org's log in this transaction. Assign calls it once per
	// organization of the batch, before that organization's first request.
	// A coded error other than EInternal (ENotFound for an organization
	// that does not exist) refuses that organization's requests alone;
	// any other error fails the batch.
	Log(ctx context.Context, org int64) (Log, error)
	IDIndex
}

// Log is one organization's log inside a batch's transaction.
type Log interface {
	// Head is the log's Merkle head as of the transaction so far: its size
	// is the next seq. Assign appends each new event's leaf to it; the
	// writer persists the head and its changed tiles (TakeDirty) before
	// committing.
	Head() *tlog.Head
	// Add writes a new event, sealed at its seq; envelope is its exact
	// canonical bytes, valid only during the call.
	Add(ctx context.Context, e *veritrail.Event, envelope []byte) error
}

// IDIndex is an organization's id index (event id → seq) inside the
// batch's transaction, with a savepoint so that a refused request leaves
// no claim behind. One request is resolved at a time.
type IDIndex interface {
	// Savepoint marks the start of one request's claims.
	Savepoint(ctx context.Context) error
	// RollbackSavepoint undoes every claim since Savepoint and ends it.
	RollbackSavepoint(ctx context.Context) error
	// ReleaseSavepoint keeps the claims since Savepoint and ends it.
	ReleaseSavepoint(ctx context.Context) error
	// ClaimIDs records events[i]'s id at seq first+i, with its
	// ServerTime, for every id not stored yet (one statement or a few:
	// the common case of a request of new ids) and returns how many it
	// recorded. Assign calls it inside a savepoint, except for a single
	// id (claimed or not: nothing to undo).
	ClaimIDs(ctx context.Context, org int64, events []*veritrail.Event, first int64) (int64, error)
	// ClaimID records e's id at seq, with its ServerTime, unless the id is
	// stored; it reports whether it did.
	ClaimID(ctx context.Context, org int64, e *veritrail.Event, seq int64) (bool, error)
	// StoredByID returns the stored event of id.
	StoredByID(ctx context.Context, org int64, id string) (Stored, error)
}

// Stored is an event as the id index finds it: what idempotency compares
// a resent event with (veritrail.SameAsStored).
type Stored struct {
	Seq      int64
	Envelope []byte
	// Salt is the content's salt: nil without content, or once the content
	// was removed.
	Salt []byte
	// ServerTime is the event's ServerTime as claimed.
	ServerTime bool
}

// orgBatch is Assign's state of one organization in one batch.
type orgBatch struct {
	log     Log
	err     error                       // the organization's requests are refused with it
	pending map[string]*veritrail.Event // new events of this batch, by id
}

// Assign carries out a batch inside tx, request by request in queue order:
// it resolves each request's ids (new, duplicate of a stored or earlier
// event, or conflict), gives the new events the next seqs of their
// organization's log, stamps them received at now, seals their content,
// builds their envelopes, appends their leaf hashes to the log's Merkle
// head and hands them to the log. It sets each request's Results, or its
// Err when the request is refused. It returns how many new events it
// stored; on an error the writer MUST roll tx back.
func Assign(ctx context.Context, tx Tx, batch []*Request, now time.Time) (stored int, err error) {
	// Microseconds: what every engine stores exactly, so the envelope
	// hashed now is the one read back.
	receivedAt := now.UTC().Truncate(time.Microsecond)
	orgs := map[int64]*orgBatch{}
	var env []byte
	var kept envelopeChunks
	for _, r := range batch {
		ob := orgs[r.Org]
		if ob == nil {
			ob = &orgBatch{pending: map[string]*veritrail.Event{}}
			ob.log, ob.err = tx.Log(ctx, r.Org)
			if ob.err != nil && veritrail.ErrorCode(ob.err) == veritrail.EInternal {
				return 0, ob.err
			}
			orgs[r.Org] = ob
		}
		if ob.err != nil {
			r.Err = ob.err
			continue
		}
		head := ob.log.Head()
		newIdx, err := resolveIDs(ctx, tx, r, int64(head.Size()), ob.pending)
		if err != nil {
			return 0, err
		}
		if r.Err != nil {
			continue
		}
		for _, i := range newIdx {
			e := r.Events[i]
			if e.Seq != int64(head.Size()) {
				return 0, fmt.Errorf("commitq: seq drift for org %d: %d != %d", r.Org, e.Seq, head.Size())
			}
			e.ReceivedAt = receivedAt
			e.SealContent()
			// The buffer starts with the RFC 6962 leaf prefix, so the leaf
			// hash is one SHA-256 over it, without a copy.
			env = veritrail.AppendEnvelope(append(env[:0], 0), e)
			leaf := sha256.Sum256(env)
			head.Append(leaf[:])
			// Set or cleared on every pass: an event written again after
			// a failed batch must not carry the failed pass's envelope.
			if r.KeepEnvelopes {
				e.KeepEnvelope(kept.add(env[1:]))
			} else {
				e.KeepEnvelope(nil)
			}
			if err := ob.log.Add(ctx, e, env[1:]); err != nil {
				return 0, err
			}
			stored++
		}
	}
	return stored, nil
}

// resolveIDs claims the request's event ids (next is the log's next seq)
// and decides, for each event, whether it is new, a duplicate of a stored
// or pending event, or a conflict. It returns the indexes of the new
// events, whose Seq it sets, and fills r.Results. On a conflict it sets
// r.Err and undoes the request's claims.
func resolveIDs(ctx context.Context, ids IDIndex, r *Request, next int64, pending map[string]*veritrail.Event) ([]int, error) {
	r.Results = make([]veritrail.AppendResult, len(r.Events))
	if newIdx, ok, err := claimAll(ctx, ids, r, next, pending); err != nil || ok {
		return newIdx, err
	}
	// Some id is taken (by this batch or before): event by event.
	if err := ids.Savepoint(ctx); err != nil {
		return nil, err
	}
	var newIdx []int
	local := map[string]*veritrail.Event{}
	conflict := func(i int, seq int64) error {
		r.Results = nil
		r.Err = &veritrail.Error{Code: veritrail.EConflict, Index: i, Field: "id", Message: fmt.Sprintf(
			"event %d: id %q is already stored (seq %d) with different content; use a new id for a new event", i, r.Events[i].ID, seq)}
		return ids.RollbackSavepoint(ctx)
	}
	for i, e := range r.Events {
		p := local[e.ID]
		if p == nil {
			p = pending[e.ID]
		}
		if p != nil {
			if !veritrail.SameSubmission(e, p) {
				return nil, conflict(i, p.Seq)
			}
			r.Results[i] = veritrail.AppendResult{Seq: p.Seq, Duplicate: true}
			continue
		}
		claimed, err := ids.ClaimID(ctx, r.Org, e, next)
		if err != nil {
			return nil, fmt.Errorf("claim id: %w", err)
		}
		if claimed {
			e.Seq = next
			r.Results[i] = veritrail.AppendResult{Seq: next}
			local[e.ID] = e
			newIdx = append(newIdx, i)
			next++
			continue
		}
		// Stored by an earlier batch: compare with what is stored.
		st, err := ids.StoredByID(ctx, r.Org, e.ID)
		if err != nil {
			return nil, fmt.Errorf("load stored event %q: %w", e.ID, err)
		}
		same, err := veritrail.SameAsStored(e, st.Envelope, st.Salt, st.ServerTime)
		if err != nil {
			return nil, err
		}
		if !same {
			return nil, conflict(i, st.Seq)
		}
		r.Results[i] = veritrail.AppendResult{Seq: st.Seq, Duplicate: true}
	}
	if err := ids.ReleaseSavepoint(ctx); err != nil {
		return nil, err
	}
	for id, e := range local {
		pending[id] = e
	}
	return newIdx, nil
}

// claimAll is the fast path of resolveIDs, for the common request whose ids
// are all new: it claims them together. If any id is taken it undoes its
// claims and returns false.
func claimAll(ctx context.Context, ids IDIndex, r *Request, next int64, pending map[string]*veritrail.Event) ([]int, bool, error) {
	// The ids go into pending as they are checked, so that an id twice in
	// the request is found there too (one map, not a second one of the
	// request's ids); every way out but success takes them out again.
	added := 0
	unpend := func() {
		for _, e := range r.Events[:added] {
			delete(pending, e.ID)
		}
	}
	for _, e := range r.Events {
		if pending[e.ID] != nil {
			unpend()
			return nil, false, nil
		}
		pending[e.ID] = e
		added++
	}
	// One id is claimed or not, with nothing to undo: no savepoint (two
	// statements saved per one-event request, the common kind).
	undo := len(r.Events) > 1
	if undo {
		if err := ids.Savepoint(ctx); err != nil {
			unpend()
			return nil, false, err
		}
	}
	n, err := ids.ClaimIDs(ctx, r.Org, r.Events, next)
	if err != nil {
		unpend()
		return nil, false, fmt.Errorf("claim ids: %w", err)
	}
	if n != int64(len(r.Events)) {
		unpend()
		if !undo {
			return nil, false, nil
		}
		return nil, false, ids.RollbackSavepoint(ctx)
	}
	if undo {
		if err := ids.ReleaseSavepoint(ctx); err != nil {
			unpend()
			return nil, false, err
		}
	}
	newIdx := make([]int, len(r.Events))
	for i, e := range r.Events {
		e.Seq = next + int64(i)
		r.Results[i] = veritrail.AppendResult{Seq: e.Seq}
		newIdx[i] = i
	}
	return newIdx, true, nil
}

// envelopeChunks holds the envelopes a batch keeps for its subscribers, in
// chunks rather than an allocation each; a chunk is never written again
// once an envelope in it was handed out.
type envelopeChunks struct{ buf []byte }

// envelopeChunk is the size of a chunk: some 100 envelopes.
const envelopeChunk = 64 << 10

// add returns an exact copy of env in the current chunk.
func (c *envelopeChunks) add(env []byte) []byte {
	if cap(c.buf)-len(c.buf) < len(env) {
		c.buf = make([]byte, 0, max(envelopeChunk, len(env)))
	}
	n := len(c.buf)
	c.buf = append(c.buf, env...)
	return c.buf[n:len(c.buf):len(c.buf)]
}
