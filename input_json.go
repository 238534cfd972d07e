package veritrail

import (
	"bytes"
	"fmt"
	"strconv"

	"github.com/veritrail/veritrail/internal/canonjson"
)

// eventReader reads one event object into its Decoder's eventInput.
// encoding/json hands it the bytes of each value of the body (their syntax
// already checked) through UnmarshalJSON; reading them here rather than by
// reflection names the field of every fault (a lone surrogate included,
// which encoding/json would quietly turn into U+FFFD), refuses a member
// given twice or spelt in another case, and costs less.
type eventReader Decoder

// The members of an event, as bits for spotting a repeated one.
const (
	inID = 1 << iota
	inTime
	inType
	inActor
	inAgentID
	inTaskID
	inSessionID
	inConnector
	inTool
	inTarget
	inContext
	inOutcome
	inStatus
	inDurationMS
	inDecision
	inContent
)

// UnmarshalJSON implements json.Unmarshaler.
func (r *eventReader) UnmarshalJSON(b []byte) error {
	d := (*Decoder)(r)
	if d.index >= d.lim.MaxBatchEvents {
		return &Error{Code: ETooLarge, Index: d.index, Message: fmt.Sprintf(
			"event %d: more than %d events in one request; split the batch", d.index, d.lim.MaxBatchEvents)}
	}
	if len(b) > d.lim.MaxEventBytes {
		return &Error{Code: ETooLarge, Index: d.index, Message: fmt.Sprintf(
			"event %d is %d bytes; the limit is %d bytes per event", d.index, len(b), d.lim.MaxEventBytes)}
	}
	p := inputParser{d: d, b: b}
	p.skipSpace()
	if p.peek() != '{' {
		return &Error{Code: EInvalidEvent, Index: d.index, Message: fmt.Sprintf(
			"event %d: expected a JSON object, got %s", d.index, p.kind())}
	}
	return p.event()
}

// event reads the event object at the cursor into the Decoder's
// eventInput.
func (p *inputParser) event() error {
	d := p.d
	in := &d.in
	d.strs, d.pending = d.strs[:0], d.pending[:0]
	d.block = new(eventBlock)
	if err := p.eventMembers(in); err != nil {
		return err
	}
	// The event's strings share one allocation (str).
	if len(d.pending) > 0 {
		all := string(d.strs)
		for _, ps := range d.pending {
			*ps.dst = all[ps.start:ps.end]
		}
		clear(d.pending)
	}
	return nil
}

// pendingString is a string of the event being read: its bytes are
// d.strs[start:end], to be stored in dst once the event is read.
type pendingString struct {
	dst        *string
	start, end int
}

func (p *inputParser) eventMembers(in *eventInput) error {
	d := p.d
	seen := 0
	return p.object("", func(key string) error {
		var bit int
		var err error
		switch key {
		case "id":
			bit, err = inID, p.str("", key, &in.ID)
		case "time":
			bit, err = inTime, p.str("", key, &in.Time)
		case "type":
			bit, err = inType, p.str("", key, &in.Type)
		case "actor":
			bit = inActor
			if err = p.objectOrNull(key); err == nil && p.peek() == '{' {
				a := &d.block.actor
				in.Actor = a
				err = p.strings(key, actorMembers[:], &a.Type, &a.ID, &a.Email, &a.Name)
			}
		case "agent_id":
			bit, err = inAgentID, p.str("", key, &in.AgentID)
		case "task_id":
			bit, err = inTaskID, p.str("", key, &in.TaskID)
		case "session_id":
			bit, err = inSessionID, p.str("", key, &in.SessionID)
		case "connector":
			bit, err = inConnector, p.str("", key, &in.Connector)
		case "tool":
			bit, err = inTool, p.str("", key, &in.Tool)
		case "target":
			bit = inTarget
			if err = p.objectOrNull(key); err == nil && p.peek() == '{' {
				t := &d.block.target
				in.Target = t
				err = p.strings(key, targetMembers[:], &t.Type, &t.ID, &t.Name)
			}
		case "context":
			bit = inContext
			if err = p.objectOrNull(key); err == nil && p.peek() == '{' {
				c := &d.block.context
				in.Context = c
				err = p.strings(key, contextMembers[:], &c.TeamID, &c.IP, &c.UserAgent, &c.RequestID)
			}
		case "outcome":
			bit, err = inOutcome, p.str("", key, &in.Outcome)
		case "status":
			bit, err = inStatus, p.int(key, &in.Status)
		case "duration_ms":
			bit, err = inDurationMS, p.int(key, &in.DurationMS)
		case "decision":
			bit = inDecision
			if err = p.objectOrNull(key); err == nil && p.peek() == '{' {
				dc := &d.block.decision
				in.Decision = dc
				err = p.strings(key, decisionMembers[:], &dc.Action, &dc.Policy, &dc.Reason)
			}
		case "content":
			bit, err = inContent, p.content()
		default:
			return p.unknown("", key)
		}
		if seen&bit != 0 {
			return EventError(d.index, key, "appears twice; give each field once")
		}
		seen |= bit
		return err
	})
}

// The members of the event's nested objects, in the order strings fills
// its fields.
var (
	actorMembers    = [...]string{"type", "id", "email", "name"}
	targetMembers   = [...]string{"type", "id", "name"}
	contextMembers  = [...]string{"team_id", "ip", "user_agent", "request_id"}
	decisionMembers = [...]string{"action", "policy", "reason"}
)

// inputParser walks the bytes of one event. They are valid JSON (the
// json.Decoder checked them), but it checks every byte it relies on all
// the same, so that it cannot be led astray.
type inputParser struct {
	d *Decoder
	b []byte
	i int
}

func (p *inputParser) skipSpace() { p.i = canonjson.SkipSpace(p.b, p.i) }

func (p *inputParser) peek() byte {
	if p.i < len(p.b) {
		return p.b[p.i]
	}
	return 0
}

// kind names the JSON value at the cursor as encoding/json's errors do.
func (p *inputParser) kind() string {
	switch p.peek() {
	case '"':
		return "string"
	case '{':
		return "object"
	case '[':
		return "array"
	case 't', 'f':
		return "bool"
	case 'n':
		return "null"
	}
	return "number"
}

func (p *inputParser) malformed() error {
	return &Error{Code: EInvalidJSON, Index: p.d.index, Message: fmt.Sprintf("event %d: malformed JSON at byte %d of the event", p.d.index, p.i)}
}

// object reads the members of the object at the cursor (path names it),
// calling member with each key and the cursor on the value.
func (p *inputParser) object(path string, member func(key string) error) error {
	p.i++ // {
	p.skipSpace()
	if p.peek() == '}' {
		p.i++
		return nil
	}
	for {
		p.skipSpace()
		key, err := p.key(path)
		if err != nil {
			return err
		}
		p.skipSpace()
		if p.peek() != ':' {
			return p.malformed()
		}
		p.i++
		p.skipSpace()
		if err := member(key); err != nil {
			return err
		}
		p.skipSpace()
		switch p.peek() {
		case ',':
			p.i++
		case '}':
			p.i++
			return nil
		default:
			return p.malformed()
		}
	}
}

// key reads a member name without allocating unless it is escaped.
func (p *inputParser) key(path string) (string, error) {
	raw, end, escaped, ok := canonjson.ScanString(p.b, p.i)
	if !ok || escaped {
		s, end, err := canonjson.DecodeString(p.b, p.i)
		if err != nil {
			return "", EventError(p.d.index, path, "a member name is not a valid string: %s", err.(*canonjson.StringError).Reason)
		}
		p.i = end
		return s, nil
	}
	p.i = end
	return eventKey(raw), nil
}

// eventKey returns the member names of events without allocating; others
// as new strings. A switch on the bytes (the compiler compares lengths and
// words, and converts raw without copying) rather than a map: hashing
// each key was 4 percent of the node's CPU under load.
func eventKey(raw []byte) string {
	switch string(raw) {
	case "id":
		return "id"
	case "time":
		return "time"
	case "type":
		return "type"
	case "actor":
		return "actor"
	case "email":
		return "email"
	case "name":
		return "name"
	case "agent_id":
		return "agent_id"
	case "task_id":
		return "task_id"
	case "session_id":
		return "session_id"
	case "connector":
		return "connector"
	case "tool":
		return "tool"
	case "target":
		return "target"
	case "context":
		return "context"
	case "team_id":
		return "team_id"
	case "ip":
		return "ip"
	case "user_agent":
		return "user_agent"
	case "request_id":
		return "request_id"
	case "outcome":
		return "outcome"
	case "status":
		return "status"
	case "duration_ms":
		return "duration_ms"
	case "decision":
		return "decision"
	case "action":
		return "action"
	case "policy":
		return "policy"
	case "reason":
		return "reason"
	case "content":
		return "content"
	}
	return string(raw)
}

// str reads a string or null (left empty) into dst; path.key names it.
func (p *inputParser) str(path, key string, dst *string) error {
	switch p.peek() {
	case 'n':
		return p.null()
	case '"':
	default:
		return EventError(p.d.index, join(path, key), "expected a string, got %s", p.kind())
	}
	raw, end, escaped, ok := canonjson.ScanString(p.b, p.i)
	if !ok {
		_, _, err := canonjson.DecodeString(p.b, p.i)
		se := err.(*canonjson.StringError)
		return EventError(p.d.index, join(path, key), "not a valid string: %s at byte %d of the event", se.Reason, se.Offset)
	}
	p.i = end
	d := p.d
	start := len(d.strs)
	if escaped {
		d.strs = canonjson.AppendUnescaped(d.strs, raw)
	} else {
		d.strs = append(d.strs, raw...)
	}
	d.pending = append(d.pending, pendingString{dst: dst, start: start, end: len(d.strs)})
	return nil
}

func (p *inputParser) null() error {
	if !bytes.HasPrefix(p.b[p.i:], []byte("null")) {
		return p.malformed()
	}
	p.i += 4
	return nil
}

// int reads an integer or null (left nil) into dst.
func (p *inputParser) int(path string, dst **int64) error {
	switch c := p.peek(); {
	case c == 'n':
		return p.null()
	case c == '-' || c >= '0' && c <= '9':
	default:
		return EventError(p.d.index, path, "expected an integer, got %s", p.kind())
	}
	start := p.i
	for p.i < len(p.b) && bytes.IndexByte([]byte("+-.eE0123456789"), p.b[p.i]) >= 0 {
		p.i++
	}
	v, err := strconv.ParseInt(string(p.b[start:p.i]), 10, 64)
	if err == nil && !jsonInteger(p.b[start:p.i]) {
		// ParseInt takes "+1" and "01", which JSON does not (the fast
		// path of Decoder reads bytes no JSON parser checked).
		return p.malformed()
	}
	if err != nil {
		return EventError(p.d.index, path, "expected an integer, got number %s", p.b[start:p.i])
	}
	*dst = &v
	return nil
}

// jsonInteger reports whether b is an integer in JSON's grammar:
// -?(0|[1-9][0-9]*).
func jsonInteger(b []byte) bool {
	if len(b) > 0 && b[0] == '-' {
		b = b[1:]
	}
	if len(b) == 0 || b[0] == '0' && len(b) > 1 {
		return false
	}
	for _, c := range b {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// objectOrNull checks that the value at the cursor is an object or null,
// and reads the null.
func (p *inputParser) objectOrNull(path string) error {
	switch p.peek() {
	case '{':
		return nil
	case 'n':
		return p.null()
	}
	return EventError(p.d.index, path, "expected an object, got %s", p.kind())
}

// strings reads the object at the cursor, whose members are strings named
// names, into fields.
func (p *inputParser) strings(path string, names []string, fields ...*string) error {
	seen := 0
	return p.object(path, func(key string) error {
		for i, name := range names {
			if key != name {
				continue
			}
			if seen&(1<<i) != 0 {
				return EventError(p.d.index, path+"."+key, "appears twice; give each field once")
			}
			seen |= 1 << i
			return p.str(path, key, fields[i])
		}
		return p.unknown(path, key)
	})
}

// content reads the content member: an object, canonicalized, or null.
func (p *inputParser) content() error {
	switch p.peek() {
	case 'n':
		return p.null()
	case '{':
	default:
		return EventError(p.d.index, "content", "must be a JSON object")
	}
	canon, n, err := canonjson.AppendValue(p.d.buf[:0], p.b[p.i:])
	if err != nil {
		return EventError(p.d.index, "content", "%s", err)
	}
	p.i += n
	p.d.in.Content = bytes.Clone(canon)
	p.d.buf = canon
	return nil
}

func (p *inputParser) unknown(path, key string) error {
	return EventError(p.d.index, join(path, key), "unknown field; the event fields are listed in docs/EVENTS.md, put anything else in content")
}

// join makes the path of a member: "actor.id".
func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}
