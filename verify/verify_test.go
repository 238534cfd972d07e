package verify_test

import (
	"bytes"
	"fmt"
	"testing"
	"time"

	veritrail "github.com/veritrail/veritrail"
	"github.com/veritrail/veritrail/tlog"
	"github.com/veritrail/veritrail/verify"
)

const testOrigin = "test.example/acme"

type storedEvent struct {
	seq                 int64
	env, content, salt  []byte
	leaf                []byte // the leaf hash the tree committed
	removed, envRemoved bool   // content / envelope removed by a recorded retention
	dropped             bool   // no row at all
}

// testLog is a log of n events, each with content, as a store holds it.
func testLog(n int) []*storedEvent {
	var out []*storedEvent
	for i := range n {
		content := []byte(fmt.Sprintf(`{"prompt":"event %d"}`, i))
		salt := bytes.Repeat([]byte{byte(i + 1)}, veritrail.SaltSize)
		e := &veritrail.Event{ID: fmt.Sprintf("ev-%03d", i), Seq: int64(i), Time: time.Unix(1700000000+int64(i), 0).UTC(),
			ReceivedAt: time.Unix(1700000100, 0).UTC(), Type: "ai.prompt", Actor: veritrail.Actor{Type: "user", ID: "u1"},
			Outcome: "success", ContentDigest: veritrail.ContentDigest(salt, content)}
		env := veritrail.AppendEnvelope(nil, e)
		leaf := veritrail.LeafHash(env)
		out = append(out, &storedEvent{seq: int64(i), env: env, content: content, salt: salt, leaf: leaf[:]})
	}
	return out
}

// sign signs a checkpoint over the first size leaves.
func sign(t *testing.T, key *tlog.Key, evs []*storedEvent, size int) []byte {
	t.Helper()
	b := tlog.NewBuilder()
	for _, e := range evs[:size] {
		b.Append(e.leaf)
	}
	note, err := key.SignCheckpoint(testOrigin, uint64(size), b.Root())
	if err != nil {
		t.Fatal(err)
	}
	return note
}

// run verifies evs (in order, as a data directory is read) against the
// checkpoints, extending trusted if given; size is the log's size.
func run(t *testing.T, vkey string, evs []*storedEvent, notes [][]byte, trusted []byte, size int64) *verify.Report {
	t.Helper()
	rep := &verify.Report{Max: 100}
	l := verify.NewLog("acme", verify.OpenCheckpoints("acme", notes, vkey, rep), rep)
	if trusted != nil {
		cp, err := tlog.OpenCheckpoint(trusted, vkey)
		if err != nil {
			t.Fatal(err)
		}
		l.Trust(cp)
	}
	for _, e := range evs {
		switch {
		case e.dropped:
			continue
		case e.envRemoved:
			l.Absent(e.seq, e.leaf, true)
			continue
		}
		var content []byte
		if !e.removed {
			content = e.content
		}
		l.Event(e.seq, e.env, content, e.salt, e.leaf, e.removed)
	}
	l.Finish(size)
	return rep
}

// firstIs fails unless the report's first failure is kind at seq.
func firstIs(t *testing.T, rep *verify.Report, seq int64, kind string) {
	t.Helper()
	if rep.OK() {
		t.Fatalf("no failure; want %s at seq %d", kind, seq)
	}
	if f := rep.Failures[0]; f.Kind != kind || f.Seq != seq {
		t.Fatalf("first failure %v; want %s at seq %d (all: %v)", f, kind, seq, rep.Failures)
	}
}

func TestLog(t *testing.T) {
	key, err := tlog.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	vkey, _ := key.VerifierKey(testOrigin)
	const n = 40
	base := testLog(n)
	notes := [][]byte{sign(t, key, base, 0), sign(t, key, base, 10), sign(t, key, base, 25), sign(t, key, base, n)}
	fresh := func() []*storedEvent {
		out := make([]*storedEvent, n)
		for i, e := range base {
			c := *e
			c.env, c.content = bytes.Clone(e.env), bytes.Clone(e.content)
			out[i] = &c
		}
		return out
	}

	if rep := run(t, vkey, fresh(), notes, nil, n); !rep.OK() {
		t.Fatalf("an untouched log: %v", rep.Failures)
	}

	t.Run("envelope changed", func(t *testing.T) {
		evs := fresh()
		evs[17].env = bytes.Replace(evs[17].env, []byte(`"success"`), []byte(`"failure"`), 1)
		firstIs(t, run(t, vkey, evs, notes, nil, n), 17, verify.KindLeaf)
		// Without the stored leaf, the rebuilt root gives it away.
		evs[17].leaf = nil
		firstIs(t, run(t, vkey, evs, notes, nil, n), -1, verify.KindRoot)
	})
	t.Run("envelope and its leaf changed", func(t *testing.T) {
		evs := fresh()
		evs[3].env = bytes.Replace(evs[3].env, []byte(`"success"`), []byte(`"failure"`), 1)
		leaf := veritrail.LeafHash(evs[3].env)
		evs[3].leaf = leaf[:]
		firstIs(t, run(t, vkey, evs, notes, nil, n), -1, verify.KindRoot)
	})
	t.Run("envelope not canonical", func(t *testing.T) {
		// Bytes that say the same event in another form, committed to by
		// the tree and signed as they are: only their form gives them away.
		evs := fresh()
		evs[9].env = bytes.Replace(evs[9].env, []byte(`,"seq":`), []byte(`, "seq":`), 1)
		leaf := veritrail.LeafHash(evs[9].env)
		evs[9].leaf = leaf[:]
		resigned := [][]byte{sign(t, key, evs, n)}
		rep := run(t, vkey, evs, resigned, nil, n)
		firstIs(t, rep, 9, verify.KindEnvelope)
		if rep.Total != 1 {
			t.Fatalf("want only the envelope's form to fail: %v", rep.Failures)
		}
		evs[9].env = []byte(`{"id":"ev-009","seq":9,`)
		firstIs(t, run(t, vkey, evs, notes, nil, n), 9, verify.KindLeaf)
		if rep := run(t, vkey, evs, notes, nil, n); rep.Failures[1].Kind != verify.KindEnvelope {
			t.Fatalf("unreadable envelope: %v", rep.Failures)
		}
	})
	t.Run("content changed", func(t *testing.T) {
		evs := fresh()
		evs[21].content = []byte(`{"prompt":"something else"}`)
		firstIs(t, run(t, vkey, evs, notes, nil, n), 21, verify.KindContentDigest)
	})
	t.Run("content gone", func(t *testing.T) {
		evs := fresh()
		evs[5].content = nil
		firstIs(t, run(t, vkey, evs, notes, nil, n), 5, verify.KindContentMissing)
		evs[5].content, evs[5].removed = base[5].content, true
		if rep := run(t, vkey, evs, notes, nil, n); !rep.OK() {
			t.Fatalf("content removed by a recorded retention: %v", rep.Failures)
		}
	})
	t.Run("events swapped", func(t *testing.T) {
		evs := fresh()
		evs[30].env, evs[31].env = evs[31].env, evs[30].env
		evs[30].content, evs[31].content = evs[31].content, evs[30].content
		evs[30].salt, evs[31].salt = evs[31].salt, evs[30].salt
		firstIs(t, run(t, vkey, evs, notes, nil, n), 30, verify.KindLeaf)
		// Through the API (no stored leaves), the seqs give it away.
		evs[30].leaf, evs[31].leaf = nil, nil
		firstIs(t, run(t, vkey, evs, notes, nil, n), 30, verify.KindSeq)
	})
	t.Run("event deleted", func(t *testing.T) {
		evs := fresh()
		evs[12].dropped = true
		firstIs(t, run(t, vkey, evs, notes, nil, n), 12, verify.KindMissing)
		evs[12].dropped, evs[12].envRemoved = false, true
		if rep := run(t, vkey, evs, notes, nil, n); !rep.OK() {
			t.Fatalf("envelope expired by a recorded retention: %v", rep.Failures)
		}
	})
	t.Run("log truncated", func(t *testing.T) {
		firstIs(t, run(t, vkey, fresh()[:n-1], notes, nil, n-1), -1, verify.KindRoot)
	})
	t.Run("checkpoint forged", func(t *testing.T) {
		other, _ := tlog.GenerateKey()
		forged := append(append([][]byte(nil), notes...), sign(t, other, base, n))
		firstIs(t, run(t, vkey, fresh(), forged, nil, n), -1, verify.KindSignature)
	})
	t.Run("trusted checkpoint", func(t *testing.T) {
		kept := sign(t, key, base, 20)
		if rep := run(t, vkey, fresh(), notes, kept, n); !rep.OK() {
			t.Fatalf("a log that extends the kept checkpoint: %v", rep.Failures)
		}
		// History rewritten and re-signed with the key: every checkpoint
		// the log now carries verifies, but the kept one does not fit.
		evs := fresh()
		evs[7].env = bytes.Replace(evs[7].env, []byte(`"success"`), []byte(`"failure"`), 1)
		leaf := veritrail.LeafHash(evs[7].env)
		evs[7].leaf = leaf[:]
		resigned := [][]byte{sign(t, key, evs, 10), sign(t, key, evs, n)}
		if rep := run(t, vkey, evs, resigned, nil, n); !rep.OK() {
			t.Fatalf("a consistently rewritten log without a kept checkpoint: %v", rep.Failures)
		}
		firstIs(t, run(t, vkey, evs, resigned, kept, n), -1, verify.KindTrusted)
		// A kept checkpoint beyond the log: it was truncated.
		firstIs(t, run(t, vkey, fresh()[:15], [][]byte{sign(t, key, base, 15)}, kept, 15), -1, verify.KindTrusted)
	})
}
