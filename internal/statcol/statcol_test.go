package statcol

import (
	"fmt"
	"maps"
	"testing"
)

// TestColumnCount builds a column by Append (as PostgreSQL does) and
// counts its keys among some positions and among all of them, in both
// widths of column.
func TestColumnCount(t *testing.T) {
	for _, keys := range []int{3, 300} {
		t.Run(fmt.Sprintf("keys=%d", keys), func(t *testing.T) {
			b := NewBuilder(0)
			var at []string // "" for none
			for pos := range 1000 {
				if pos%7 == 0 {
					b.Append(nil)
					at = append(at, "")
					continue
				}
				k := fmt.Sprintf("k%d", pos%keys)
				b.Append([]byte(k))
				at = append(at, k)
			}
			col := b.Column()
			if !col.Ok() || (keys <= 255) != (col.At8 != nil) {
				t.Fatalf("column of %d keys: ok %v, 8-bit %v", keys, col.Ok(), col.At8 != nil)
			}
			hits := []uint32{0, 1, 2, 7, 500, 999}
			for _, whole := range []bool{false, true} {
				want := map[string]int64{}
				if whole {
					for _, k := range at {
						if k != "" {
							want[k]++
						}
					}
				} else {
					for _, pos := range hits {
						if k := at[pos]; k != "" {
							want[k]++
						}
					}
				}
				got := map[string]int64{}
				col.Count(hits, whole, nil, func(k string, n int64) { got[k] += n })
				if !maps.Equal(got, want) {
					t.Errorf("whole %v: %v, want %v", whole, got, want)
				}
			}
		})
	}
	// Too many keys: no column.
	b := NewBuilder(0)
	for i := range 1 << 16 {
		b.Append([]byte(fmt.Sprint(i)))
	}
	if b.Column().Ok() {
		t.Fatal("a column of 65,536 keys")
	}
}

// TestCache holds an entry to its version, Forget to its organization,
// and the bound to the least recently used.
func TestCache(t *testing.T) {
	c := NewCache(100)
	k := Key{Org: 1, Bucket: 7}
	c.Put(k, 3, "a", 40, c.Generation())
	if c.Get(k, 3) != "a" || c.Get(k, 4) != nil {
		t.Fatal("an entry is valid for its version only")
	}
	other := Key{Org: 2, Bucket: 7}
	c.Put(other, 1, "b", 40, c.Generation())
	gen := c.Generation()
	c.Forget(1)
	if c.Get(k, 3) != nil || c.Get(other, 1) != "b" {
		t.Fatal("Forget takes its organization's entries only")
	}
	c.Put(k, 3, "stale", 10, gen)
	if c.Get(k, 3) != nil {
		t.Fatal("an entry read before a Forget was kept")
	}
	c.Put(Key{Org: 2, Bucket: 8, What: "x"}, 1, "c", 40, c.Generation())
	c.Get(other, 1) // most recent now
	c.Put(Key{Org: 2, Bucket: 9}, 1, "d", 40, c.Generation())
	if c.Get(other, 1) != "b" || c.Get(Key{Org: 2, Bucket: 8, What: "x"}, 1) != nil {
		t.Fatal("the bound evicts the least recently used")
	}
}
