package sqlite

import (
	"errors"
	"testing"

	"github.com/veritrail/veritrail/internal/statcol"
)

// TestCountHits holds countHits and countOffsets to decodeOffsets: the
// offsets of a list that are set in a bitmap, counted without keeping
// them, and corrupt lists refused.
func TestCountHits(t *testing.T) {
	hit := make([]uint64, 4) // offsets 0..255
	for _, o := range []uint32{0, 5, 63, 64, 200, 255} {
		hit[o>>6] |= 1 << (o & 63)
	}
	for _, tc := range []struct {
		name string
		offs []uint32
		want int64
	}{
		{"empty", nil, 0},
		{"first at zero", []uint32{0, 1, 2}, 1},
		{"word edges", []uint32{62, 63, 64, 65}, 2},
		{"long deltas", []uint32{5, 200, 255}, 3},
		{"none hit", []uint32{1, 2, 130, 254}, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			list := appendOffsets(nil, tc.offs)
			got, err := countHits(list, hit)
			if err != nil || got != tc.want {
				t.Fatalf("countHits = %d, %v; want %d", got, err, tc.want)
			}
			if n := countOffsets(list); n != int64(len(tc.offs)) {
				t.Fatalf("countOffsets = %d, want %d", n, len(tc.offs))
			}
		})
	}
	for _, tc := range []struct {
		name string
		list []byte
	}{
		{"beyond the bitmap", appendOffsets(nil, []uint32{3, 256})},
		{"zero delta", []byte{3, 0}},
		{"cut varint", []byte{3, 0x80}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := countHits(tc.list, hit); !errors.Is(err, errCorruptPostings) {
				t.Fatalf("countHits of %x: %v, want errCorruptPostings", tc.list, err)
			}
		})
	}
}

// TestColumnBuilder holds a column to the lists it is built from, and
// refuses a column where an event has two keys (the postings count it).
func TestColumnBuilder(t *testing.T) {
	cb := statcol.NewBuilder(10)
	for _, l := range []struct {
		key  string
		offs []uint32
	}{{"b", []uint32{1, 4}}, {"a", []uint32{0, 2, 9}}, {"b", []uint32{7}}} {
		if _, err := addList(cb, []byte(l.key), appendOffsets(nil, l.offs), nil); err != nil {
			t.Fatal(err)
		}
	}
	col := cb.Column()
	want := map[uint32]string{0: "a", 1: "b", 2: "a", 4: "b", 7: "b", 9: "a"}
	for off := uint32(0); off < 10; off++ {
		if got := col.Keys[col.At8[off]]; got != want[off] {
			t.Errorf("offset %d: key %q, want %q", off, got, want[off])
		}
	}
	if col.Total[1] != 3 || col.Total[2] != 3 || col.Keys[1] != "b" {
		t.Errorf("totals %v of keys %q", col.Total, col.Keys)
	}
	if _, err := addList(cb, []byte("c"), appendOffsets(nil, []uint32{4}), nil); err != nil || cb.Column().Ok() {
		t.Fatalf("a second key at offset 4: %v, column %+v; want no column", err, cb.Column())
	}
	if _, err := addList(statcol.NewBuilder(3), []byte("a"), appendOffsets(nil, []uint32{3}), nil); !errors.Is(err, errCorruptPostings) {
		t.Fatalf("an offset beyond the bucket: %v", err)
	}
}
