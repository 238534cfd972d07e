// Package tlog keeps the state of an organization's append-only Merkle log
// (RFC 6962 hashing) and lays its hashes out in tiles as C2SP tlog-tiles
// does: a tile at level L and index N holds up to 256 hashes of the tree's
// level 8·L, nodes N·256 to N·256+255. Tiles let a store keep every hash a
// proof needs without storing every interior node, and are what storage
// engines persist next to the events. The Merkle maths itself comes from
// github.com/transparency-dev/merkle.
package tlog

import (
	"errors"
	"fmt"

	"github.com/transparency-dev/merkle/compact"
	"github.com/transparency-dev/merkle/rfc6962"
)

// Tile geometry (C2SP tlog-tiles).
const (
	TileHeight = 8
	TileWidth  = 1 << TileHeight
	HashSize   = 32
)

var rf = &compact.RangeFactory{Hash: rfc6962.DefaultHasher.HashChildren}

// TileID names a tile.
type TileID struct {
	Level uint8
	Index uint64
}

// Tile is a tile's content: Width() hashes of HashSize bytes.
type Tile struct {
	ID     TileID
	Hashes []byte
}

// Width is the number of hashes in the tile.
func (t *Tile) Width() int { return len(t.Hashes) / HashSize }

// Head is the state of a log at one size: enough to append to it.
type Head struct {
	size uint64
	rng  *compact.Range
	// edge holds the rightmost tile of each level, possibly partial.
	edge map[uint8]*Tile
	// dirty holds the tiles changed since the last TakeDirty, including
	// tiles that filled up and left edge in the meantime.
	dirty map[TileID]*Tile
}

// NewHead returns the head of an empty log.
func NewHead() *Head {
	return &Head{rng: rf.NewEmptyRange(0), edge: map[uint8]*Tile{}, dirty: map[TileID]*Tile{}}
}

// EdgeTiles lists the tiles a store must load to resume a log of the given
// size: the partial rightmost tile of each level that has one.
func EdgeTiles(size uint64) []TileID {
	var ids []TileID
	for level := uint8(0); ; level++ {
		n := size >> (TileHeight * uint(level)) // entries at this tile level
		if n == 0 {
			return ids
		}
		if n%TileWidth != 0 {
			ids = append(ids, TileID{Level: level, Index: n / TileWidth})
		}
	}
}

// LoadHead rebuilds a head from what a store persisted: the size, the
// compact range hashes (see Head.CompactHashes) and the edge tiles named by
// EdgeTiles(size).
func LoadHead(size uint64, compactHashes []byte, edge []*Tile) (*Head, error) {
	if len(compactHashes)%HashSize != 0 {
		return nil, errors.New("tlog: compact range is not a whole number of hashes")
	}
	hashes := make([][]byte, 0, len(compactHashes)/HashSize)
	for i := 0; i < len(compactHashes); i += HashSize {
		hashes = append(hashes, compactHashes[i:i+HashSize:i+HashSize])
	}
	rng, err := rf.NewRange(0, size, hashes)
	if err != nil {
		return nil, fmt.Errorf("tlog: compact range for size %d: %w", size, err)
	}
	h := &Head{size: size, rng: rng, edge: map[uint8]*Tile{}, dirty: map[TileID]*Tile{}}
	want := EdgeTiles(size)
	if len(edge) != len(want) {
		return nil, fmt.Errorf("tlog: size %d needs %d edge tiles, got %d", size, len(want), len(edge))
	}
	for i, t := range edge {
		n := size >> (TileHeight * uint(t.ID.Level))
		if t.ID != want[i] || uint64(t.Width()) != n%TileWidth {
			return nil, fmt.Errorf("tlog: edge tile %v has width %d, expected %v width %d", t.ID, t.Width(), want[i], n%TileWidth)
		}
		h.edge[t.ID.Level] = &Tile{ID: t.ID, Hashes: append([]byte(nil), t.Hashes...)}
	}
	return h, nil
}

// Size is the number of leaves.
func (h *Head) Size() uint64 { return h.size }

// Root returns the root hash (EmptyRoot for the empty log).
func (h *Head) Root() []byte {
	if h.size == 0 {
		return EmptyRoot()
	}
	root, err := h.rng.GetRootHash(nil)
	if err != nil {
		panic(err) // the range always starts at 0
	}
	return root
}

// CompactHashes returns the compact range hashes to persist with the size.
func (h *Head) CompactHashes() []byte {
	var out []byte
	for _, x := range h.rng.Hashes() {
		out = append(out, x...)
	}
	return out
}

// Append adds a leaf hash, updating the edge tiles.
func (h *Head) Append(leafHash []byte) {
	err := h.rng.Append(leafHash, h.visit)
	if err != nil {
		panic(err) // only fails on a malformed range, which Head never has
	}
	h.size++
}

func (h *Head) visit(id compact.NodeID, hash []byte) {
	if id.Level%TileHeight != 0 {
		return
	}
	level := uint8(id.Level / TileHeight)
	idx := id.Index / TileWidth
	t := h.edge[level]
	if t == nil || t.ID.Index != idx {
		t = &Tile{ID: TileID{Level: level, Index: idx}}
		h.edge[level] = t
	}
	if uint64(t.Width()) != id.Index%TileWidth {
		panic(fmt.Sprintf("tlog: node %d/%d out of order in tile %v", id.Level, id.Index, t.ID))
	}
	t.Hashes = append(t.Hashes, hash...)
	h.dirty[t.ID] = t
}

// TakeDirty returns the tiles changed since the last call, with their full
// current content, for the store to persist in the same transaction as the
// leaves. The slices stay valid until the next Append.
func (h *Head) TakeDirty() []*Tile {
	out := make([]*Tile, 0, len(h.dirty))
	for id, t := range h.dirty {
		out = append(out, t)
		delete(h.dirty, id)
	}
	return out
}

// Clone returns an independent copy, so a failed commit can be discarded.
func (h *Head) Clone() *Head {
	c := &Head{size: h.size, edge: make(map[uint8]*Tile, len(h.edge)), dirty: map[TileID]*Tile{}}
	hashes := h.rng.Hashes()
	cp := make([][]byte, len(hashes))
	for i, x := range hashes {
		cp[i] = append([]byte(nil), x...)
	}
	rng, err := rf.NewRange(0, h.size, cp)
	if err != nil {
		panic(err)
	}
	c.rng = rng
	for l, t := range h.edge {
		c.edge[l] = &Tile{ID: t.ID, Hashes: append([]byte(nil), t.Hashes...)}
	}
	return c
}
