package storetest

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	veritrail "github.com/veritrail/veritrail"
	"github.com/veritrail/veritrail/tlog"
)

// testLog checks the Merkle log a store keeps against a tree built here
// from the envelopes it returns: the head, tiles good for inclusion and
// consistency proofs at and across tile boundaries, checkpoints, witness
// records and set-once settings.
func testLog(t *testing.T, open Opener) {
	s := openStore(t, open)
	ctx := context.Background()
	a, b := newOrg(t, s, "log-a"), newOrg(t, s, "log-b")
	if size, root, err := s.LogHead(ctx, a.ID); err != nil || size != 0 || !bytes.Equal(root, tlog.EmptyRoot()) {
		t.Fatalf("empty head: %d %x %v", size, root, err)
	}
	base := time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC)
	var roots = map[int64][]byte{}
	n := 0
	for _, batch := range []int{1, 2, 253, 1, 256, 300, 1} {
		evs := make([]*veritrail.Event, batch)
		for i := range evs {
			evs[i] = event(fmt.Sprintf("l%04d", n), "auth.login", base.Add(time.Duration(n)*time.Second))
			n++
		}
		mustAppend(t, s, a.ID, evs...)
		size, root, err := s.LogHead(ctx, a.ID)
		if err != nil || size != int64(n) {
			t.Fatalf("head after %d events: size %d, %v", n, size, err)
		}
		roots[size] = root
	}
	mustAppend(t, s, b.ID, event("other", "auth.login", base))

	stored := allEvents(t, s, a.ID, false)
	if len(stored) != n {
		t.Fatalf("%d events read back, %d appended", len(stored), n)
	}
	builder := tlog.NewBuilder()
	leaves := make([][]byte, n)
	for i, ev := range stored {
		if ev.Seq != int64(i) {
			t.Fatalf("event %d has seq %d", i, ev.Seq)
		}
		h := veritrail.LeafHash(ev.Envelope)
		leaves[i] = h[:]
		builder.Append(h[:])
		if r, ok := roots[int64(i+1)]; ok && !bytes.Equal(r, builder.Root()) {
			t.Errorf("the stored root at size %d is not the root of the envelopes", i+1)
		}
	}
	read := func(ctx context.Context, id tlog.TileID) ([]byte, error) {
		return s.ReadTile(ctx, a.ID, id.Level, id.Index)
	}
	root := builder.Root()
	for _, i := range []int{0, 1, 255, 256, 257, 511, 512, n - 2, n - 1} {
		p, err := tlog.InclusionProof(ctx, read, uint64(i), uint64(n))
		if err != nil {
			t.Fatalf("inclusion proof of %d: %v", i, err)
		}
		if err := tlog.VerifyInclusion(uint64(i), uint64(n), leaves[i], p, root); err != nil {
			t.Errorf("inclusion of %d in %d: %v", i, n, err)
		}
	}
	for size, r := range roots {
		p, err := tlog.ConsistencyProof(ctx, read, uint64(size), uint64(n))
		if err != nil {
			t.Fatalf("consistency %d→%d: %v", size, n, err)
		}
		if err := tlog.VerifyConsistency(uint64(size), uint64(n), p, r, root); err != nil {
			t.Errorf("consistency %d→%d: %v", size, n, err)
		}
	}
	if _, err := s.ReadTile(ctx, b.ID, 0, 1); veritrail.ErrorCode(err) != veritrail.ENotFound {
		t.Errorf("a tile org b does not have: %v", err)
	}

	// Checkpoints only go forward.
	if _, err := s.LatestCheckpoint(ctx, a.ID); veritrail.ErrorCode(err) != veritrail.ENotFound {
		t.Errorf("latest checkpoint of a new log: %v", err)
	}
	cp := func(size int64, root []byte) *veritrail.Checkpoint {
		return &veritrail.Checkpoint{Size: size, Root: root, Note: []byte(fmt.Sprintf("note %d\n", size)), SignedAt: base}
	}
	for _, c := range []*veritrail.Checkpoint{cp(3, roots[3]), cp(3, roots[3]), cp(n0(roots, 513), roots[n0(roots, 513)])} {
		if err := s.AddCheckpoint(ctx, a.ID, c); err != nil {
			t.Fatalf("add checkpoint %d: %v", c.Size, err)
		}
	}
	for name, c := range map[string]*veritrail.Checkpoint{"smaller": cp(3, roots[3]), "other root": cp(n0(roots, 513), roots[3])} {
		if err := s.AddCheckpoint(ctx, a.ID, c); veritrail.ErrorCode(err) != veritrail.EConflict {
			t.Errorf("%s checkpoint: %v", name, err)
		}
	}
	latest, err := s.LatestCheckpoint(ctx, a.ID)
	if err != nil || latest.Size != n0(roots, 513) || !strings.HasPrefix(string(latest.Note), "note") {
		t.Errorf("latest: %+v %v", latest, err)
	}
	if cps, _ := s.Checkpoints(ctx, a.ID, 4, 10); len(cps) != 1 {
		t.Errorf("checkpoints from size 4: %d", len(cps))
	}
	if _, err := s.LatestCheckpoint(ctx, b.ID); veritrail.ErrorCode(err) != veritrail.ENotFound {
		t.Errorf("org b sees a checkpoint: %v", err)
	}

	// Witness attempts, newest first, per organization.
	s.RecordWitness(ctx, a.ID, 3, "https://w1.example", false, "down")
	s.RecordWitness(ctx, a.ID, 3, "https://w2.example", true, "")
	if ws, _ := s.WitnessLog(ctx, a.ID, 10); len(ws) != 2 || ws[0].URL != "https://w2.example" || !ws[0].OK || ws[1].Detail != "down" {
		t.Errorf("witness log: %+v", ws)
	}
	if ws, _ := s.WitnessLog(ctx, b.ID, 10); len(ws) != 0 {
		t.Errorf("org b's witness log: %+v", ws)
	}

	// Cosignatures: one per key name and size (the fresher replaces it),
	// listed for the largest sizes first, per organization.
	at := base.Add(time.Hour)
	for _, c := range []*veritrail.Cosignature{
		{Size: 3, KeyName: "w1.example", Line: []byte("— w1.example old\n"), At: base},
		{Size: 3, KeyName: "w1.example", Line: []byte("— w1.example AAAA\n"), At: at},
		{Size: 3, KeyName: "w0.example", Line: []byte("— w0.example BBBB\n"), At: at},
		{Size: 7, KeyName: "w1.example", Line: []byte("— w1.example CCCC\n"), At: at},
	} {
		if err := s.AddCosignature(ctx, a.ID, c); err != nil {
			t.Fatalf("add cosignature: %v", err)
		}
	}
	got, err := s.Cosignatures(ctx, a.ID, 2)
	if err != nil || len(got) != 3 || got[0].Size != 7 || got[1].KeyName != "w0.example" ||
		string(got[2].Line) != "— w1.example AAAA\n" || !got[2].At.Equal(at) {
		t.Errorf("cosignatures: %v", err)
		for _, c := range got {
			t.Logf("  %d %s %q %s", c.Size, c.KeyName, c.Line, c.At)
		}
	}
	if got, _ := s.Cosignatures(ctx, a.ID, 1); len(got) != 1 || got[0].Size != 7 {
		t.Errorf("cosignatures of the largest size: %d", len(got))
	}
	if got, _ := s.Cosignatures(ctx, b.ID, 10); len(got) != 0 {
		t.Errorf("org b sees %d cosignatures", len(got))
	}

	// Installation settings are set once.
	if v, err := s.Setting(ctx, "origin_prefix", "first.example"); err != nil || v != "first.example" {
		t.Fatalf("setting: %q %v", v, err)
	}
	if v, _ := s.Setting(ctx, "origin_prefix", "second.example"); v != "first.example" {
		t.Errorf("a set-once setting changed to %q", v)
	}
	if _, err := s.Setting(ctx, "never_set", ""); veritrail.ErrorCode(err) != veritrail.ENotFound {
		t.Errorf("unset setting: %v", err)
	}
}

// n0 returns the largest recorded size not above max.
func n0(roots map[int64][]byte, max int64) int64 {
	best := int64(0)
	for size := range roots {
		if size <= max && size > best {
			best = size
		}
	}
	return best
}
