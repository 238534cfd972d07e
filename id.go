package veritrail

import (
	"crypto/rand"
	"encoding/binary"
	"time"
)

const crockford = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"

// NewEventID returns a server-assigned event id: "evt_" and a ULID (48 bits
// of milliseconds, 80 random bits, Crockford base32), so ids sort by time and
// land at the end of the id index instead of all over it.
func NewEventID(now time.Time) string {
	var b [16]byte
	binary.BigEndian.PutUint64(b[:8], uint64(now.UnixMilli())<<16)
	rand.Read(b[6:])
	return "evt_" + encodeULID(b)
}

func encodeULID(b [16]byte) string {
	// 128 bits -> 26 characters of 5 bits (the first carries 3 bits).
	hi := binary.BigEndian.Uint64(b[:8])
	lo := binary.BigEndian.Uint64(b[8:])
	var out [26]byte
	for i := 25; i >= 0; i-- {
		out[i] = crockford[lo&31]
		lo = lo>>5 | hi<<59
		hi >>= 5
	}
	return string(out[:])
}

// ValidID reports whether s may be used as an event id: 1 to 128 characters
// from [A-Za-z0-9._:@~+=-]. Ids appear in URLs, so nothing needs escaping.
func ValidID(s string) bool {
	if len(s) == 0 || len(s) > 128 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case c == '.', c == '_', c == ':', c == '@', c == '~', c == '+', c == '=', c == '-':
		default:
			return false
		}
	}
	return true
}
