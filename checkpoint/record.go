package checkpoint

import (
	"bytes"
	"context"
	"fmt"

	"golang.org/x/mod/sumdb/note"

	veritrail "github.com/veritrail/veritrail"
	"github.com/veritrail/veritrail/tlog"
)

// Record is an organization's checkpoint of record: the newest checkpoint
// that met its witness policy, with the cosignatures of the policy's
// witnesses as further signature lines.
type Record struct {
	Checkpoint *veritrail.Checkpoint
	// Note is the checkpoint's signed note with the cosignature lines
	// appended: what /tlog/{org}/checkpoint serves.
	Note []byte
	// Cosigned is how many of the policy's witnesses cosigned it.
	Cosigned int
}

// cosignedSizes is how many of the newest cosigned sizes are looked at for
// one that meets the policy: witnesses are only ever handed the newest
// checkpoint, so the one of record is among the last few cosigned.
const cosignedSizes = 32

// OfRecord returns org's checkpoint of record. Without a quorum in the
// policy it is the latest checkpoint (signed now if the log grew or has
// none), with whatever cosignatures of the policy's witnesses it has. With
// a quorum K it is the newest checkpoint that K of the witnesses cosigned;
// ENotFound while there is none.
func (c *Checkpointer) OfRecord(ctx context.Context, org *veritrail.Org) (*Record, error) {
	st, err := c.store.OrgSettings(ctx, org.ID)
	if err != nil {
		return nil, err
	}
	policy := &st.Witnessing
	verifiers, err := WitnessVerifiers(policy)
	if err != nil {
		return nil, err
	}
	cosigs, err := c.store.Cosignatures(ctx, org.ID, cosignedSizes)
	if err != nil {
		return nil, err
	}
	bySize := map[int64][]*veritrail.Cosignature{}
	var sizes []int64
	for _, cs := range cosigs {
		if len(bySize[cs.Size]) == 0 {
			sizes = append(sizes, cs.Size)
		}
		bySize[cs.Size] = append(bySize[cs.Size], cs)
	}
	if policy.Quorum == 0 {
		cp, err := c.latest(ctx, org)
		if err != nil {
			return nil, err
		}
		return assemble(cp, bySize[cp.Size], verifiers), nil
	}
	for _, size := range sizes { // largest first
		cps, err := c.store.Checkpoints(ctx, org.ID, size, 1)
		if err != nil {
			return nil, err
		}
		if len(cps) == 0 || cps[0].Size != size {
			continue
		}
		if r := assemble(cps[0], bySize[size], verifiers); r.Cosigned >= policy.Quorum {
			return r, nil
		}
	}
	return nil, veritrail.Errorf(veritrail.ENotFound,
		"no checkpoint of this log has been cosigned by %d of its %d witnesses yet", policy.Quorum, len(policy.Witnesses))
}

func (c *Checkpointer) latest(ctx context.Context, org *veritrail.Org) (*veritrail.Checkpoint, error) {
	cp, err := c.store.LatestCheckpoint(ctx, org.ID)
	if veritrail.ErrorCode(err) == veritrail.ENotFound {
		return c.Sign(ctx, org)
	}
	return cp, err
}

// assemble appends to cp's note the cosignature lines that verify with one
// of the policy's keys, one per key.
func assemble(cp *veritrail.Checkpoint, cosigs []*veritrail.Cosignature, verifiers []note.Verifier) *Record {
	r := &Record{Checkpoint: cp, Note: bytes.Clone(cp.Note)}
	for _, v := range verifiers {
		for _, cs := range cosigs {
			if cs.KeyName != v.Name() {
				continue
			}
			if _, ok := tlog.VerifyCosignature(cp.Note, cs.Line, v); ok {
				r.Note = append(r.Note, cs.Line...)
				r.Cosigned++
				break
			}
		}
	}
	return r
}

// String describes a record for logs.
func (r *Record) String() string {
	return fmt.Sprintf("checkpoint of size %d with %d cosignatures", r.Checkpoint.Size, r.Cosigned)
}
