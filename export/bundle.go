package export

import (
	"context"
	"io"

	veritrail "github.com/veritrail/veritrail"
	"github.com/veritrail/veritrail/checkpoint"
	"github.com/veritrail/veritrail/tlog"
	"github.com/veritrail/veritrail/verify"
)

// writeBundle writes an evidence bundle (format: verify/bundle.go): the
// events with inclusion proofs against one checkpoint, signed now, that
// covers them all. This is the one place the server writes bundles.
func (x *Jobs) writeBundle(ctx context.Context, j *veritrail.ExportJob, q *veritrail.Query, w io.Writer, progress func(int64)) (int64, error) {
	if x.cfg.Checkpointer == nil {
		return 0, veritrail.Errorf(veritrail.EUnavailable, "this server signs no checkpoints, so it cannot make evidence bundles")
	}
	org, err := x.cfg.Store.OrgByID(ctx, j.OrgID)
	if err != nil {
		return 0, err
	}
	cp, err := x.cfg.Checkpointer.Sign(ctx, org)
	if err != nil {
		return 0, err
	}
	vkey, err := x.cfg.Checkpointer.VerifierKey(org)
	if err != nil {
		return 0, err
	}
	bw, err := verify.NewBundleWriter(w, cp.Note, vkey)
	if err != nil {
		return 0, err
	}
	read := cachedTiles(checkpoint.TileReader(x.cfg.Store, j.OrgID))
	sink := &bundleSink{ctx: ctx, bw: bw, size: cp.Size, read: read}
	if err := WriteEvents(ctx, x.cfg.Store, j.OrgID, q, sink, x.cfg.Turns, progress); err != nil {
		return 0, err
	}
	return sink.Count(), bw.Close()
}

// bundleSink adapts the bundle writer to Writer: it adds each event's
// inclusion proof and leaves out events newer than the checkpoint.
type bundleSink struct {
	ctx  context.Context
	bw   *verify.BundleWriter
	size int64
	read tlog.TileReader
}

func (b *bundleSink) Write(ev *veritrail.StoredEvent) error {
	if ev.Seq >= b.size {
		return nil
	}
	proof, err := tlog.InclusionProof(b.ctx, b.read, uint64(ev.Seq), uint64(b.size))
	if err != nil {
		return err
	}
	return b.bw.Add(&verify.BundleEvent{Seq: ev.Seq, Envelope: ev.Envelope, Content: ev.Content, Salt: ev.Salt, Proof: proof})
}

func (b *bundleSink) Close() error { return nil }
func (b *bundleSink) Count() int64 { return int64(b.bw.Count()) }

// cachedTiles keeps the tiles a bundle reads: neighbouring events share
// most of their proofs. Full tiles never change; partial ones are read at
// the checkpoint's size or later, which only adds to them.
func cachedTiles(read tlog.TileReader) tlog.TileReader {
	cache := map[tlog.TileID][]byte{}
	return func(ctx context.Context, id tlog.TileID) ([]byte, error) {
		if h, ok := cache[id]; ok {
			return h, nil
		}
		h, err := read(ctx, id)
		if err != nil {
			return nil, err
		}
		if len(cache) > 4096 {
			clear(cache)
		}
		cache[id] = h
		return h, nil
	}
}
