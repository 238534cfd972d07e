package veritrail

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"strconv"
	"sync"
	"time"
	"unsafe"

	"github.com/veritrail/veritrail/internal/canonjson"
)

// SaltSize is the size of the random salt stored with each event's content.
const SaltSize = 16

// ContentDigest returns hex(SHA-256(salt ‖ content)): the commitment to the
// content that the envelope carries. The salt keeps the digest from
// confirming guesses about content once the content itself is gone.
func ContentDigest(salt, content []byte) string {
	sum := hashJoined(nil, salt, content)
	return hex.EncodeToString(sum[:])
}

// ContentDigestMatches reports whether digest (an envelope's
// content_digest) is ContentDigest(salt, content), without allocating: a
// verifier checks every stored content.
func ContentDigestMatches(salt, content []byte, digest string) bool {
	sum := hashJoined(nil, salt, content)
	var enc [2 * sha256.Size]byte
	hex.Encode(enc[:], sum[:])
	return string(enc[:]) == digest
}

// LeafHash returns the RFC 6962 leaf hash of envelope bytes:
// SHA-256(0x00 ‖ envelope).
func LeafHash(envelope []byte) [32]byte {
	return hashJoined(leafPrefix, envelope, nil)
}

var leafPrefix = []byte{0} // a literal would be allocated per call: the hash's Write keeps no slice, but the compiler cannot tell

// hashJoined is SHA-256(a ‖ b ‖ c), through a pooled hash: a new
// hash.Hash allocates, and every envelope is hashed at commit and again at
// every verification. Written in turn, the parts are not copied (joined
// into one buffer, each envelope was copied once more per hash).
func hashJoined(a, b, c []byte) [sha256.Size]byte {
	h := joinHashers.Get().(*joinHasher)
	h.h.Reset()
	h.h.Write(a)
	h.h.Write(b)
	h.h.Write(c)
	var sum [sha256.Size]byte
	copy(sum[:], h.h.Sum(h.sum[:0]))
	joinHashers.Put(h)
	return sum
}

// joinHasher is a pooled SHA-256 and the buffer its sums are written to
// (a sum written through the interface into a local array would move it
// to the heap).
type joinHasher struct {
	h   hash.Hash
	sum [sha256.Size]byte
}

var joinHashers = sync.Pool{New: func() any { return &joinHasher{h: sha256.New()} }}

// AppendEnvelope appends the canonical envelope bytes of e to dst.
//
// The encoding MUST stay byte-for-byte stable: stored envelopes are hashed
// into the Merkle tree and verified by recomputing these bytes. It is JSON
// with a fixed member order, empty members omitted, strings in RFC 8785 form
// and times in RFC 3339 UTC with nanoseconds and no trailing zeros. The
// bytes are also the event as the API returns it, without its content.
func AppendEnvelope(dst []byte, e *Event) []byte {
	dst = append(dst, `{"id":`...)
	dst = canonjson.AppendString(dst, e.ID)
	dst = append(dst, `,"seq":`...)
	dst = strconv.AppendInt(dst, e.Seq, 10)
	dst = append(dst, `,"time":"`...)
	dst = e.Time.UTC().AppendFormat(dst, time.RFC3339Nano)
	dst = append(dst, `","received_at":"`...)
	dst = e.ReceivedAt.UTC().AppendFormat(dst, time.RFC3339Nano)
	dst = append(dst, `","type":`...)
	dst = canonjson.AppendString(dst, e.Type)
	dst = append(dst, `,"actor":{"type":`...)
	dst = canonjson.AppendString(dst, e.Actor.Type)
	dst = appendMember(dst, "id", e.Actor.ID)
	dst = appendMember(dst, "email", e.Actor.Email)
	dst = appendMember(dst, "name", e.Actor.Name)
	dst = append(dst, '}')
	dst = appendMember(dst, "agent_id", e.AgentID)
	dst = appendMember(dst, "task_id", e.TaskID)
	dst = appendMember(dst, "session_id", e.SessionID)
	dst = appendMember(dst, "connector", e.Connector)
	dst = appendMember(dst, "tool", e.Tool)
	if t := e.Target; t != nil && (t.Type != "" || t.ID != "" || t.Name != "") {
		dst = append(dst, `,"target":{`...)
		dst = appendFirstMembers(dst, "type", t.Type, "id", t.ID, "name", t.Name, "", "")
		dst = append(dst, '}')
	}
	if c := e.Context; c != nil && (c.TeamID != "" || c.IP != "" || c.UserAgent != "" || c.RequestID != "") {
		dst = append(dst, `,"context":{`...)
		dst = appendFirstMembers(dst, "team_id", c.TeamID, "ip", c.IP, "user_agent", c.UserAgent, "request_id", c.RequestID)
		dst = append(dst, '}')
	}
	dst = appendMember(dst, "outcome", e.Outcome)
	if e.Status != nil {
		dst = append(dst, `,"status":`...)
		dst = strconv.AppendInt(dst, *e.Status, 10)
	}
	if e.DurationMS != nil {
		dst = append(dst, `,"duration_ms":`...)
		dst = strconv.AppendInt(dst, *e.DurationMS, 10)
	}
	if d := e.Decision; d != nil {
		dst = append(dst, `,"decision":{"action":`...)
		dst = canonjson.AppendString(dst, d.Action)
		dst = appendMember(dst, "policy", d.Policy)
		dst = appendMember(dst, "reason", d.Reason)
		dst = append(dst, '}')
	}
	dst = appendMember(dst, "content_digest", e.ContentDigest)
	return append(dst, '}')
}

func appendMember(dst []byte, name, value string) []byte {
	if value == "" {
		return dst
	}
	dst = append(dst, ',', '"')
	dst = append(dst, name...)
	dst = append(dst, '"', ':')
	return canonjson.AppendString(dst, value)
}

// appendFirstMembers appends up to four members, the first without a comma.
func appendFirstMembers(dst []byte, kv ...string) []byte {
	first := true
	for i := 0; i+1 < len(kv); i += 2 {
		if kv[i+1] == "" {
			continue
		}
		if !first {
			dst = append(dst, ',')
		}
		first = false
		dst = append(dst, '"')
		dst = append(dst, kv[i]...)
		dst = append(dst, '"', ':')
		dst = canonjson.AppendString(dst, kv[i+1])
	}
	return dst
}

// ParseEnvelope decodes envelope bytes (read by EnvelopeScanner, so of the
// envelope's shape). It does not check that the bytes are canonical;
// CheckEnvelope does.
func ParseEnvelope(b []byte) (*Event, error) {
	return parseEnvelope(b, string(b)) // one copy backs every string that needs no unescaping
}

// ParseEnvelopeString is ParseEnvelope over bytes held in a string: the
// event's strings share its memory instead of a copy, so a reader that
// already keeps the envelope immutable (a verifier) allocates less.
func ParseEnvelopeString(env string) (*Event, error) {
	return parseEnvelope(unsafe.Slice(unsafe.StringData(env), len(env)), env)
}

// parsedEvent allocates an event and the parts an envelope may have at
// once.
type parsedEvent struct {
	e                Event
	t                Target
	c                Context
	d                Decision
	status, duration int64
}

// parseEnvelope reads b, whose bytes str holds too (the scanner only reads
// b; the event's strings are sliced from str).
func parseEnvelope(b []byte, str string) (*Event, error) {
	return (&parsedEvent{}).parse(b, str)
}

// EnvelopeReader reads envelopes one after another into one event, for a
// reader that is done with each event before it reads the next (a
// verifier's loop): no allocation per envelope, its index keys' included.
// The zero value is ready to use; one goroutine at a time.
type EnvelopeReader struct{ p parsedEvent }

// ParseString is ParseEnvelopeString into r's event: the event the
// previous call returned is overwritten (MUST no longer be used).
func (r *EnvelopeReader) ParseString(env string) (*Event, error) {
	keys := r.p.e.keys
	if keys == nil {
		keys = r.p.e.keyBuf
	}
	r.p = parsedEvent{}
	r.p.e.keyBuf = keys[:0]
	return r.p.parse(unsafe.Slice(unsafe.StringData(env), len(env)), env)
}

// parse reads b into p (zero, or reset by EnvelopeReader).
func (p *parsedEvent) parse(b []byte, str string) (*Event, error) {
	e := &p.e
	target := func() *Target { e.Target = &p.t; return e.Target }
	context := func() *Context { e.Context = &p.c; return e.Context }
	decision := func() *Decision { e.Decision = &p.d; return e.Decision }
	s := ScanEnvelope(b)
	for s.Next() {
		m := s.Member()
		var v string
		switch {
		case m.IsInt():
		case s.Escaped():
			v = s.Text()
		default:
			v = str[s.Offset() : s.Offset()+len(s.Raw())]
		}
		switch m {
		case MemberID:
			e.ID = v
		case MemberSeq:
			e.Seq = s.Int()
		case MemberTime, MemberReceivedAt:
			t, ok := s.Time()
			if !ok {
				return nil, fmt.Errorf("envelope: %s %q is not an RFC 3339 UTC time", m, s.Raw())
			}
			if m == MemberTime {
				e.Time = t
			} else {
				e.ReceivedAt = t
			}
		case MemberType:
			e.Type = v
		case MemberActorType:
			e.Actor.Type = v
		case MemberActorID:
			e.Actor.ID = v
		case MemberActorEmail:
			e.Actor.Email = v
		case MemberActorName:
			e.Actor.Name = v
		case MemberAgentID:
			e.AgentID = v
		case MemberTaskID:
			e.TaskID = v
		case MemberSessionID:
			e.SessionID = v
		case MemberConnector:
			e.Connector = v
		case MemberTool:
			e.Tool = v
		case MemberTargetType:
			target().Type = v
		case MemberTargetID:
			target().ID = v
		case MemberTargetName:
			target().Name = v
		case MemberContextTeamID:
			context().TeamID = v
		case MemberContextIP:
			context().IP = v
		case MemberContextUserAgent:
			context().UserAgent = v
		case MemberContextRequestID:
			context().RequestID = v
		case MemberOutcome:
			e.Outcome = v
		case MemberStatus:
			p.status = s.Int()
			e.Status = &p.status
		case MemberDurationMS:
			p.duration = s.Int()
			e.DurationMS = &p.duration
		case MemberDecisionAction:
			decision().Action = v
		case MemberDecisionPolicy:
			decision().Policy = v
		case MemberDecisionReason:
			decision().Reason = v
		case MemberContentDigest:
			e.ContentDigest = v
		}
	}
	if err := s.Err(); err != nil {
		return nil, err
	}
	return e, nil
}

func (e *Event) target() *Target {
	if e.Target == nil {
		e.Target = &Target{}
	}
	return e.Target
}

func (e *Event) context() *Context {
	if e.Context == nil {
		e.Context = &Context{}
	}
	return e.Context
}

func (e *Event) decision() *Decision {
	if e.Decision == nil {
		e.Decision = &Decision{}
	}
	return e.Decision
}

// ErrNotCanonical is in the chain of CheckEnvelope's error when the bytes
// read as an envelope but are not the canonical encoding of it.
var ErrNotCanonical = errors.New("envelope is not in canonical form")

// CheckEnvelope parses envelope bytes and confirms they are exactly the
// canonical encoding of what they say, so that no two byte strings can stand
// for the same event. It defines canonical form: the verifier applies the
// same test to every envelope it reads (verify's readEnvelope, with a
// reused buffer). Its error wraps ErrNotCanonical when the bytes are an
// envelope spelt another way, and is a scan error (naming the byte) when
// they are not an envelope at all.
func CheckEnvelope(b []byte) (*Event, error) {
	e, err := ParseEnvelope(b)
	if err != nil {
		return nil, err
	}
	var buf [1024]byte
	again := AppendEnvelope(buf[:0], e)
	if string(again) != string(b) {
		i := 0
		for i < len(again) && i < len(b) && again[i] == b[i] {
			i++
		}
		return nil, fmt.Errorf("%w: it departs from it at byte %d", ErrNotCanonical, i)
	}
	return e, nil
}

// AppendEventJSON appends the API form of a stored event: its envelope,
// with the content and its salt spliced in when content is given (the
// caller decides whether the reader may see it).
func AppendEventJSON(dst, envelope, content, salt []byte) []byte {
	if len(content) == 0 || len(envelope) < 2 {
		return append(dst, envelope...)
	}
	dst = append(dst, envelope[:len(envelope)-1]...)
	dst = append(dst, `,"content":`...)
	dst = append(dst, content...)
	if len(salt) > 0 {
		dst = append(dst, `,"content_salt":"`...)
		dst = base64.StdEncoding.AppendEncode(dst, salt)
		dst = append(dst, '"')
	}
	return append(dst, '}')
}

// SplitEventJSON takes apart the API form of an event, as AppendEventJSON
// wrote it: the exact envelope bytes, and the content and salt spliced in
// before its end (nil when there are none). The envelope is a new slice;
// content and salt are not checked against it (the verifier does that).
func SplitEventJSON(event []byte) (envelope, content, salt []byte, err error) {
	// In canonical bytes a quote inside a string is escaped, so the first
	// ,"content": is the member AppendEventJSON added.
	const contentKey, saltKey = `,"content":`, `,"content_salt":"`
	i := bytes.Index(event, []byte(contentKey))
	if i < 0 {
		return event, nil, nil, nil
	}
	if i == 0 {
		return nil, nil, nil, errors.New("event: no envelope before the content")
	}
	rest := event[i+len(contentKey):]
	_, n, err := canonjson.AppendValue(nil, rest)
	if err != nil || len(rest) == 0 || rest[0] != '{' {
		return nil, nil, nil, errors.New("event: the content is not a JSON object")
	}
	content, rest = rest[:n], rest[n:]
	if bytes.HasPrefix(rest, []byte(saltKey)) {
		rest = rest[len(saltKey):]
		end := bytes.IndexByte(rest, '"')
		if end < 0 {
			return nil, nil, nil, errors.New("event: the content_salt is not a string")
		}
		if salt, err = base64.StdEncoding.Strict().DecodeString(string(rest[:end])); err != nil || len(salt) == 0 {
			return nil, nil, nil, errors.New("event: the content_salt is not standard base64 of a salt")
		}
		rest = rest[end+1:]
	}
	if string(rest) != "}" {
		return nil, nil, nil, errors.New("event: unexpected members after the content")
	}
	envelope = append(append(make([]byte, 0, i+1), event[:i]...), '}')
	return envelope, content, salt, nil
}
