package veritrail

import (
	"strconv"
	"time"
	"unicode/utf16"
	"unicode/utf8"
)

// parseEnvelopeFast decodes envelope bytes in the canonical layout of
// AppendEnvelope without reflection: verification and indexing read
// millions of envelopes. It returns false on anything unexpected; the
// caller then falls back to encoding/json, which also reports the error.
func parseEnvelopeFast(b []byte) (*Event, bool) {
	p := envParser{b: b}
	e := &Event{}
	seqSeen := false
	ok := p.object(func(key string) bool {
		switch key {
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
			p.ok = p.object(func(k string) bool {
				switch k {
				case "type":
					e.Actor.Type, p.ok = p.str()
				case "id":
					e.Actor.ID, p.ok = p.str()
				case "email":
					e.Actor.Email, p.ok = p.str()
				case "name":
					e.Actor.Name, p.ok = p.str()
				default:
					return false
				}
				return p.ok
			})
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
			t := &Target{}
			e.Target = t
			p.ok = p.object(func(k string) bool {
				switch k {
				case "type":
					t.Type, p.ok = p.str()
				case "id":
					t.ID, p.ok = p.str()
				case "name":
					t.Name, p.ok = p.str()
				default:
					return false
				}
				return p.ok
			})
		case "context":
			c := &Context{}
			e.Context = c
			p.ok = p.object(func(k string) bool {
				switch k {
				case "team_id":
					c.TeamID, p.ok = p.str()
				case "ip":
					c.IP, p.ok = p.str()
				case "user_agent":
					c.UserAgent, p.ok = p.str()
				case "request_id":
					c.RequestID, p.ok = p.str()
				default:
					return false
				}
				return p.ok
			})
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
			d := &Decision{}
			e.Decision = d
			p.ok = p.object(func(k string) bool {
				switch k {
				case "action":
					d.Action, p.ok = p.str()
				case "policy":
					d.Policy, p.ok = p.str()
				case "reason":
					d.Reason, p.ok = p.str()
				default:
					return false
				}
				return p.ok
			})
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

type envParser struct {
	b  []byte
	i  int
	ok bool
}

// object parses {"k":v,...} calling member for each key, which parses v.
func (p *envParser) object(member func(key string) bool) bool {
	if p.i >= len(p.b) || p.b[p.i] != '{' {
		return false
	}
	p.i++
	if p.i < len(p.b) && p.b[p.i] == '}' {
		p.i++
		return true
	}
	for {
		key, ok := p.str()
		if !ok || p.i >= len(p.b) || p.b[p.i] != ':' {
			return false
		}
		p.i++
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

// str parses a JSON string.
func (p *envParser) str() (string, bool) {
	if p.i >= len(p.b) || p.b[p.i] != '"' {
		return "", false
	}
	p.i++
	start := p.i
	for p.i < len(p.b) {
		c := p.b[p.i]
		if c == '"' {
			s := p.b[start:p.i]
			p.i++
			if !utf8.Valid(s) {
				return "", false
			}
			return string(s), true
		}
		if c == '\\' {
			return p.escaped(start)
		}
		if c < 0x20 {
			return "", false
		}
		p.i++
	}
	return "", false
}

// escaped finishes a string that has escapes, from its start.
func (p *envParser) escaped(start int) (string, bool) {
	buf := append([]byte(nil), p.b[start:p.i]...)
	for p.i < len(p.b) {
		c := p.b[p.i]
		switch {
		case c == '"':
			p.i++
			if !utf8.Valid(buf) {
				return "", false
			}
			return string(buf), true
		case c < 0x20:
			return "", false
		case c != '\\':
			buf = append(buf, c)
			p.i++
			continue
		}
		if p.i+1 >= len(p.b) {
			return "", false
		}
		esc := p.b[p.i+1]
		p.i += 2
		switch esc {
		case '"', '\\', '/':
			buf = append(buf, esc)
		case 'b':
			buf = append(buf, '\b')
		case 'f':
			buf = append(buf, '\f')
		case 'n':
			buf = append(buf, '\n')
		case 'r':
			buf = append(buf, '\r')
		case 't':
			buf = append(buf, '\t')
		case 'u':
			if p.i+4 > len(p.b) {
				return "", false
			}
			v, err := strconv.ParseUint(string(p.b[p.i:p.i+4]), 16, 32)
			if err != nil {
				return "", false
			}
			p.i += 4
			r := rune(v)
			if utf16.IsSurrogate(r) {
				if p.i+6 > len(p.b) || p.b[p.i] != '\\' || p.b[p.i+1] != 'u' {
					return "", false
				}
				v2, err := strconv.ParseUint(string(p.b[p.i+2:p.i+6]), 16, 32)
				if err != nil {
					return "", false
				}
				p.i += 6
				r = utf16.DecodeRune(r, rune(v2))
			}
			buf = utf8.AppendRune(buf, r)
		default:
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
