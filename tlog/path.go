package tlog

import (
	"encoding/binary"
	"fmt"
	"strconv"
	"strings"
)

// EntriesLevel is the level ParseTilePath gives an entry bundle
// (tile/entries/…), which holds the entries themselves.
const EntriesLevel = -1

// TilePath returns the C2SP tlog-tiles path of a tile below a log's prefix:
// tile/<L>/<N>[.p/<W>] (level EntriesLevel: tile/entries/<N>[.p/<W>]),
// with N in groups of three digits, all but the last prefixed with x
// (1234067 is x001/x234/067). width 0 or TileWidth is a full tile.
func TilePath(level int, index uint64, width int) string {
	n := fmt.Sprintf("%03d", index%1000)
	for index /= 1000; index > 0; index /= 1000 {
		n = fmt.Sprintf("x%03d/%s", index%1000, n)
	}
	l := "entries"
	if level != EntriesLevel {
		l = strconv.Itoa(level)
	}
	if width > 0 && width < TileWidth {
		n += ".p/" + strconv.Itoa(width)
	}
	return "tile/" + l + "/" + n
}

// ParseTilePath parses what follows "tile/" in a tile's path: the level
// (EntriesLevel for an entry bundle), the index, and the width (TileWidth
// for a full tile). It accepts exactly the paths TilePath writes, so one
// tile has one name.
func ParseTilePath(p string) (level int, index uint64, width int, err error) {
	bad := func(why string) (int, uint64, int, error) {
		return 0, 0, 0, fmt.Errorf("tile path %q: %s; expected <L>/<N>[.p/<W>] or entries/<N>[.p/<W>], N in groups of three digits such as x001/x234/067", p, why)
	}
	l, rest, ok := strings.Cut(p, "/")
	if !ok {
		return bad("no index")
	}
	switch {
	case l == "entries":
		level = EntriesLevel
	case len(l) == 1 && l[0] >= '0' && l[0] <= '9' || len(l) == 2 && l[0] != '0' && l[0] >= '1' && l[0] <= '9' && l[1] >= '0' && l[1] <= '9':
		level, _ = strconv.Atoi(l)
		if level > 63/TileHeight {
			return bad("level too high")
		}
	default:
		return bad("level is not entries or a small number")
	}
	width = TileWidth
	if head, w, ok := strings.Cut(rest, ".p/"); ok {
		n, err := strconv.Atoi(w)
		if err != nil || n < 1 || n >= TileWidth || strconv.Itoa(n) != w {
			return bad("a partial tile's width is 1 to 255")
		}
		rest, width = head, n
	}
	groups := strings.Split(rest, "/")
	for i, g := range groups {
		last := i == len(groups)-1
		if !last {
			if !strings.HasPrefix(g, "x") {
				return bad("every group but the last starts with x")
			}
			g = g[1:]
		}
		if len(g) != 3 || strings.Trim(g, "0123456789") != "" {
			return bad("a group is three digits")
		}
		if i == 0 && !last && g == "000" {
			return bad("leading zero group")
		}
		d, _ := strconv.ParseUint(g, 10, 64)
		if index > (1<<63-1-d)/1000 {
			return bad("index too large")
		}
		index = index*1000 + d
	}
	return level, index, width, nil
}

// AppendEntry appends one entry of an entry bundle: its length as a
// big-endian uint16, then its bytes (C2SP tlog-tiles). Entries longer than
// 65535 bytes cannot be in a bundle.
func AppendEntry(b, entry []byte) ([]byte, error) {
	if len(entry) > 0xffff {
		return b, fmt.Errorf("tlog: an entry of %d bytes does not fit an entry bundle (65535 at most)", len(entry))
	}
	b = binary.BigEndian.AppendUint16(b, uint16(len(entry)))
	return append(b, entry...), nil
}
