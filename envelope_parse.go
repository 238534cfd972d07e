package veritrail

import (
	"strconv"
	"time"
	"unicode/utf8"
)

// parseEnvelopeFast decodes envelope bytes in the canonical layout of
// AppendEnvelope without reflection: verification and indexing read
// millions of envelopes. It returns false on anything unexpected; the
// caller then falls back to encoding/json, which also reports the error.
func parseEnvelopeFast(b []byte) (*Event, bool) {
	// One copy of the envelope backs every string that needs no unescaping.
	p := envParser{b: b, s: string(b)}
	e := &Event{}
	seqSeen := false
	ok := p.object(func(key []byte) bool {
		switch string(key) {
		case "id":
			e.ID, p.ok = p.str()
		case "seq":
			e.Seq, p.ok = p.int()
			seqSeen = p.ok
		case "time":
			e.Time, p.ok = p.time()
		case "received_at":
			e.ReceivedAt, p.ok = p.time()
		case "type":
			e.Type, p.ok = p.str()
		case "actor":
			a := &e.Actor
			p.ok = p.strMembers(actorKeys, &a.Type, &a.ID, &a.Email, &a.Name)
		case "agent_id":
			e.AgentID, p.ok = p.str()
		case "task_id":
			e.TaskID, p.ok = p.str()
		case "session_id":
			e.SessionID, p.ok = p.str()
		case "connector":
			e.Connector, p.ok = p.str()
		case "tool":
			e.Tool, p.ok = p.str()
		case "target":
			if e.Target == nil {
				e.Target = &Target{}
			}
			t := e.Target
			p.ok = p.strMembers(targetKeys, &t.Type, &t.ID, &t.Name)
		case "context":
			if e.Context == nil {
				e.Context = &Context{}
			}
			c := e.Context
			p.ok = p.strMembers(contextKeys, &c.TeamID, &c.IP, &c.UserAgent, &c.RequestID)
		case "outcome":
			e.Outcome, p.ok = p.str()
		case "status":
			var v int64
			v, p.ok = p.int()
			e.Status = &v
		case "duration_ms":
			var v int64
			v, p.ok = p.int()
			e.DurationMS = &v
		case "decision":
			if e.Decision == nil {
				e.Decision = &Decision{}
			}
			d := e.Decision
			p.ok = p.strMembers(decisionKeys, &d.Action, &d.Policy, &d.Reason)
		case "content_digest":
			e.ContentDigest, p.ok = p.str()
		default:
			return false
		}
		return p.ok
	})
	if !ok || !seqSeen || p.i != len(p.b) {
		return nil, false
	}
	return e, true
}

// The members of the envelope's nested objects, in the order of the
// fields envParser.strMembers fills.
var (
	actorKeys    = []string{"type", "id", "email", "name"}
	targetKeys   = []string{"type", "id", "name"}
	contextKeys  = []string{"team_id", "ip", "user_agent", "request_id"}
	decisionKeys = []string{"action", "policy", "reason"}
)

type envParser struct {
	b  []byte
	s  string // b as a string
	i  int
	ok bool
}

// object parses {"k":v,...} calling member for each key, which parses v.
// Keys with escapes are refused (no envelope key has any).
func (p *envParser) object(member func(key []byte) bool) bool {
	if p.i >= len(p.b) || p.b[p.i] != '{' {
		return false
	}
	p.i++
	if p.i < len(p.b) && p.b[p.i] == '}' {
		p.i++
		return true
	}
	for {
		if p.i >= len(p.b) || p.b[p.i] != '"' {
			return false
		}
		end := p.i + 1
		for end < len(p.b) && p.b[end] != '"' && p.b[end] != '\\' {
			end++
		}
		if end+1 >= len(p.b) || p.b[end] != '"' || p.b[end+1] != ':' {
			return false
		}
		key := p.b[p.i+1 : end]
		p.i = end + 2
		if !member(key) {
			return false
		}
		if p.i >= len(p.b) {
			return false
		}
		switch p.b[p.i] {
		case ',':
			p.i++
		case '}':
			p.i++
			return true
		default:
			return false
		}
	}
}

// strMembers parses an object of string members named keys into fields.
func (p *envParser) strMembers(keys []string, fields ...*string) bool {
	return p.object(func(key []byte) bool {
		for i, k := range keys {
			if k == string(key) {
				*fields[i], p.ok = p.str()
				return p.ok
			}
		}
		return false
	})
}

// str parses a JSON string.
func (p *envParser) str() (string, bool) {
	if p.i >= len(p.b) || p.b[p.i] != '"' {
		return "", false
	}
	start := p.i + 1
	for j := start; j < len(p.b); j++ {
		switch c := p.b[j]; {
		case c == '"':
			if !utf8.Valid(p.b[start:j]) {
				return "", false
			}
			p.i = j + 1
			return p.s[start:j], true
		case c == '\\':
			s, end, fault := decodeJSONString(p.b, p.i)
			p.i = end
			return s, fault == ""
		case c < 0x20:
			return "", false
		}
	}
	return "", false
}

func (p *envParser) int() (int64, bool) {
	start := p.i
	if p.i < len(p.b) && p.b[p.i] == '-' {
		p.i++
	}
	digits := p.i
	for p.i < len(p.b) && p.b[p.i] >= '0' && p.b[p.i] <= '9' {
		p.i++
	}
	if p.i-digits > 1 && p.b[digits] == '0' {
		return 0, false // a leading zero is not JSON
	}
	v, err := strconv.ParseInt(string(p.b[start:p.i]), 10, 64)
	return v, err == nil
}

func (p *envParser) time() (time.Time, bool) {
	s, ok := p.str()
	if !ok {
		return time.Time{}, false
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, false
	}
	return t.UTC(), true
}
