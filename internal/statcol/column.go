// Package statcol holds what both stores keep in memory to count the stats
// of filtered and full-text queries fast: per bucket of events (the
// embedded store's buckets, PostgreSQL's hours) and field, a column giving
// each event's value as a small number into the bucket's keys, built once
// and kept in a bounded cache (Cache). Counting a field's values among a
// query's matching events is then one look-up per event.
package statcol

// Column is one field's key at each position of a bucket: Keys[At[pos]],
// where At is At8 or At16 and 0 means none (Keys[0] is unused); Total[i]
// is how many positions have Keys[i]. A field that some event of the
// bucket has several keys of, or with 65,536 keys or more in the bucket,
// has no column (Keys nil): the store counts it some other way.
type Column struct {
	Keys  []string
	At8   []uint8
	At16  []uint16
	Total []int64
}

// Ok reports whether the column holds the field's keys.
func (col *Column) Ok() bool { return col.Keys != nil }

// Size is about the bytes the column holds.
func (col *Column) Size() int {
	n := 64 + len(col.At8) + 2*len(col.At16) + 8*len(col.Total)
	for _, k := range col.Keys {
		n += 16 + len(k)
	}
	return n
}

// At returns the key number at position pos (0: none).
func (col *Column) At(pos uint32) int {
	if col.At8 != nil {
		return int(col.At8[pos])
	}
	return int(col.At16[pos])
}

// Count calls add with each key and how many of the positions hits have
// it (every position when whole), keys without any left out. tally is
// scratch space, returned for reuse.
func (col *Column) Count(hits []uint32, whole bool, tally []int64, add func(key string, n int64)) []int64 {
	if whole {
		for i := 1; i < len(col.Keys); i++ {
			if col.Total[i] > 0 {
				add(col.Keys[i], col.Total[i])
			}
		}
		return tally
	}
	tally = tally[:0]
	for range col.Keys {
		tally = append(tally, 0)
	}
	if col.At8 != nil {
		for _, pos := range hits {
			tally[col.At8[pos]]++
		}
	} else {
		for _, pos := range hits {
			tally[col.At16[pos]]++
		}
	}
	for i := 1; i < len(tally); i++ {
		if tally[i] > 0 {
			add(col.Keys[i], tally[i])
		}
	}
	return tally
}

// Builder builds a column of a bucket of n positions.
type Builder struct {
	keys  []string
	index map[string]uint16
	at    []uint16
	total []int64
	none  bool // the field cannot have a column in the bucket
}

// NewBuilder starts a column of n positions, each without a key.
func NewBuilder(n int) *Builder {
	return &Builder{at: make([]uint16, n), index: map[string]uint16{}}
}

// None reports whether the bucket can have no column of the field.
func (cb *Builder) None() bool { return cb.none }

// Key returns the number of key, numbering it if new; ok is false when
// the bucket has too many keys for a column.
func (cb *Builder) Key(key []byte) (i uint16, ok bool) {
	if cb.none {
		return 0, false
	}
	if i, ok := cb.index[string(key)]; ok {
		return i, true
	}
	if len(cb.keys) == 0 {
		cb.keys, cb.total = []string{""}, []int64{0}
	}
	if len(cb.keys) == 1<<16 {
		cb.none = true
		return 0, false
	}
	i = uint16(len(cb.keys))
	cb.index[string(key)] = i
	cb.keys, cb.total = append(cb.keys, string(key)), append(cb.total, 0)
	return i, true
}

// Append adds a position after the others (NewBuilder(0) starts with
// none), with key, or without a key when key is nil.
func (cb *Builder) Append(key []byte) {
	if key == nil {
		cb.at = append(cb.at, 0)
		return
	}
	i, ok := cb.Key(key)
	cb.at = append(cb.at, i)
	if ok {
		cb.total[i]++
	}
}

// Set gives position pos the key numbered i (by Key); a position given
// two different keys leaves the field without a column. It reports false
// when pos is out of range.
func (cb *Builder) Set(pos uint32, i uint16) bool {
	if int(pos) >= len(cb.at) {
		return false
	}
	switch cb.at[pos] {
	case 0:
		cb.at[pos] = i
		cb.total[i]++
	case i:
	default:
		cb.none = true // several keys: no column
	}
	return true
}

// Column returns the column built.
func (cb *Builder) Column() *Column {
	if cb.none {
		return &Column{}
	}
	col := &Column{Keys: cb.keys, Total: cb.total}
	if col.Keys == nil {
		col.Keys, col.Total = []string{""}, []int64{0}
	}
	if len(col.Keys) <= 1<<8 {
		col.At8 = make([]uint8, len(cb.at))
		for pos, i := range cb.at {
			col.At8[pos] = uint8(i)
		}
	} else {
		col.At16 = cb.at
	}
	return col
}
