package client

// Reading a log's C2SP tlog-tiles layout and checking proofs from it with
// golang.org/x/mod/sumdb/tlog, an implementation that is not Veritrail's.

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"

	sumtlog "golang.org/x/mod/sumdb/tlog"

	"github.com/veritrail/veritrail/tlog"
)

// TileReader reads a log's hash tiles over HTTP in the C2SP tlog-tiles
// layout, for golang.org/x/mod/sumdb/tlog: wrapped in its TileHashReader,
// every tile read is checked against a tree hash, so a server cannot
// answer proofs with tiles of another tree.
type TileReader struct {
	Ctx    context.Context
	Base   string // the log's URL: tiles are Base/tile/…
	Token  string // bearer token, if the log's tiles are not public
	Client *http.Client
}

// Height implements sumtlog.TileReader: C2SP tiles are 2^8 wide.
func (r *TileReader) Height() int { return tlog.TileHeight }

// ReadTiles implements sumtlog.TileReader.
func (r *TileReader) ReadTiles(tiles []sumtlog.Tile) ([][]byte, error) {
	out := make([][]byte, len(tiles))
	for i, t := range tiles {
		b, err := Get(r.Ctx, r.Client, strings.TrimRight(r.Base, "/")+"/"+tlog.TilePath(t.L, uint64(t.N), t.W), r.Token)
		if err != nil {
			return nil, err
		}
		if len(b) != t.W*tlog.HashSize {
			return nil, fmt.Errorf("tile %s: %d bytes, want %d", tlog.TilePath(t.L, uint64(t.N), t.W), len(b), t.W*tlog.HashSize)
		}
		out[i] = b
	}
	return out, nil
}

// SaveTiles implements sumtlog.TileReader: nothing is cached.
func (r *TileReader) SaveTiles([]sumtlog.Tile, [][]byte) {}

// Get fetches a URL with an optional bearer token; anything but 200 is an
// error naming the status and the start of the body.
func Get(ctx context.Context, c *http.Client, url, token string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := c.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		if len(b) > 300 {
			b = b[:300]
		}
		return nil, fmt.Errorf("GET %s: %s: %s", url, resp.Status, strings.TrimSpace(string(b)))
	}
	return b, nil
}

// ProveConsistency checks, with golang.org/x/mod/sumdb/tlog over the
// log's tiles, that the tree (newSize, newRoot) extends (oldSize,
// oldRoot).
func ProveConsistency(r *TileReader, oldSize uint64, oldRoot []byte, newSize uint64, newRoot []byte) error {
	if oldSize == 0 {
		return nil
	}
	if len(oldRoot) != sumtlog.HashSize || len(newRoot) != sumtlog.HashSize {
		return fmt.Errorf("a root hash is not %d bytes", sumtlog.HashSize)
	}
	tree := sumtlog.Tree{N: int64(newSize), Hash: sumtlog.Hash(newRoot)}
	p, err := sumtlog.ProveTree(int64(newSize), int64(oldSize), sumtlog.TileHashReader(tree, r))
	if err != nil {
		return fmt.Errorf("reading a consistency proof from the tiles: %w", err)
	}
	return sumtlog.CheckTree(p, int64(newSize), sumtlog.Hash(newRoot), int64(oldSize), sumtlog.Hash(oldRoot))
}

// ProveInclusion checks, with golang.org/x/mod/sumdb/tlog over the log's
// tiles, that leaf is at index in the tree (size, root).
func ProveInclusion(r *TileReader, index uint64, leaf []byte, size uint64, root []byte) error {
	if len(leaf) != sumtlog.HashSize || len(root) != sumtlog.HashSize {
		return fmt.Errorf("a hash is not %d bytes", sumtlog.HashSize)
	}
	tree := sumtlog.Tree{N: int64(size), Hash: sumtlog.Hash(root)}
	p, err := sumtlog.ProveRecord(int64(size), int64(index), sumtlog.TileHashReader(tree, r))
	if err != nil {
		return fmt.Errorf("reading an inclusion proof from the tiles: %w", err)
	}
	return sumtlog.CheckRecord(p, int64(size), sumtlog.Hash(root), int64(index), sumtlog.Hash(leaf))
}
