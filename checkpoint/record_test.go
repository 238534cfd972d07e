package checkpoint

import (
	"bytes"
	"context"
	"crypto/rand"
	"strings"
	"testing"
	"time"

	flog "github.com/transparency-dev/formats/log"
	fnote "github.com/transparency-dev/formats/note"
	"golang.org/x/mod/sumdb/note"

	veritrail "github.com/veritrail/veritrail"
	"github.com/veritrail/veritrail/tlog"
)

// witnessKey is a witness's signing key (cosignature/v1) and verifier key.
type witnessKey struct {
	signer *fnote.Signer
	vkey   string
}

func newWitnessKey(t *testing.T, name string) witnessKey {
	skey, vkey, err := note.GenerateKey(rand.Reader, name)
	if err != nil {
		t.Fatal(err)
	}
	s, err := fnote.NewSignerForCosignatureV1(skey)
	if err != nil {
		t.Fatal(err)
	}
	return witnessKey{s, vkey}
}

// cosign returns the witness's cosignature line of a signed checkpoint.
func (w witnessKey) cosign(t *testing.T, signed []byte) []byte {
	text, _, _ := bytes.Cut(signed, []byte("\n\n"))
	n, err := note.Sign(&note.Note{Text: string(text) + "\n"}, w.signer)
	if err != nil {
		t.Fatal(err)
	}
	_, line, _ := bytes.Cut(n, []byte("\n\n"))
	return line
}

// TestCheckpointOfRecord: with a quorum, the checkpoint of record is the
// newest that K of the policy's witnesses cosigned (their lines appended,
// one per witness, only lines that verify counted); without one, the
// latest checkpoint.
func TestCheckpointOfRecord(t *testing.T) {
	key, _ := tlog.GenerateKey()
	in := newInstallation(t, key)
	ctx := context.Background()
	w1, w2 := newWitnessKey(t, "w1.test"), newWitnessKey(t, "w2.test")
	setPolicy := func(quorum int) {
		st := veritrail.DefaultSettings()
		st.Witnessing = veritrail.WitnessPolicy{Quorum: quorum, Witnesses: []veritrail.Witness{
			{URL: "https://w1.test", Key: w1.vkey}, {URL: "https://w2.test", Key: w2.vkey}}}
		if err := in.store.PutOrgSettings(ctx, in.org.ID, st); err != nil {
			t.Fatal(err)
		}
	}
	setPolicy(2)
	in.grow("a", 5)
	cp5 := in.sign()
	in.grow("b", 3)
	cp8 := in.sign()
	if _, err := in.cp.OfRecord(ctx, in.org); veritrail.ErrorCode(err) != veritrail.ENotFound {
		t.Fatalf("no cosignature yet: %v", err)
	}
	add := func(size int64, w witnessKey, line []byte) {
		name := strings.SplitN(w.vkey, "+", 2)[0]
		if err := in.store.AddCosignature(ctx, in.org.ID, &veritrail.Cosignature{Size: size, KeyName: name, Line: line, At: time.Now()}); err != nil {
			t.Fatal(err)
		}
	}
	add(5, w1, w1.cosign(t, cp5.Note))
	add(5, w2, w2.cosign(t, cp5.Note))
	add(8, w1, w1.cosign(t, cp8.Note))
	add(8, w2, w2.cosign(t, cp5.Note)) // w2's line for another checkpoint: does not count
	record := func(wantSize int64, wantCosigned int) {
		t.Helper()
		r, err := in.cp.OfRecord(ctx, in.org)
		if err != nil || r.Checkpoint.Size != wantSize || r.Cosigned != wantCosigned {
			t.Fatalf("record: %v %v, want size %d with %d cosignatures", r, err, wantSize, wantCosigned)
		}
		vkey, _ := in.cp.VerifierKey(in.org)
		v, _ := note.NewVerifier(vkey)
		v1, _ := fnote.NewVerifierForCosignatureV1(w1.vkey)
		v2, _ := fnote.NewVerifierForCosignatureV1(w2.vkey)
		_, _, n, err := flog.ParseCheckpoint(r.Note, v.Name(), v, v1, v2)
		if err != nil || len(n.Sigs) != 1+wantCosigned {
			t.Fatalf("the served note: %v, %d signatures verify\n%s", err, len(n.Sigs), r.Note)
		}
	}
	record(5, 2)
	add(8, w2, w2.cosign(t, cp8.Note))
	record(8, 2)
	setPolicy(0)
	in.grow("c", 1)
	record(8, 2) // the latest signed: the log grew, but no round signed since
	in.sign()
	record(9, 0)
}
