package sqlite

import (
	"encoding/binary"
	"errors"
	"slices"
)

// Buckets cut each organization's log into ranges of 2^shift seqs; the
// shift is chosen when a store is created (Options.BucketShift, from
// DefaultBucketShift, MinBucketShift to MaxBucketShift) and kept in its
// meta table.
const (
	DefaultBucketShift = 14
	MinBucketShift     = 4
	MaxBucketShift     = 20
	maxBucketSize      = 1 << MaxBucketShift
	// mergeRuns is how many runs of one size tier are merged into one
	// run of the next (see flush).
	mergeRuns = 16
)

// timesField is the postings field that holds the event times of a run,
// under the one key timesKey.
const timesField = 0

var timesKey = []byte{0}

var errCorruptPostings = errors.New("sqlite: corrupt postings list")

// appendOffsets encodes ascending offsets within a bucket as uvarint deltas.
func appendOffsets(dst []byte, offs []uint32) []byte {
	prev := uint32(0)
	for i, o := range offs {
		if i == 0 {
			dst = binary.AppendUvarint(dst, uint64(o))
		} else {
			dst = binary.AppendUvarint(dst, uint64(o-prev))
		}
		prev = o
	}
	return dst
}

// decodeOffsets appends the offsets encoded in b to dst.
func decodeOffsets(dst []uint32, b []byte) ([]uint32, error) {
	prev := uint32(0)
	for first := true; len(b) > 0; first = false {
		v, n := binary.Uvarint(b)
		if n <= 0 || v >= maxBucketSize {
			return dst, errCorruptPostings
		}
		b = b[n:]
		if first {
			prev = uint32(v)
		} else {
			if v == 0 {
				return dst, errCorruptPostings
			}
			prev += uint32(v)
			if prev >= maxBucketSize {
				return dst, errCorruptPostings
			}
		}
		dst = append(dst, prev)
	}
	return dst, nil
}

// appendTimes encodes event times (unix ns) as zigzag varint deltas.
func appendTimes(dst []byte, times []int64) []byte {
	prev := int64(0)
	for _, t := range times {
		dst = binary.AppendVarint(dst, t-prev)
		prev = t
	}
	return dst
}

// decodeTimes appends the times encoded in b to dst.
func decodeTimes(dst []int64, b []byte) ([]int64, error) {
	prev := int64(0)
	for len(b) > 0 {
		d, n := binary.Varint(b)
		if n <= 0 {
			return dst, errCorruptPostings
		}
		b = b[n:]
		prev += d
		dst = append(dst, prev)
	}
	return dst, nil
}

// unionSorted merges ascending lists, dropping duplicates.
func unionSorted(lists [][]uint32) []uint32 {
	switch len(lists) {
	case 0:
		return nil
	case 1:
		return lists[0]
	}
	n := 0
	for _, l := range lists {
		n += len(l)
	}
	out := make([]uint32, 0, n)
	for _, l := range lists {
		out = append(out, l...)
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// intersectSorted returns the offsets in both ascending lists.
func intersectSorted(a, b []uint32) []uint32 {
	out := a[:0:0]
	for i, j := 0, 0; i < len(a) && j < len(b); {
		switch {
		case a[i] < b[j]:
			i++
		case a[i] > b[j]:
			j++
		default:
			out = append(out, a[i])
			i++
			j++
		}
	}
	return out
}

// subtractSorted returns the offsets of ascending list a that are not in
// ascending list b.
func subtractSorted(a, b []uint32) []uint32 {
	if len(b) == 0 {
		return a
	}
	out := a[:0:0]
	j := 0
	for _, x := range a {
		for j < len(b) && b[j] < x {
			j++
		}
		if j < len(b) && b[j] == x {
			continue
		}
		out = append(out, x)
	}
	return out
}

// complementSorted returns the offsets below n that are not in ascending
// list b.
func complementSorted(b []uint32, n int64) []uint32 {
	out := make([]uint32, 0, max(0, n-int64(len(b))))
	j := 0
	for x := uint32(0); int64(x) < n; x++ {
		if j < len(b) && b[j] == x {
			j++
			continue
		}
		out = append(out, x)
	}
	return out
}

// countOffsets returns how many offsets list encodes: one varint each, so
// the bytes that end one.
func countOffsets(list []byte) int64 {
	n := int64(0)
	for _, c := range list {
		if c < 0x80 {
			n++
		}
	}
	return n
}

// countHits returns how many of the offsets encoded in list (as
// appendOffsets writes them) have their bit set in hit, decoding them
// without keeping them. An offset beyond hit is corrupt.
func countHits(list []byte, hit []uint64) (int64, error) {
	n := int64(0)
	limit := uint64(len(hit)) * 64
	off := uint64(0)
	for i := 0; i < len(list); {
		at := i
		v := uint64(list[i])
		if v < 0x80 {
			i++
		} else {
			var k int
			if v, k = binary.Uvarint(list[i:]); k <= 0 {
				return 0, errCorruptPostings
			}
			i += k
		}
		// The first varint is an offset, the others deltas (never 0).
		if v == 0 && at > 0 {
			return 0, errCorruptPostings
		}
		off += v
		if off >= limit {
			return 0, errCorruptPostings
		}
		n += int64(hit[off>>6] >> (off & 63) & 1)
	}
	return n, nil
}
