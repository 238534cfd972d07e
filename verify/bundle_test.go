package verify_test

import (
	"bytes"
	"testing"
	"time"

	veritrail "github.com/veritrail/veritrail"
	"github.com/veritrail/veritrail/tlog"
	"github.com/veritrail/veritrail/verify"
)

// smallBundle is a bundle of a two-event log: both events, their content,
// and their proofs against a signed checkpoint of size 2.
func smallBundle(t testing.TB) (bundle []byte, vkey string) {
	t.Helper()
	key, err := tlog.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	const origin = "test.example/acme"
	var envs, contents, salts [][]byte
	var leaves [][]byte
	b := tlog.NewBuilder()
	for i := range 2 {
		content := []byte(`{"prompt":"hello, \"world\"","n":` + string(rune('0'+i)) + `}`)
		salt := bytes.Repeat([]byte{byte(i + 1)}, veritrail.SaltSize)
		e := &veritrail.Event{ID: "ev-" + string(rune('a'+i)), Seq: int64(i), Time: time.Unix(1700000000+int64(i), 0).UTC(),
			ReceivedAt: time.Unix(1700000100, 0).UTC(), Type: "ai.prompt", Actor: veritrail.Actor{Type: "user", ID: "u1"},
			ContentDigest: veritrail.ContentDigest(salt, content)}
		env := veritrail.AppendEnvelope(nil, e)
		leaf := veritrail.LeafHash(env)
		b.Append(leaf[:])
		envs, contents, salts, leaves = append(envs, env), append(contents, content), append(salts, salt), append(leaves, leaf[:])
	}
	note, err := key.SignCheckpoint(origin, 2, b.Root())
	if err != nil {
		t.Fatal(err)
	}
	vkey, _ = key.VerifierKey(origin)
	var buf bytes.Buffer
	bw, err := verify.NewBundleWriter(&buf, note, vkey)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 2 {
		bw.Add(&verify.BundleEvent{Seq: int64(i), Envelope: envs[i], Content: contents[i], Salt: salts[i], Proof: [][]byte{leaves[1-i]}})
	}
	if err := bw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes(), vkey
}

func check(data []byte, vkey string) (*verify.BundleResult, *verify.Report) {
	rep := &verify.Report{}
	res, err := verify.Bundle(bytes.NewReader(data), int64(len(data)), vkey, rep)
	if err != nil {
		rep.Add(verify.Failure{Kind: "error", Detail: err.Error()})
	}
	return res, rep
}

func TestBundleEveryByte(t *testing.T) {
	data, vkey := smallBundle(t)
	res, rep := check(data, vkey)
	if !rep.OK() || res.Events != 2 || res.Contents != 2 || res.KeyFromBundle {
		t.Fatalf("a fresh bundle: %+v %v", res, rep.Failures)
	}
	if res, rep := check(data, ""); !rep.OK() || !res.KeyFromBundle {
		t.Fatalf("with the bundle's own key: %+v %v", res, rep.Failures)
	}
	other, _ := tlog.GenerateKey()
	otherKey, _ := other.VerifierKey("test.example/acme")
	if _, rep := check(data, otherKey); rep.OK() {
		t.Error("verified with another key")
	}
	// Every byte, every bit that matters for ASCII and binary alike.
	for i := range data {
		for _, flip := range []byte{0x01, 0x20, 0x80} {
			b := bytes.Clone(data)
			b[i] ^= flip
			if _, rep := check(b, vkey); rep.OK() {
				t.Errorf("byte %d ^ %#x of %d: still verifies", i, flip, len(data))
			}
		}
	}
	// Appending or cutting bytes too.
	if _, rep := check(append(bytes.Clone(data), 0), vkey); rep.OK() {
		t.Error("a byte appended: still verifies")
	}
	if _, rep := check(data[:len(data)-1], vkey); rep.OK() {
		t.Error("a byte cut: still verifies")
	}
}

// FuzzBundle: no input makes the checker panic, and only the exact bytes
// written verify.
func FuzzBundle(f *testing.F) {
	data, vkey := smallBundle(f)
	f.Add(data)
	f.Add(data[:len(data)/2])
	f.Add([]byte("PK\x03\x04"))
	f.Fuzz(func(t *testing.T, b []byte) {
		if _, rep := check(b, vkey); rep.OK() && !bytes.Equal(b, data) {
			t.Fatalf("a different file verified: %q", b)
		}
	})
}
