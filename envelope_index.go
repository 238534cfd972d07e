package veritrail

import (
	"encoding/binary"
	"net/netip"
	"time"
	"unicode/utf8"
)

// ScanEnvelopeIndex reads, from canonical envelope bytes, what the search
// index derives from them: fn receives every (field, index key) pair that
// Event.IndexKey would give, and it returns the event's id and time. It
// returns ok=false when the envelope needs the full parser (escaped
// strings, non-ASCII e-mail addresses, any other layout); callers then use
// ParseEnvelope and IndexKeys, which agree. The key slices passed to fn
// are only valid during the call. Keys are slices of env but for a status,
// an IP address and an upper-case e-mail address, which share one small
// buffer allocated for the first of them.
func ScanEnvelopeIndex(env []byte, fn func(f Field, key []byte)) (id []byte, timeNS int64, ok bool) {
	s := rawScanner{b: env}
	var scratch []byte // keys that are not in env, valid during fn only
	seq, timed := false, false
	var seen uint64 // members met, so duplicates (never canonical) fall back
	ok = s.object(func(outer, key []byte) bool {
		m := envelopeMember(outer, key)
		if m.bit == 0 || seen&m.bit != 0 {
			return false
		}
		seen |= m.bit
		switch m.kind {
		case memberID:
			id, s.ok = s.str()
		case memberTime, memberReceived:
			var t []byte
			if t, s.ok = s.str(); s.ok {
				var ns int64
				ns, s.ok = canonicalTime(t)
				if m.kind == memberTime {
					timeNS, timed = ns, true
				}
			}
		case memberSeq:
			_, s.ok = s.int()
			seq = true
		case memberInt:
			_, s.ok = s.int()
		case memberStatus:
			var v int64
			if v, s.ok = s.int(); s.ok {
				scratch = binary.BigEndian.AppendUint64(scratch[:0], statusBits(v))
				fn(FieldStatus, scratch)
			}
		case memberText:
			_, s.ok = s.str()
		case memberEmail:
			var v []byte
			if v, s.ok = s.str(); !s.ok {
				return false
			}
			upper := false
			for _, c := range v {
				if c >= utf8.RuneSelf {
					return false // Unicode case folding: the full parser
				}
				upper = upper || c >= 'A' && c <= 'Z'
			}
			if upper {
				scratch = append(scratch[:0], v...)
				for i, c := range scratch {
					if c >= 'A' && c <= 'Z' {
						scratch[i] = c + 'a' - 'A'
					}
				}
				v = scratch
			}
			if len(v) > 0 {
				fn(FieldActorEmail, v)
			}
		case memberIP:
			var v []byte
			if v, s.ok = s.str(); s.ok {
				if a, err := netip.ParseAddr(string(v)); err == nil {
					k := ipBytes(a)
					scratch = append(scratch[:0], k[:]...)
					fn(FieldIP, scratch)
				}
			}
		case memberIndexed:
			var v []byte
			if v, s.ok = s.str(); s.ok && len(v) > 0 {
				fn(m.field, v)
			}
		}
		return s.ok
	})
	if !ok || s.i != len(s.b) || id == nil || !seq || !timed {
		return nil, 0, false
	}
	return id, timeNS, true
}

type memberKind uint8

const (
	memberText memberKind = iota
	memberID
	memberSeq
	memberTime
	memberReceived
	memberInt
	memberStatus
	memberEmail
	memberIP
	memberIndexed
)

type member struct {
	bit   uint64 // for duplicate detection; 0: not an envelope member
	kind  memberKind
	field Field
}

// envelopeMember identifies a member of the envelope by its enclosing
// member (nil at the top) and key, without allocating.
func envelopeMember(outer, key []byte) member {
	ix := func(i int, f Field) member { return member{bit: 1 << i, kind: memberIndexed, field: f} }
	if outer == nil {
		switch string(key) {
		case "id":
			return member{1 << 0, memberID, 0}
		case "seq":
			return member{1 << 1, memberSeq, 0}
		case "time":
			return member{1 << 2, memberTime, 0}
		case "received_at":
			return member{1 << 3, memberReceived, 0}
		case "type":
			return ix(4, FieldType)
		case "agent_id":
			return ix(5, FieldAgentID)
		case "task_id":
			return ix(6, FieldTaskID)
		case "session_id":
			return ix(7, FieldSessionID)
		case "connector":
			return ix(8, FieldConnector)
		case "tool":
			return ix(9, FieldTool)
		case "outcome":
			return ix(10, FieldOutcome)
		case "status":
			return member{1 << 11, memberStatus, 0}
		case "duration_ms":
			return member{1 << 12, memberInt, 0}
		case "content_digest":
			return member{1 << 13, memberText, 0}
		}
		return member{}
	}
	switch string(outer) {
	case "actor":
		switch string(key) {
		case "type":
			return ix(14, FieldActorType)
		case "id":
			return ix(15, FieldActorID)
		case "email":
			return member{1 << 16, memberEmail, 0}
		case "name":
			return member{1 << 17, memberText, 0}
		}
	case "target":
		switch string(key) {
		case "type":
			return ix(18, FieldTargetType)
		case "id":
			return ix(19, FieldTargetID)
		case "name":
			return member{1 << 20, memberText, 0}
		}
	case "context":
		switch string(key) {
		case "team_id":
			return ix(21, FieldTeamID)
		case "ip":
			return member{1 << 22, memberIP, 0}
		case "user_agent":
			return member{1 << 23, memberText, 0}
		case "request_id":
			return member{1 << 24, memberText, 0}
		}
	case "decision":
		switch string(key) {
		case "action":
			return ix(25, FieldDecision)
		case "policy":
			return member{1 << 26, memberText, 0}
		case "reason":
			return member{1 << 27, memberText, 0}
		}
	}
	return member{}
}

// rawScanner walks canonical envelope bytes, handing out raw string bytes;
// it gives up on escapes.
type rawScanner struct {
	b  []byte
	i  int
	ok bool
}

// object parses an object, calling member(outer, key) for each member
// with the cursor on its value; outer is the enclosing member's key for a
// nested object (nil at the top, so an empty key is not mistaken for it).
// Objects nest one level at most.
func (s *rawScanner) object(member func(outer, key []byte) bool) bool {
	return s.obj(nil, member)
}

func (s *rawScanner) obj(outer []byte, member func(outer, key []byte) bool) bool {
	if s.i >= len(s.b) || s.b[s.i] != '{' {
		return false
	}
	s.i++
	if s.i < len(s.b) && s.b[s.i] == '}' {
		s.i++
		return true
	}
	for {
		key, ok := s.str()
		if !ok || s.i >= len(s.b) || s.b[s.i] != ':' {
			return false
		}
		s.i++
		if s.i < len(s.b) && s.b[s.i] == '{' {
			if outer != nil || !s.obj(key, member) {
				return false
			}
		} else if !member(outer, key) {
			return false
		}
		if s.i >= len(s.b) {
			return false
		}
		switch s.b[s.i] {
		case ',':
			s.i++
		case '}':
			s.i++
			return true
		default:
			return false
		}
	}
}

func (s *rawScanner) str() ([]byte, bool) {
	if s.i >= len(s.b) || s.b[s.i] != '"' {
		return nil, false
	}
	start := s.i + 1
	for j := start; j < len(s.b); j++ {
		switch c := s.b[j]; {
		case c == '"':
			s.i = j + 1
			if !utf8.Valid(s.b[start:j]) {
				return nil, false
			}
			return s.b[start:j], true
		case c == '\\' || c < 0x20:
			return nil, false
		}
	}
	return nil, false
}

func (s *rawScanner) int() (int64, bool) {
	neg := false
	if s.i < len(s.b) && s.b[s.i] == '-' {
		neg = true
		s.i++
	}
	start := s.i
	var v int64
	for s.i < len(s.b) && s.b[s.i] >= '0' && s.b[s.i] <= '9' {
		if s.i-start >= 18 {
			return 0, false
		}
		v = v*10 + int64(s.b[s.i]-'0')
		s.i++
	}
	if s.i == start || (s.b[start] == '0' && s.i-start > 1) {
		return 0, false // no digits, or a leading zero (not JSON)
	}
	if neg {
		v = -v
	}
	return v, true
}

// canonicalTime parses the time form AppendEnvelope writes:
// 2006-01-02T15:04:05[.fraction]Z.
func canonicalTime(b []byte) (int64, bool) {
	if len(b) < 20 || b[4] != '-' || b[7] != '-' || b[10] != 'T' || b[13] != ':' || b[16] != ':' || b[len(b)-1] != 'Z' {
		return 0, false
	}
	num := func(p []byte) (int, bool) {
		n := 0
		for _, c := range p {
			if c < '0' || c > '9' {
				return 0, false
			}
			n = n*10 + int(c-'0')
		}
		return n, true
	}
	year, ok1 := num(b[0:4])
	month, ok2 := num(b[5:7])
	day, ok3 := num(b[8:10])
	hour, ok4 := num(b[11:13])
	min, ok5 := num(b[14:16])
	sec, ok6 := num(b[17:19])
	if !(ok1 && ok2 && ok3 && ok4 && ok5 && ok6) || month < 1 || month > 12 || day < 1 || day > 31 || hour > 23 || min > 59 || sec > 59 {
		return 0, false
	}
	nsec := 0
	if len(b) > 20 {
		frac := b[19 : len(b)-1]
		if frac[0] != '.' || len(frac) < 2 || len(frac) > 10 {
			return 0, false
		}
		n, ok := num(frac[1:])
		if !ok {
			return 0, false
		}
		for i := len(frac) - 1; i < 9; i++ {
			n *= 10
		}
		nsec = n
	}
	t := time.Date(year, time.Month(month), day, hour, min, sec, nsec, time.UTC)
	if t.Day() != day {
		return 0, false // e.g. February 30th
	}
	return t.UnixNano(), true
}

// ScanEnvelopeMembers reads canonical envelope bytes without allocating:
// fn receives every member as (outer, key, raw), where outer is the
// enclosing member's key (nil at the top) and raw is a string's bytes
// without quotes or an integer's digits. It returns false when the
// envelope needs the full parser (escaped strings, any other layout);
// fn may have been called for some members by then. Slices are only valid
// during the call.
func ScanEnvelopeMembers(env []byte, fn func(outer, key, raw []byte)) bool {
	s := rawScanner{b: env}
	var seen uint64
	ok := s.object(func(outer, key []byte) bool {
		m := envelopeMember(outer, key)
		if m.bit == 0 || seen&m.bit != 0 {
			return false
		}
		seen |= m.bit
		var v []byte
		switch m.kind {
		case memberSeq, memberInt, memberStatus:
			start := s.i
			if _, s.ok = s.int(); s.ok {
				v = s.b[start:s.i]
			}
		default:
			v, s.ok = s.str()
		}
		if s.ok {
			fn(outer, key, v)
		}
		return s.ok
	})
	return ok && s.i == len(s.b)
}
