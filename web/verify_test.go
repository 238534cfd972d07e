package web

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/veritrail/veritrail/internal/npmtest"
	"github.com/veritrail/veritrail/tlog"
)

// RFC 6962 §2.1, written from its recursive definitions: the reference the
// browser's verifier (static/lib/verify.js) is checked against.

func leaf(b []byte) []byte {
	h := sha256.Sum256(append([]byte{0}, b...))
	return h[:]
}

func node(l, r []byte) []byte {
	h := sha256.Sum256(append(append([]byte{1}, l...), r...))
	return h[:]
}

// split is the largest power of two below n.
func split(n int) int {
	k := 1
	for k*2 < n {
		k *= 2
	}
	return k
}

func mth(d [][]byte) []byte {
	if len(d) == 1 {
		return leaf(d[0])
	}
	k := split(len(d))
	return node(mth(d[:k]), mth(d[k:]))
}

func auditPath(m int, d [][]byte) [][]byte {
	if len(d) == 1 {
		return nil
	}
	k := split(len(d))
	if m < k {
		return append(auditPath(m, d[:k]), mth(d[k:]))
	}
	return append(auditPath(m-k, d[k:]), mth(d[:k]))
}

func subproof(m int, d [][]byte, complete bool) [][]byte {
	n := len(d)
	if m == n {
		if complete {
			return nil
		}
		return [][]byte{mth(d)}
	}
	k := split(n)
	if m <= k {
		return append(subproof(m, d[:k], complete), mth(d[k:]))
	}
	return append(subproof(m-k, d[k:], false), mth(d[:k]))
}

type vector struct {
	Kind  string   `json:"kind"` // inclusion, consistency, checkpoint
	Valid bool     `json:"valid"`
	Index int      `json:"index"`
	Size  int      `json:"size,omitempty"`
	From  int      `json:"from"`
	Leaf  string   `json:"leaf,omitempty"`
	Root  string   `json:"root,omitempty"`
	Root1 string   `json:"root1,omitempty"`
	Proof []string `json:"proof,omitempty"`
	Note  string   `json:"note,omitempty"`
	Key   string   `json:"key,omitempty"`
}

func b64(b []byte) string { return base64.StdEncoding.EncodeToString(b) }

func b64s(hs [][]byte) []string {
	out := make([]string, len(hs))
	for i, h := range hs {
		out[i] = b64(h)
	}
	return out
}

// TestBrowserVerifier runs the console's verifier (static/lib/verify.js,
// in Node.js, whose WebCrypto is the browser's API) on proofs made by the
// RFC's definitions and on checkpoints signed by the server's signer, and
// on the same with one byte changed, which it must refuse.
func TestBrowserVerifier(t *testing.T) {
	nodeBin := npmtest.Node(t)
	var data [][]byte
	for i := range 70 {
		data = append(data, []byte{byte(i), byte(i >> 8), 'e'})
	}
	var vs []vector
	flip := func(s string) string {
		b, _ := base64.StdEncoding.DecodeString(s)
		b[len(b)/2] ^= 1
		return b64(b)
	}
	for n := 1; n <= len(data); n++ {
		root := b64(mth(data[:n]))
		for m := 0; m < n; m++ {
			if n > 20 && m%7 != 0 && m != n-1 {
				continue
			}
			v := vector{Kind: "inclusion", Valid: true, Index: m, Size: n, Leaf: b64(leaf(data[m])), Root: root, Proof: b64s(auditPath(m, data[:n]))}
			vs = append(vs, v)
			bad := v
			bad.Valid = false
			if len(v.Proof) > 0 {
				bad.Proof = append([]string(nil), v.Proof...)
				bad.Proof[len(bad.Proof)-1] = flip(bad.Proof[len(bad.Proof)-1])
			} else {
				bad.Leaf = flip(bad.Leaf)
			}
			vs = append(vs, bad)
			if n > 1 {
				wrong := v
				wrong.Valid, wrong.Index = false, (m+1)%n
				vs = append(vs, wrong)
			}
		}
		for m := 1; m < n; m++ {
			if n > 20 && m%5 != 0 && m != 1 && m != n-1 {
				continue
			}
			v := vector{Kind: "consistency", Valid: true, From: m, Size: n, Root1: b64(mth(data[:m])), Root: root, Proof: b64s(subproof(m, data[:n], true))}
			vs = append(vs, v)
			bad := v
			bad.Valid, bad.Root1 = false, flip(v.Root1)
			vs = append(vs, bad)
			if len(v.Proof) > 0 {
				cut := v
				cut.Valid, cut.Proof = false, v.Proof[:len(v.Proof)-1]
				vs = append(vs, cut)
			}
		}
	}
	key, err := tlog.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	other, _ := tlog.GenerateKey()
	const origin = "veritrail-test/acme"
	vkey, _ := key.VerifierKey(origin)
	otherKey, _ := other.VerifierKey(origin)
	note, err := key.SignCheckpoint(origin, 70, mth(data))
	if err != nil {
		t.Fatal(err)
	}
	vs = append(vs,
		vector{Kind: "checkpoint", Valid: true, Note: string(note), Key: vkey, Size: 70, Root: b64(mth(data))},
		vector{Kind: "checkpoint", Valid: false, Note: string(note), Key: otherKey},
		vector{Kind: "checkpoint", Valid: false, Note: string(note)[:len(origin)+1] + "71" + string(note)[len(origin)+3:], Key: vkey},
	)
	dir := t.TempDir()
	file := filepath.Join(dir, "vectors.json")
	b, _ := json.Marshal(vs)
	if err := os.WriteFile(file, b, 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(nodeBin, "testdata/verify_test.mjs", file).CombinedOutput()
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	t.Logf("%s", out)
}
