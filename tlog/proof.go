package tlog

import (
	"context"
	"crypto/sha256"
	"fmt"

	"github.com/transparency-dev/merkle/compact"
	"github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"
)

// TileReader returns the hashes of a tile as stored now (a partial tile at
// its current width). Proofs for an older tree size only read the prefix
// that existed then: the log is append-only.
type TileReader func(ctx context.Context, id TileID) ([]byte, error)

// EmptyRoot is the RFC 6962 root of the empty tree: SHA-256 of nothing.
func EmptyRoot() []byte {
	h := sha256.Sum256(nil)
	return h[:]
}

// nodeReader computes node hashes from tiles, caching the tiles it reads.
type nodeReader struct {
	ctx   context.Context
	read  TileReader
	tiles map[TileID][]byte
}

// node returns the hash of the complete subtree at (level, index): a node
// at level 8·T+r is the hash of 2^r consecutive entries of one level-T tile.
func (n *nodeReader) node(level uint, index uint64) ([]byte, error) {
	t, r := level/TileHeight, level%TileHeight
	first := index << r
	id := TileID{Level: uint8(t), Index: first / TileWidth}
	hashes, ok := n.tiles[id]
	if !ok {
		var err error
		if hashes, err = n.read(n.ctx, id); err != nil {
			return nil, fmt.Errorf("tile %d/%d: %w", id.Level, id.Index, err)
		}
		n.tiles[id] = hashes
	}
	off := int(first%TileWidth) * HashSize
	end := off + (1<<r)*HashSize
	if end > len(hashes) {
		return nil, fmt.Errorf("tlog: node %d/%d is not in tile %d/%d (width %d)", level, index, id.Level, id.Index, len(hashes)/HashSize)
	}
	level0 := make([][]byte, 1<<r)
	for i := range level0 {
		level0[i] = hashes[off+i*HashSize : off+(i+1)*HashSize]
	}
	for len(level0) > 1 {
		next := level0[:len(level0)/2]
		for i := range next {
			next[i] = rfc6962.DefaultHasher.HashChildren(level0[2*i], level0[2*i+1])
		}
		level0 = next
	}
	return level0[0], nil
}

func (n *nodeReader) hashes(ids []compact.NodeID) ([][]byte, error) {
	out := make([][]byte, len(ids))
	for i, id := range ids {
		h, err := n.node(id.Level, id.Index)
		if err != nil {
			return nil, err
		}
		out[i] = h
	}
	return out, nil
}

// LeafHash returns the stored leaf hash at index.
func LeafHash(ctx context.Context, read TileReader, index uint64) ([]byte, error) {
	n := &nodeReader{ctx: ctx, read: read, tiles: map[TileID][]byte{}}
	return n.node(0, index)
}

// InclusionProof returns the RFC 6962 inclusion proof of leaf index in the
// tree of the given size, built from tiles.
func InclusionProof(ctx context.Context, read TileReader, index, size uint64) ([][]byte, error) {
	if index >= size {
		return nil, fmt.Errorf("tlog: leaf %d is not in a tree of size %d", index, size)
	}
	nodes, err := proof.Inclusion(index, size)
	if err != nil {
		return nil, err
	}
	n := &nodeReader{ctx: ctx, read: read, tiles: map[TileID][]byte{}}
	hashes, err := n.hashes(nodes.IDs)
	if err != nil {
		return nil, err
	}
	return nodes.Rehash(hashes, rfc6962.DefaultHasher.HashChildren)
}

// ConsistencyProof returns the RFC 6962 consistency proof between tree
// sizes a <= b, built from tiles.
func ConsistencyProof(ctx context.Context, read TileReader, a, b uint64) ([][]byte, error) {
	if a > b {
		return nil, fmt.Errorf("tlog: no consistency proof from size %d to the smaller size %d", a, b)
	}
	nodes, err := proof.Consistency(a, b)
	if err != nil {
		return nil, err
	}
	n := &nodeReader{ctx: ctx, read: read, tiles: map[TileID][]byte{}}
	hashes, err := n.hashes(nodes.IDs)
	if err != nil {
		return nil, err
	}
	return nodes.Rehash(hashes, rfc6962.DefaultHasher.HashChildren)
}

// RootAt returns the root of the tree of the given size, from tiles.
func RootAt(ctx context.Context, read TileReader, size uint64) ([]byte, error) {
	if size == 0 {
		return EmptyRoot(), nil
	}
	n := &nodeReader{ctx: ctx, read: read, tiles: map[TileID][]byte{}}
	ids := compact.RangeNodes(0, size, nil)
	hashes, err := n.hashes(ids)
	if err != nil {
		return nil, err
	}
	rng, err := rf.NewRange(0, size, hashes)
	if err != nil {
		return nil, err
	}
	return rng.GetRootHash(nil)
}

// VerifyInclusion checks an inclusion proof against a root.
func VerifyInclusion(index, size uint64, leafHash []byte, p [][]byte, root []byte) error {
	return proof.VerifyInclusion(rfc6962.DefaultHasher, index, size, leafHash, p, root)
}

// VerifyConsistency checks a consistency proof between two roots.
func VerifyConsistency(a, b uint64, p [][]byte, rootA, rootB []byte) error {
	if a == 0 {
		if len(p) != 0 {
			return fmt.Errorf("tlog: a consistency proof from the empty tree must be empty")
		}
		return nil
	}
	return proof.VerifyConsistency(rfc6962.DefaultHasher, a, b, p, rootA, rootB)
}

// Builder computes a root from leaf hashes appended in order; verifiers use
// it to rebuild a log from its leaves. It keeps the tree's compact range
// (one hash per set bit of the size, largest subtree first) and hashes
// interior nodes on the stack: appending allocates nothing, which matters
// to a verifier appending every leaf of a large log.
type Builder struct {
	size   uint64
	hashes [][sha256.Size]byte
}

// NewBuilder returns a builder for the empty tree.
func NewBuilder() *Builder { return &Builder{} }

// Append adds the next leaf hash. It MUST NOT keep leafHash: callers pass
// slices of buffers they reuse (verify's batches, a tile), and a builder
// that kept the slice until the leaf's sibling came once hashed whatever
// the buffer held by then.
func (b *Builder) Append(leafHash []byte) {
	if len(leafHash) != sha256.Size {
		panic(fmt.Sprintf("tlog: a leaf hash of %d bytes", len(leafHash)))
	}
	cur := [sha256.Size]byte(leafHash)
	// Each low set bit of the size is a complete subtree the new leaf
	// completes: merge it from the right.
	for n := b.size; n&1 == 1; n >>= 1 {
		last := len(b.hashes) - 1
		cur = hashChildren(&b.hashes[last], &cur)
		b.hashes = b.hashes[:last]
	}
	b.hashes = append(b.hashes, cur)
	b.size++
}

// hashChildren is RFC 6962's interior node hash: SHA-256(0x01 ‖ l ‖ r).
func hashChildren(l, r *[sha256.Size]byte) [sha256.Size]byte {
	var buf [1 + 2*sha256.Size]byte
	buf[0] = 1
	copy(buf[1:], l[:])
	copy(buf[1+sha256.Size:], r[:])
	return sha256.Sum256(buf[:])
}

// Size is the number of leaves appended.
func (b *Builder) Size() uint64 { return b.size }

// Root returns the current root (EmptyRoot for no leaves).
func (b *Builder) Root() []byte {
	if b.size == 0 {
		return EmptyRoot()
	}
	r := b.hashes[len(b.hashes)-1]
	for i := len(b.hashes) - 2; i >= 0; i-- {
		r = hashChildren(&b.hashes[i], &r)
	}
	return r[:]
}
