package tlog

import (
	"testing"
)

func TestTilePath(t *testing.T) {
	for _, c := range []struct {
		level int
		index uint64
		width int
		path  string
	}{
		{0, 0, 256, "tile/0/000"},
		{0, 0, 0, "tile/0/000"},
		{1, 5, 3, "tile/1/005.p/3"},
		{0, 1234067, 256, "tile/0/x001/x234/067"},
		{2, 1000, 255, "tile/2/x001/000.p/255"},
		{EntriesLevel, 7, 1, "tile/entries/007.p/1"},
		{EntriesLevel, 999, 256, "tile/entries/999"},
	} {
		if got := TilePath(c.level, c.index, c.width); got != c.path {
			t.Errorf("TilePath(%d, %d, %d) = %q, want %q", c.level, c.index, c.width, got, c.path)
		}
		l, i, w, err := ParseTilePath(c.path[len("tile/"):])
		want := c.width
		if want == 0 {
			want = TileWidth
		}
		if err != nil || l != c.level || i != c.index || w != want {
			t.Errorf("ParseTilePath(%q) = %d %d %d %v", c.path, l, i, w, err)
		}
	}
	for _, bad := range []string{"", "0", "0/", "0/00", "0/0000", "0/x000/001", "0/001/002", "0/x1/002",
		"0/000.p/0", "0/000.p/256", "0/000.p/01", "00/000", "8/000", "entries/abc", "a/000", "0/000.p/", "0/-01",
		"0/x009/x223/x372/x036/x854/x775/x808"} {
		if _, _, _, err := ParseTilePath(bad); err == nil {
			t.Errorf("ParseTilePath(%q) accepted", bad)
		}
	}
}

func FuzzParseTilePath(f *testing.F) {
	for _, s := range []string{"0/000", "1/x001/x234/067.p/9", "entries/005.p/255", "0/x000/001"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, p string) {
		l, i, w, err := ParseTilePath(p)
		if err != nil {
			return
		}
		// One tile, one name: what parses is what TilePath writes.
		if got := TilePath(l, i, w); got != "tile/"+p {
			t.Fatalf("ParseTilePath(%q) = %d %d %d, which TilePath writes as %q", p, l, i, w, got)
		}
	})
}

func TestAppendEntry(t *testing.T) {
	b, err := AppendEntry(nil, []byte("ab"))
	if err != nil || string(b) != "\x00\x02ab" {
		t.Fatalf("%q %v", b, err)
	}
	if _, err := AppendEntry(nil, make([]byte, 1<<16)); err == nil {
		t.Fatal("an entry of 65536 bytes fitted")
	}
}
