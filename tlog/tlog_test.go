package tlog

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"math/rand/v2"
	"testing"
)

// An independent RFC 6962 reference, written from the RFC's recursive
// definitions (§2.1), to check what the tiles and transparency-dev/merkle
// produce.

func refLeaf(data []byte) []byte {
	h := sha256.Sum256(append([]byte{0}, data...))
	return h[:]
}

func refNode(l, r []byte) []byte {
	h := sha256.Sum256(append(append([]byte{1}, l...), r...))
	return h[:]
}

// split is the largest power of two smaller than n.
func split(n int) int {
	k := 1
	for k<<1 < n {
		k <<= 1
	}
	return k
}

// mth is MTH(D[n]) over leaf hashes.
func mth(leaves [][]byte) []byte {
	switch len(leaves) {
	case 0:
		h := sha256.Sum256(nil)
		return h[:]
	case 1:
		return leaves[0]
	}
	k := split(len(leaves))
	return refNode(mth(leaves[:k]), mth(leaves[k:]))
}

// path is PATH(m, D[n]), the inclusion proof.
func path(m int, leaves [][]byte) [][]byte {
	if len(leaves) <= 1 {
		return nil
	}
	k := split(len(leaves))
	if m < k {
		return append(path(m, leaves[:k]), mth(leaves[k:]))
	}
	return append(path(m-k, leaves[k:]), mth(leaves[:k]))
}

// subproof is SUBPROOF(m, D[n], b), the consistency proof.
func subproof(m int, leaves [][]byte, b bool) [][]byte {
	n := len(leaves)
	if m == n {
		if b {
			return nil
		}
		return [][]byte{mth(leaves)}
	}
	k := split(n)
	if m <= k {
		return append(subproof(m, leaves[:k], b), mth(leaves[k:]))
	}
	return append(subproof(m-k, leaves[k:], false), mth(leaves[:k]))
}

// memTiles builds a log with Head and keeps its tiles as a store would.
type memTiles struct {
	head  *Head
	tiles map[TileID][]byte
}

func (m *memTiles) append(leaf []byte) {
	m.head.Append(leaf)
	for _, t := range m.head.TakeDirty() {
		m.tiles[t.ID] = append([]byte(nil), t.Hashes...)
	}
}

func (m *memTiles) read(_ context.Context, id TileID) ([]byte, error) {
	h, ok := m.tiles[id]
	if !ok {
		return nil, fmt.Errorf("no tile %v", id)
	}
	return h, nil
}

func leaves(n int) [][]byte {
	out := make([][]byte, n)
	for i := range out {
		out[i] = refLeaf([]byte(fmt.Sprintf("event %d", i)))
	}
	return out
}

func equalProofs(a, b [][]byte) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if !bytes.Equal(a[i], b[i]) {
			return false
		}
	}
	return true
}

// TestProofsAgainstReference checks roots, inclusion and consistency proofs
// built from tiles at every size up to 300 and at the edge sizes of tiles
// (255/256/257, 65535/65536/65537…), against the reference.
func TestProofsAgainstReference(t *testing.T) {
	ctx := context.Background()
	const max = 66000
	all := leaves(max)
	m := &memTiles{head: NewHead(), tiles: map[TileID][]byte{}}
	sizes := map[int]bool{}
	for n := 1; n <= 300; n++ {
		sizes[n] = true
	}
	for _, n := range []int{511, 512, 513, 1023, 1024, 1025, 4095, 4096, 4097, 65535, 65536, 65537, max} {
		sizes[n] = true
	}
	rnd := rand.New(rand.NewPCG(1, 2))
	type checkpoint struct {
		size int
		root []byte
	}
	var cps []checkpoint
	for n := 1; n <= max; n++ {
		m.append(all[n-1])
		if !sizes[n] {
			continue
		}
		want := mth(all[:n])
		if !bytes.Equal(m.head.Root(), want) {
			t.Fatalf("size %d: head root differs from reference", n)
		}
		if got, err := RootAt(ctx, m.read, uint64(n)); err != nil || !bytes.Equal(got, want) {
			t.Fatalf("size %d: root from tiles: %v", n, err)
		}
		// Inclusion: every leaf for small trees, a sample and the edges for large.
		idx := []int{0, n - 1, n / 2}
		if n <= 300 {
			idx = idx[:0]
			for i := 0; i < n; i++ {
				idx = append(idx, i)
			}
		} else {
			for range 20 {
				idx = append(idx, rnd.IntN(n))
			}
		}
		for _, i := range idx {
			p, err := InclusionProof(ctx, m.read, uint64(i), uint64(n))
			if err != nil {
				t.Fatalf("inclusion %d/%d: %v", i, n, err)
			}
			if !equalProofs(p, path(i, all[:n])) {
				t.Fatalf("inclusion %d/%d differs from the reference", i, n)
			}
			if err := VerifyInclusion(uint64(i), uint64(n), all[i], p, want); err != nil {
				t.Fatalf("inclusion %d/%d does not verify: %v", i, n, err)
			}
			if n > 1 {
				bad := append([][]byte(nil), p...)
				bad[0] = refLeaf([]byte("forged"))
				if VerifyInclusion(uint64(i), uint64(n), all[i], bad, want) == nil {
					t.Fatalf("forged inclusion %d/%d verified", i, n)
				}
			}
		}
		// Consistency from earlier checkpoints (and from a random size).
		for _, cp := range append(cps, checkpoint{size: 1 + rnd.IntN(n), root: nil}) {
			root := cp.root
			if root == nil {
				root = mth(all[:cp.size])
			}
			p, err := ConsistencyProof(ctx, m.read, uint64(cp.size), uint64(n))
			if err != nil {
				t.Fatalf("consistency %d->%d: %v", cp.size, n, err)
			}
			if !equalProofs(p, subproof(cp.size, all[:n], true)) {
				t.Fatalf("consistency %d->%d differs from the reference", cp.size, n)
			}
			if err := VerifyConsistency(uint64(cp.size), uint64(n), p, root, want); err != nil {
				t.Fatalf("consistency %d->%d does not verify: %v", cp.size, n, err)
			}
			if cp.size < n && VerifyConsistency(uint64(cp.size), uint64(n), p, root, refLeaf([]byte("x"))) == nil {
				t.Fatalf("consistency %d->%d verified against a wrong root", cp.size, n)
			}
		}
		if len(cps) < 40 && (n <= 40 || n%7 == 0 || n > 60000) {
			cps = append(cps, checkpoint{size: n, root: want})
		}
	}
	// Leaf hashes come back from the tiles.
	for _, i := range []int{0, 255, 256, 65535, 65536, max - 1} {
		if h, err := LeafHash(ctx, m.read, uint64(i)); err != nil || !bytes.Equal(h, all[i]) {
			t.Fatalf("leaf %d: %v", i, err)
		}
	}
	if _, err := InclusionProof(ctx, m.read, max, max); err == nil {
		t.Fatal("inclusion proof for a leaf past the end")
	}
}

// TestHeadReload persists a head (compact range and edge tiles) at many
// sizes, reloads it, and keeps appending: the roots stay those of the
// reference.
func TestHeadReload(t *testing.T) {
	all := leaves(70000)
	m := &memTiles{head: NewHead(), tiles: map[TileID][]byte{}}
	rnd := rand.New(rand.NewPCG(3, 4))
	for n := 0; n < len(all); {
		step := 1 + rnd.IntN(3000)
		for i := 0; i < step && n < len(all); i++ {
			m.append(all[n])
			n++
		}
		var edge []*Tile
		for _, id := range EdgeTiles(uint64(n)) {
			edge = append(edge, &Tile{ID: id, Hashes: m.tiles[id]})
		}
		h, err := LoadHead(uint64(n), m.head.CompactHashes(), edge)
		if err != nil {
			t.Fatalf("reload at %d: %v", n, err)
		}
		m.head = h
		if !bytes.Equal(h.Root(), mth(all[:n])) {
			t.Fatalf("root after reload at %d differs", n)
		}
	}
	if _, err := LoadHead(10, nil, nil); err == nil {
		t.Fatal("a head without its compact range loaded")
	}
}

func TestKeyRoundTrip(t *testing.T) {
	for range 50 { // enough keys that some base64 contains '+' and '/'
		k, err := GenerateKey()
		if err != nil {
			t.Fatal(err)
		}
		back, err := ParseKey(k.Encode())
		if err != nil {
			t.Fatalf("%s: %v", k.Encode(), err)
		}
		cp, err := back.SignCheckpoint("example.com/acme", 7, EmptyRoot())
		if err != nil {
			t.Fatal(err)
		}
		vkey, _ := k.VerifierKey("example.com/acme")
		got, err := OpenCheckpoint(cp, vkey)
		if err != nil || got.Size != 7 || got.Origin != "example.com/acme" {
			t.Fatalf("%+v %v", got, err)
		}
		other, _ := k.VerifierKey("example.com/globex")
		if _, err := OpenCheckpoint(cp, other); err == nil {
			t.Fatal("checkpoint verified under another origin's key")
		}
	}
	if _, err := ParseKey("PRIVATE+KEY+x+00000000+AAAA"); err == nil {
		t.Fatal("garbage key accepted")
	}
}

// TestBuilderKeepsNoCallerMemory appends every leaf from one buffer that is
// overwritten after each call, as verify's recycled batches are: the root
// must be the one over the leaves as they were appended. (The builder once
// kept the slice of a left leaf until its sibling came, and verify --server
// failed on an honest log now and then.)
func TestBuilderKeepsNoCallerMemory(t *testing.T) {
	var leaves [][]byte
	for i := range 37 {
		leaves = append(leaves, refLeaf([]byte(fmt.Sprintf("entry %d", i))))
	}
	b := NewBuilder()
	buf := make([]byte, 32)
	for i, l := range leaves {
		copy(buf, l)
		b.Append(buf)
		for j := range buf {
			buf[j] = 0xff // the caller reuses its buffer
		}
		if got, want := b.Root(), mth(leaves[:i+1]); !bytes.Equal(got, want) {
			t.Fatalf("root after %d leaves: %x, want %x", i+1, got, want)
		}
	}
}

// TestBuilderAgainstReference checks the verifier's rebuilt root against
// RFC 6962's recursive definition at every size up to 600.
func TestBuilderAgainstReference(t *testing.T) {
	ls := leaves(600)
	b := NewBuilder()
	if !bytes.Equal(b.Root(), EmptyRoot()) {
		t.Fatal("empty root")
	}
	for n := 1; n <= len(ls); n++ {
		b.Append(ls[n-1])
		if b.Size() != uint64(n) || !bytes.Equal(b.Root(), mth(ls[:n])) {
			t.Fatalf("size %d: root differs from the reference", n)
		}
	}
}
