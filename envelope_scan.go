package veritrail

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"net/netip"
	"time"
	"unicode/utf8"

	"github.com/veritrail/veritrail/internal/canonjson"
)

// EnvelopeMember names one member of the envelope, top-level or inside
// actor, target, context or decision. The constants follow the order in
// which AppendEnvelope writes the members.
type EnvelopeMember uint8

// Envelope members.
const (
	MemberID EnvelopeMember = iota + 1
	MemberSeq
	MemberTime
	MemberReceivedAt
	MemberType
	MemberActorType
	MemberActorID
	MemberActorEmail
	MemberActorName
	MemberAgentID
	MemberTaskID
	MemberSessionID
	MemberConnector
	MemberTool
	MemberTargetType
	MemberTargetID
	MemberTargetName
	MemberContextTeamID
	MemberContextIP
	MemberContextUserAgent
	MemberContextRequestID
	MemberOutcome
	MemberStatus
	MemberDurationMS
	MemberDecisionAction
	MemberDecisionPolicy
	MemberDecisionReason
	MemberContentDigest

	numMembers
)

var memberNames = [numMembers]string{
	MemberID: "id", MemberSeq: "seq", MemberTime: "time", MemberReceivedAt: "received_at", MemberType: "type",
	MemberActorType: "actor.type", MemberActorID: "actor.id", MemberActorEmail: "actor.email", MemberActorName: "actor.name",
	MemberAgentID: "agent_id", MemberTaskID: "task_id", MemberSessionID: "session_id", MemberConnector: "connector", MemberTool: "tool",
	MemberTargetType: "target.type", MemberTargetID: "target.id", MemberTargetName: "target.name",
	MemberContextTeamID: "context.team_id", MemberContextIP: "context.ip", MemberContextUserAgent: "context.user_agent",
	MemberContextRequestID: "context.request_id", MemberOutcome: "outcome", MemberStatus: "status", MemberDurationMS: "duration_ms",
	MemberDecisionAction: "decision.action", MemberDecisionPolicy: "decision.policy", MemberDecisionReason: "decision.reason",
	MemberContentDigest: "content_digest",
}

// String is the member's path as the API names fields: "actor.id".
func (m EnvelopeMember) String() string {
	if m < numMembers && memberNames[m] != "" {
		return memberNames[m]
	}
	return fmt.Sprintf("member%d", uint8(m))
}

// Field is the indexed field the member's value is the key of (after
// lower-casing for an e-mail address, parsing for an IP address or a
// status), or 0 when the member is not indexed.
func (m EnvelopeMember) Field() Field {
	switch m {
	case MemberType:
		return FieldType
	case MemberActorType:
		return FieldActorType
	case MemberActorID:
		return FieldActorID
	case MemberActorEmail:
		return FieldActorEmail
	case MemberAgentID:
		return FieldAgentID
	case MemberTaskID:
		return FieldTaskID
	case MemberSessionID:
		return FieldSessionID
	case MemberConnector:
		return FieldConnector
	case MemberTool:
		return FieldTool
	case MemberTargetType:
		return FieldTargetType
	case MemberTargetID:
		return FieldTargetID
	case MemberContextTeamID:
		return FieldTeamID
	case MemberContextIP:
		return FieldIP
	case MemberContextUserAgent:
		return FieldUserAgent
	case MemberContextRequestID:
		return FieldRequestID
	case MemberOutcome:
		return FieldOutcome
	case MemberStatus:
		return FieldStatus
	case MemberDecisionAction:
		return FieldDecision
	}
	return 0
}

// IsInt reports whether the member's value is an integer (else a string).
func (m EnvelopeMember) IsInt() bool {
	return m == MemberSeq || m == MemberStatus || m == MemberDurationMS
}

// requiredMembers are written by AppendEnvelope whatever the event holds.
const requiredMembers = 1<<MemberID | 1<<MemberSeq | 1<<MemberTime | 1<<MemberReceivedAt | 1<<MemberType | 1<<MemberActorType

// The envelope's nested objects.
const (
	objTop = iota
	objActor
	objTarget
	objContext
	objDecision
)

// envelopeMember identifies a member by its enclosing object and key
// without allocating; 0 when the envelope has no such member.
func envelopeMember(obj int, key []byte) EnvelopeMember {
	switch obj {
	case objTop:
		switch string(key) {
		case "id":
			return MemberID
		case "seq":
			return MemberSeq
		case "time":
			return MemberTime
		case "received_at":
			return MemberReceivedAt
		case "type":
			return MemberType
		case "agent_id":
			return MemberAgentID
		case "task_id":
			return MemberTaskID
		case "session_id":
			return MemberSessionID
		case "connector":
			return MemberConnector
		case "tool":
			return MemberTool
		case "outcome":
			return MemberOutcome
		case "status":
			return MemberStatus
		case "duration_ms":
			return MemberDurationMS
		case "content_digest":
			return MemberContentDigest
		}
	case objActor:
		switch string(key) {
		case "type":
			return MemberActorType
		case "id":
			return MemberActorID
		case "email":
			return MemberActorEmail
		case "name":
			return MemberActorName
		}
	case objTarget:
		switch string(key) {
		case "type":
			return MemberTargetType
		case "id":
			return MemberTargetID
		case "name":
			return MemberTargetName
		}
	case objContext:
		switch string(key) {
		case "team_id":
			return MemberContextTeamID
		case "ip":
			return MemberContextIP
		case "user_agent":
			return MemberContextUserAgent
		case "request_id":
			return MemberContextRequestID
		}
	case objDecision:
		switch string(key) {
		case "action":
			return MemberDecisionAction
		case "policy":
			return MemberDecisionPolicy
		case "reason":
			return MemberDecisionReason
		}
	}
	return 0
}

func envelopeObject(key []byte) int {
	switch string(key) {
	case "actor":
		return objActor
	case "target":
		return objTarget
	case "context":
		return objContext
	case "decision":
		return objDecision
	}
	return objTop
}

// EnvelopeScanner reads envelope bytes member by member without
// allocating. It is the one reader of the envelope format: ParseEnvelope,
// ScanEnvelopeIndex, the full-text words, the sinks' native records, the
// CSV export and the verifier are all built on it.
//
// It accepts JSON of the envelope's shape: the envelope's members (each
// at most once, in any order, every one AppendEnvelope always writes among
// them), strings and integers where AppendEnvelope writes them, nested
// objects that are not empty, no whitespace. It does not check that the bytes are
// canonical (CheckEnvelope does), but it refuses anything that is not
// valid JSON, as encoding/json would read it, and lone surrogates.
//
//	s := ScanEnvelope(env)
//	for s.Next() {
//		use(s.Member(), s.Raw())
//	}
//	if err := s.Err(); err != nil { … }
type EnvelopeScanner struct {
	b       []byte
	i       int
	obj     int    // the nested object the cursor is in, objTop at the top
	seen    uint64 // members met (bit m) and nested objects (bit 56+obj)
	m       EnvelopeMember
	raw     []byte
	off     int
	escaped bool
	n       int64
	state   int // scanning, closed (the closing brace was read), done
	err     error
}

const (
	scanning = iota
	closed
	done
)

// ScanEnvelope starts scanning env.
func ScanEnvelope(env []byte) EnvelopeScanner { return EnvelopeScanner{b: env} }

// Next advances to the next member and reports whether there is one. It
// returns false at the end of the envelope and at the first fault; Err
// tells them apart.
func (s *EnvelopeScanner) Next() bool {
	switch {
	case s.err != nil || s.state == done:
		return false
	case s.state == closed:
		s.state, s.m, s.raw = done, 0, nil
		if s.seen&requiredMembers != requiredMembers {
			for m := MemberID; m < numMembers; m++ {
				if requiredMembers&(1<<m) != 0 && s.seen&(1<<m) == 0 {
					s.err = fmt.Errorf("envelope: no %s", m)
					break
				}
			}
		}
		return false
	}
	b := s.b
	if s.i == 0 {
		if len(b) == 0 || b[0] != '{' {
			return s.fail("not a JSON object")
		}
		s.i = 1
		if len(b) > 1 && b[1] == '}' {
			return s.afterValue() && s.Next()
		}
	}
	for {
		key, end, escaped, ok := canonjson.ScanString(b, s.i)
		if !ok || escaped || end >= len(b) || b[end] != ':' {
			return s.fail("expected a member name and ':'")
		}
		at := s.i
		s.i = end + 1
		if s.obj == objTop && s.i < len(b) && b[s.i] == '{' {
			obj := envelopeObject(key)
			if obj == objTop || s.seen&(1<<(56+obj)) != 0 {
				return s.failAt(at, fmt.Sprintf("unexpected object %q", key))
			}
			s.seen |= 1 << (56 + obj)
			s.obj = obj
			s.i++
			continue // AppendEnvelope writes no empty object: a member must follow
		}
		m := envelopeMember(s.obj, key)
		if m == 0 {
			return s.failAt(at, fmt.Sprintf("unexpected member %q", key))
		}
		if s.seen&(1<<m) != 0 {
			return s.failAt(at, fmt.Sprintf("%s appears twice", m))
		}
		s.seen |= 1 << m
		s.m, s.off, s.escaped, s.n = m, s.i, false, 0
		if m.IsInt() {
			if s.n, end, ok = canonjson.ScanInt(b, s.i); !ok {
				return s.fail(m.String() + " is not an integer")
			}
			s.raw = b[s.i:end]
		} else {
			if s.raw, end, s.escaped, ok = canonjson.ScanString(b, s.i); !ok {
				return s.fail(m.String() + " is not a valid string")
			}
			s.off++
		}
		s.i = end
		return s.afterValue()
	}
}

// afterValue reads what follows a value: ',' before the next member, or
// the braces that close the nested object and the envelope.
func (s *EnvelopeScanner) afterValue() bool {
	for {
		if s.i >= len(s.b) {
			return s.fail("unexpected end")
		}
		switch s.b[s.i] {
		case ',':
			s.i++
			return true
		case '}':
			s.i++
			if s.obj != objTop {
				s.obj = objTop
				continue
			}
			if s.i != len(s.b) {
				return s.fail("data after the envelope")
			}
			s.state = closed
			return true
		default:
			return s.fail("expected ',' or '}'")
		}
	}
}

func (s *EnvelopeScanner) fail(why string) bool { return s.failAt(s.i, why) }

func (s *EnvelopeScanner) failAt(at int, why string) bool {
	s.err = fmt.Errorf("envelope: at byte %d: %s", at, why)
	s.m, s.raw = 0, nil
	return false
}

// Err is nil when the scan read a whole envelope with every member
// AppendEnvelope always writes, and what went wrong otherwise. It is
// meaningful once Next returned false.
func (s *EnvelopeScanner) Err() error {
	if s.err == nil && s.state != done {
		return fmt.Errorf("envelope: scan not finished")
	}
	return s.err
}

// Member is the member Next stopped at.
func (s *EnvelopeScanner) Member() EnvelopeMember { return s.m }

// Raw is the member's value as it is written in the envelope: a string's
// bytes between the quotes (escapes included when Escaped) or an integer's
// digits. It is a slice of the envelope.
func (s *EnvelopeScanner) Raw() []byte { return s.raw }

// Offset is the position of Raw in the envelope.
func (s *EnvelopeScanner) Offset() int { return s.off }

// Escaped reports whether the string value holds escapes, so that Raw is
// not the string itself.
func (s *EnvelopeScanner) Escaped() bool { return s.escaped }

// Int is the value of an integer member.
func (s *EnvelopeScanner) Int() int64 { return s.n }

// Text is the value of a string member, unescaped.
func (s *EnvelopeScanner) Text() string {
	if s.escaped {
		return string(canonjson.AppendUnescaped(make([]byte, 0, len(s.raw)), s.raw))
	}
	return string(s.raw)
}

// Time is the value of the time or received_at member, when it is written
// as AppendEnvelope writes times.
func (s *EnvelopeScanner) Time() (time.Time, bool) {
	if s.escaped {
		return time.Time{}, false
	}
	return canonicalTime(s.raw)
}

// canonicalTime parses the time form AppendEnvelope writes:
// 2006-01-02T15:04:05[.fraction]Z.
func canonicalTime(b []byte) (time.Time, bool) {
	if len(b) < 20 || b[4] != '-' || b[7] != '-' || b[10] != 'T' || b[13] != ':' || b[16] != ':' || b[len(b)-1] != 'Z' {
		return time.Time{}, false
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
		return time.Time{}, false
	}
	nsec := 0
	if len(b) > 20 {
		frac := b[19 : len(b)-1]
		if frac[0] != '.' || len(frac) < 2 || len(frac) > 10 {
			return time.Time{}, false
		}
		n, ok := num(frac[1:])
		if !ok {
			return time.Time{}, false
		}
		for i := len(frac) - 1; i < 9; i++ {
			n *= 10
		}
		nsec = n
	}
	t := time.Date(year, time.Month(month), day, hour, min, sec, nsec, time.UTC)
	if t.Day() != day {
		return time.Time{}, false // e.g. February 30th
	}
	return t, true
}

// ScanEnvelopeIndex reads, from envelope bytes, what the search index
// derives from them: fn receives every (field, index key) pair that
// Event.IndexKey would give, and it returns the event's id and time. It
// returns ok=false when the bytes are not an envelope (see EnvelopeScanner)
// or, never the case for ids this server accepts, the id is escaped;
// callers may then use ParseEnvelope and IndexKeys, which agree. The key
// slices passed to fn are only valid during the call: they are slices of
// env but for a status, an IP address, an e-mail address with upper-case
// letters and an escaped value, which share one small buffer allocated for
// the first of them.
func ScanEnvelopeIndex(env []byte, fn func(f Field, key []byte)) (id []byte, timeNS int64, ok bool) {
	var scratch []byte // keys that are not in env, valid during fn only
	s := ScanEnvelope(env)
	for s.Next() {
		m := s.Member()
		v := s.Raw()
		switch m {
		case MemberID:
			if s.Escaped() {
				return nil, 0, false
			}
			id = v
			continue
		case MemberTime:
			t, ok := s.Time()
			if !ok {
				return nil, 0, false
			}
			timeNS = t.UnixNano()
			continue
		case MemberReceivedAt:
			if _, ok := s.Time(); !ok {
				return nil, 0, false
			}
			continue
		case MemberStatus:
			scratch = binary.BigEndian.AppendUint64(empty(scratch), statusBits(s.Int()))
			fn(FieldStatus, scratch)
			continue
		}
		f := m.Field()
		if f == 0 || len(v) == 0 {
			continue
		}
		if s.Escaped() {
			scratch = canonjson.AppendUnescaped(empty(scratch), v)
			v = scratch
		}
		switch m {
		case MemberActorEmail:
			v, scratch = lowerEmail(v, scratch)
		case MemberContextIP:
			a, err := netip.ParseAddr(string(v))
			if err != nil {
				continue
			}
			k := ipBytes(a)
			scratch = append(empty(scratch), k[:]...)
			v = scratch
		}
		fn(f, v)
	}
	if s.Err() != nil || id == nil {
		return nil, 0, false
	}
	return id, timeNS, true
}

// empty returns scratch emptied, or a buffer that holds any status or IP
// key and most values.
func empty(scratch []byte) []byte {
	if scratch == nil {
		return make([]byte, 0, 32)
	}
	return scratch[:0]
}

// lowerEmail is strings.ToLower for an e-mail address's index key: into
// scratch (which v may be) for ASCII, by bytes.ToLower (the same Unicode
// case mapping, rune by rune) otherwise.
func lowerEmail(v, scratch []byte) (key, buf []byte) {
	upper := false
	for _, c := range v {
		if c >= utf8.RuneSelf {
			return bytes.ToLower(v), scratch
		}
		upper = upper || c >= 'A' && c <= 'Z'
	}
	if !upper {
		return v, scratch
	}
	buf = append(empty(scratch), v...)
	for i, c := range buf {
		if c >= 'A' && c <= 'Z' {
			buf[i] = c + 'a' - 'A'
		}
	}
	return buf, buf
}
