package veritrail

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"strings"
	"time"
	"unicode/utf8"
)

// Limits bound what one ingest request may carry. Every limit is answered
// with payload_too_large (HTTP 413) and a message naming it.
type Limits struct {
	MaxEventBytes  int           // one event as sent, content included
	MaxBatchEvents int           // events in one request
	MaxBodyBytes   int64         // body after decompression
	MaxFuture      time.Duration // how far past now an event's time may be
}

// DefaultLimits are the documented defaults.
var DefaultLimits = Limits{
	MaxEventBytes:  256 << 10,
	MaxBatchEvents: 10000,
	MaxBodyBytes:   32 << 20,
	MaxFuture:      24 * time.Hour,
}

// Per-field length limits, in bytes.
const (
	maxTypeLen   = 128
	maxIDLen     = 256
	maxEmailLen  = 320
	maxNameLen   = 1024
	maxReasonLen = 4096
)

// eventInput is the wire form of an event sent to POST /api/v1/events, as
// eventReader reads it (Content canonical already) and MarshalInput writes
// it.
type eventInput struct {
	ID         string          `json:"id,omitempty"`
	Time       string          `json:"time,omitempty"`
	Type       string          `json:"type"`
	Actor      *Actor          `json:"actor"`
	AgentID    string          `json:"agent_id,omitempty"`
	TaskID     string          `json:"task_id,omitempty"`
	SessionID  string          `json:"session_id,omitempty"`
	Connector  string          `json:"connector,omitempty"`
	Tool       string          `json:"tool,omitempty"`
	Target     *Target         `json:"target,omitempty"`
	Context    *Context        `json:"context,omitempty"`
	Outcome    string          `json:"outcome,omitempty"`
	Status     *int64          `json:"status,omitempty"`
	DurationMS *int64          `json:"duration_ms,omitempty"`
	Decision   *Decision       `json:"decision,omitempty"`
	Content    json.RawMessage `json:"content,omitempty"`
}

// Decoder reads events from a request body — one JSON object, a JSON array
// of objects, or newline-delimited objects — one at a time, without holding
// the whole body, validating and normalizing each as it goes.
type Decoder struct {
	lim   Limits
	now   time.Time
	r     io.Reader
	br    *bufio.Reader
	dec   *json.Decoder
	array bool
	index int
	done  bool
	buf   []byte
	in    eventInput // the event being read
	// strs holds the strings of the event being read, pending says where
	// they go (inputParser.str).
	strs    []byte
	pending []pendingString

	// block is the memory of the event being read (inputParser.event).
	block *eventBlock

	tried bool     // the fast path was tried
	fast  []*Event // the events read by the fast path, not returned yet
	// fastMax is the largest body the fast path holds whole
	// (maxFastBody; tests lower it).
	fastMax int
}

// NewDecoder returns a decoder over r (already decompressed). now is the
// receive time: events without a time get it, and times more than
// lim.MaxFuture past it are refused.
func NewDecoder(r io.Reader, lim Limits, now time.Time) *Decoder {
	return &Decoder{lim: lim, now: now.UTC(), r: r, index: -1, fastMax: maxFastBody}
}

// Two ways of reading one body. The fast path reads the whole body (up to
// maxFastBody) into a pooled buffer and reads the events straight from
// it, with the same event reader; it takes only a body that is plainly
// valid and small. Anything else — a fault anywhere, a larger body, a read
// error — makes it give up before returning a single event, and the
// streaming path reads the same bytes again: encoding/json splits them
// into values, checking their syntax, and names the first fault exactly as
// it always did. So the fast path decides nothing that the streaming path
// would decide otherwise; FuzzDecoderPaths holds them to that.

// fastBodies recycles the fast path's body buffers, at most 16 (16 MiB).
// Not a sync.Pool: the collector empties a pool every other cycle, which
// under batched ingest is several times a second, and most requests then
// grew a fresh buffer from 16 KiB to their body's size (growslice was 5%
// of the node's CPU).
var fastBodies = make(chan []byte, 16)

// maxPooledBody is the largest buffer kept for reuse.
const maxPooledBody = 1 << 20

// maxFastBody is the largest body the fast path reads whole: a larger one
// (MaxBodyBytes allows 32 MiB) is streamed, so that a request holds at
// most this much of its body at once, however many arrive together.
const maxFastBody = 1 << 20

// Next returns the next validated event, or io.EOF after the last one. Any
// other error is a *Error naming the event index and, where known, the
// field; the caller must then refuse the whole request.
func (d *Decoder) Next() (*Event, error) {
	if !d.tried {
		d.tried = true
		d.readFast()
	}
	if d.fast != nil {
		if len(d.fast) == 0 {
			return nil, io.EOF
		}
		e := d.fast[0]
		d.fast[0] = nil
		d.fast = d.fast[1:]
		return e, nil
	}
	if d.done {
		return nil, io.EOF
	}
	if d.dec == nil {
		if err := d.start(); err != nil {
			return nil, err
		}
	}
	if d.array {
		if !d.dec.More() {
			if _, err := d.dec.Token(); err != nil { // ]
				return nil, d.wrap(err)
			}
			if _, err := d.dec.Token(); err != io.EOF {
				var ve *Error
				if errors.As(err, &ve) {
					return nil, ve
				}
				return nil, Errorf(EInvalidJSON, "unexpected data after the closing ']' of the array")
			}
			d.done = true
			return nil, io.EOF
		}
	}
	d.index++
	d.in = eventInput{}
	err := d.dec.Decode((*eventReader)(d))
	if err == io.EOF && !d.array {
		d.done = true
		if d.index == 0 {
			return nil, Errorf(EInvalidJSON, "the body holds no events")
		}
		return nil, io.EOF
	}
	if err != nil {
		return nil, d.wrap(err)
	}
	e, err := d.normalize(&d.in)
	if err != nil {
		return nil, err
	}
	return e, nil
}

// readFast reads the whole body and, if every event in it is valid, keeps
// them in d.fast. Otherwise it leaves d.fast nil and sets up the streaming
// path over the same bytes.
func (d *Decoder) readFast() {
	var body []byte
	select {
	case body = <-fastBodies:
	default:
		body = make([]byte, 0, 16<<10)
	}
	var rerr error
	for {
		if len(body) == cap(body) {
			body = append(body, 0)[:len(body)]
		}
		n, err := d.r.Read(body[len(body):min(cap(body), d.fastMax+1)])
		body = body[:len(body)+n]
		if len(body) > d.fastMax || (int64(len(body)) > d.lim.MaxBodyBytes && d.lim.MaxBodyBytes > 0) {
			rerr = errBodyTooLarge
			break
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			rerr = err
			break
		}
	}
	if rerr == nil {
		if evs, ok := d.readAll(body); ok {
			d.fast = evs
			if cap(body) <= maxPooledBody {
				select {
				case fastBodies <- body[:0]:
				default:
				}
			}
			return
		}
	}
	// The streaming path reads what was read, then the rest of the body
	// (or the error that stopped the fast path); the buffer is its now.
	var rest io.Reader = d.r
	if rerr != nil && rerr != errBodyTooLarge {
		rest = errorReader{rerr}
	}
	d.stream(&prefixReader{held: body, r: rest})
}

// prefixReader reads held, then r, each read filled from both as far as
// one reader of the whole body would fill it: the streaming path then
// meets the same bytes in the same reads (and so names the same fault) as
// if the fast path had never read them.
type prefixReader struct {
	held []byte
	r    io.Reader
}

func (p *prefixReader) Read(b []byte) (int, error) {
	n := copy(b, p.held)
	p.held = p.held[n:]
	if n == len(b) {
		return n, nil
	}
	m, err := p.r.Read(b[n:])
	if n+m > 0 && err != nil {
		err = nil // the bytes first, then the error on the next read
	}
	return n + m, err
}

// stream sets up the streaming path over the body src.
func (d *Decoder) stream(src io.Reader) {
	d.tried, d.fast = true, nil
	d.br = bufio.NewReaderSize(&limitedUTF8Reader{r: src, max: d.lim.MaxBodyBytes}, 64<<10)
	d.index = -1
	d.in = eventInput{}
}

// errBodyTooLarge stops the fast path at a body over maxFastBody, which
// the streaming path reads on, or over MaxBodyBytes, which it names.
var errBodyTooLarge = errors.New("body too large for the fast path")

// errorReader returns err, as the body did.
type errorReader struct{ err error }

func (r errorReader) Read([]byte) (int, error) { return 0, r.err }

// readAll is the fast path: every event of body, or ok false if any is not
// valid or the body is not a plain object, NDJSON or array of objects.
func (d *Decoder) readAll(body []byte) (events []*Event, ok bool) {
	if !utf8.Valid(body) {
		return nil, false
	}
	p := inputParser{d: d, b: body}
	p.skipSpace()
	array := p.peek() == '['
	if array {
		p.i++
		p.skipSpace()
	}
	for d.index = 0; ; d.index++ {
		if p.peek() != '{' || d.index >= d.lim.MaxBatchEvents {
			return nil, false
		}
		start := p.i
		d.in = eventInput{}
		if err := p.event(); err != nil || p.i-start > d.lim.MaxEventBytes {
			return nil, false
		}
		e, err := d.normalize(&d.in)
		if err != nil {
			return nil, false
		}
		events = append(events, e)
		p.skipSpace()
		switch {
		case array && p.peek() == ',':
			p.i++
			p.skipSpace()
		case array && p.peek() == ']':
			p.i++
			p.skipSpace()
			return events, p.i == len(body)
		case !array && p.i == len(body):
			return events, true
		case array:
			return nil, false
		}
	}
}

// start sniffs the body: '[' is an array, '{' one or more objects.
func (d *Decoder) start() error {
	for {
		c, err := d.br.ReadByte()
		if err == io.EOF {
			return Errorf(EInvalidJSON, "the body is empty; send a JSON object, a JSON array or NDJSON")
		}
		if err != nil {
			return d.wrap(err)
		}
		switch c {
		case ' ', '\t', '\r', '\n':
			continue
		case '[':
			d.array = true
		case '{':
		default:
			return Errorf(EInvalidJSON, "the body must start with '{' or '[', not %q", c)
		}
		d.br.UnreadByte()
		// encoding/json splits the stream into values and checks their
		// syntax; eventReader reads each event from its bytes.
		d.dec = json.NewDecoder(d.br)
		if d.array {
			if _, err := d.dec.Token(); err != nil {
				return d.wrap(err)
			}
		}
		return nil
	}
}

// wrap turns decoding errors into coded errors naming the event index.
func (d *Decoder) wrap(err error) error {
	var ve *Error
	if errors.As(err, &ve) {
		if ve.Index < 0 && ve.Code != ETooLarge {
			ve.Index = max(d.index, 0)
			ve.Message = fmt.Sprintf("event %d: %s", ve.Index, ve.Message)
		}
		return ve
	}
	idx := max(d.index, 0)
	var se *json.SyntaxError
	switch {
	case errors.As(err, &se):
		return &Error{Code: EInvalidJSON, Index: idx, Message: fmt.Sprintf(
			"event %d: malformed JSON at byte %d of the body: %s", idx, se.Offset, strings.TrimPrefix(se.Error(), "json: "))}
	case errors.Is(err, io.ErrUnexpectedEOF):
		return &Error{Code: EInvalidJSON, Index: idx, Message: fmt.Sprintf(
			"event %d: the body ends in the middle of a JSON value", idx)}
	case strings.HasPrefix(err.Error(), "json: "):
		return &Error{Code: EInvalidJSON, Index: idx, Message: fmt.Sprintf("event %d: %s", idx, strings.TrimPrefix(err.Error(), "json: "))}
	}
	return err
}

// eventBlock is the memory of one event the decoder reads: the event, the
// parts its input points to (the actor is copied into the event) and the
// room for its index keys, allocated at once.
type eventBlock struct {
	e        Event
	actor    Actor
	target   Target
	context  Context
	decision Decision
	keys     [numFields]IndexEntry
}

// normalize validates an input event and returns its normalized form.
func (d *Decoder) normalize(in *eventInput) (*Event, error) {
	i := d.index
	var e *Event
	if b := d.block; b != nil {
		// One allocation for the event, its parts and its index keys.
		e, d.block = &b.e, nil
		e.keyBuf = b.keys[:0]
	} else {
		e = &Event{}
	}
	e.ID, e.AgentID, e.TaskID, e.SessionID = in.ID, in.AgentID, in.TaskID, in.SessionID
	e.Connector, e.Tool, e.Status, e.DurationMS = in.Connector, in.Tool, in.Status, in.DurationMS
	if e.ID == "" {
		e.ID = NewEventID(d.now)
	} else if !ValidID(e.ID) {
		return nil, EventError(i, "id", "must be 1 to 128 characters from A-Z a-z 0-9 . _ : @ ~ + = -")
	}

	if in.Time == "" {
		e.Time, e.ServerTime = d.now, true
	} else {
		t, err := time.Parse(time.RFC3339Nano, in.Time)
		if err != nil {
			return nil, EventError(i, "time", "must be an RFC 3339 timestamp such as 2026-06-20T14:32:01Z, got %q", in.Time)
		}
		t = t.UTC()
		if t.Year() < 1970 {
			return nil, EventError(i, "time", "must be after 1970-01-01")
		}
		if t.After(d.now.Add(d.lim.MaxFuture)) {
			return nil, EventError(i, "time", "%s is more than %s in the future; check the sender's clock", in.Time, d.lim.MaxFuture)
		}
		e.Time = t
	}

	if in.Type == "" {
		return nil, EventError(i, "type", "is required, as category.action (e.g. auth.login)")
	}
	e.Type = strings.ToLower(in.Type)
	if !ValidType(e.Type) {
		return nil, EventError(i, "type", "must be category.action with [a-z0-9_] parts separated by dots (e.g. agent.tool_call), at most %d characters, got %q", maxTypeLen, in.Type)
	}

	if in.Actor == nil {
		return nil, EventError(i, "actor", "is required: {\"type\": \"user\", \"id\": …}")
	}
	e.Actor = *in.Actor
	e.Actor.Type = strings.ToLower(e.Actor.Type)
	switch e.Actor.Type {
	case ActorUser, ActorAgent, ActorService, ActorAPIKey, ActorSystem:
	case "":
		return nil, EventError(i, "actor.type", "is required: one of user, agent, service, api_key, system")
	default:
		return nil, EventError(i, "actor.type", "must be one of user, agent, service, api_key, system, got %q", in.Actor.Type)
	}
	if e.Actor.ID == "" && e.Actor.Email == "" && e.Actor.Name == "" {
		return nil, EventError(i, "actor", "needs at least one of id, email, name")
	}
	e.Target = in.Target // the reader's own: nothing else points at it
	if c := in.Context; c != nil {
		e.Context = c
		if c.IP != "" {
			a, err := netip.ParseAddr(c.IP)
			if err != nil || a.Zone() != "" {
				return nil, EventError(i, "context.ip", "must be an IPv4 or IPv6 address, got %q", c.IP)
			}
			// The address as it is written back: most are already, and
			// keep their string.
			var buf [64]byte
			if a = a.Unmap(); string(a.AppendTo(buf[:0])) != c.IP {
				c.IP = a.String()
			}
		}
	}
	for _, f := range [...]struct {
		name string
		v    string
		max  int
	}{
		{"actor.id", e.Actor.ID, maxIDLen}, {"actor.email", e.Actor.Email, maxEmailLen},
		{"actor.name", e.Actor.Name, maxNameLen}, {"agent_id", e.AgentID, maxIDLen},
		{"task_id", e.TaskID, maxIDLen}, {"session_id", e.SessionID, maxIDLen},
		{"connector", e.Connector, maxIDLen}, {"tool", e.Tool, maxIDLen},
		{"target.type", fieldOf(e.Target, func(t *Target) string { return t.Type }), maxIDLen},
		{"target.id", fieldOf(e.Target, func(t *Target) string { return t.ID }), maxIDLen},
		{"target.name", fieldOf(e.Target, func(t *Target) string { return t.Name }), maxNameLen},
		{"context.team_id", fieldOf(e.Context, func(c *Context) string { return c.TeamID }), maxIDLen},
		{"context.user_agent", fieldOf(e.Context, func(c *Context) string { return c.UserAgent }), maxNameLen},
		{"context.request_id", fieldOf(e.Context, func(c *Context) string { return c.RequestID }), maxIDLen},
	} {
		if len(f.v) > f.max {
			return nil, EventError(i, f.name, "is %d bytes; the limit is %d", len(f.v), f.max)
		}
	}

	switch o := strings.ToLower(in.Outcome); o {
	case "", OutcomeSuccess, OutcomeFailure:
		e.Outcome = o
	default:
		return nil, EventError(i, "outcome", "must be success or failure, got %q", in.Outcome)
	}
	if e.DurationMS != nil && *e.DurationMS < 0 {
		return nil, EventError(i, "duration_ms", "must not be negative")
	}
	if in.Decision != nil {
		dec := in.Decision
		sent := dec.Action
		dec.Action = strings.ToLower(sent)
		switch dec.Action {
		case DecisionAllowed, DecisionBlocked, DecisionRedacted:
		default:
			return nil, EventError(i, "decision.action", "must be allowed, blocked or redacted, got %q", sent)
		}
		if len(dec.Policy) > maxIDLen {
			return nil, EventError(i, "decision.policy", "is %d bytes; the limit is %d", len(dec.Policy), maxIDLen)
		}
		if len(dec.Reason) > maxReasonLen {
			return nil, EventError(i, "decision.reason", "is %d bytes; the limit is %d", len(dec.Reason), maxReasonLen)
		}
		e.Decision = dec
	}
	e.Content = in.Content // canonical already
	return e, nil
}

func fieldOf[T any](p *T, get func(*T) string) string {
	if p == nil {
		return ""
	}
	return get(p)
}

// ValidType reports whether t is a well-formed event type: lowercase
// [a-z0-9_] parts, at least two, separated by single dots.
func ValidType(t string) bool {
	if len(t) == 0 || len(t) > maxTypeLen {
		return false
	}
	dots, prev := 0, byte('.')
	for i := 0; i < len(t); i++ {
		c := t[i]
		switch {
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9', c == '_':
		case c == '.':
			if prev == '.' {
				return false
			}
			dots++
		default:
			return false
		}
		prev = c
	}
	return dots > 0 && prev != '.'
}

// limitedUTF8Reader enforces the body limit and rejects invalid UTF-8 as
// bytes stream through, so no event with either problem is ever decoded.
type limitedUTF8Reader struct {
	r       io.Reader
	max     int64
	n       int64
	pending []byte // an incomplete UTF-8 sequence at the end of the last read
}

func (l *limitedUTF8Reader) Read(p []byte) (int, error) {
	n, err := l.r.Read(p)
	if n > 0 {
		l.n += int64(n)
		if l.max > 0 && l.n > l.max {
			return 0, &Error{Code: ETooLarge, Index: -1, Message: fmt.Sprintf(
				"the body is over %d bytes (after decompression); split it into smaller requests", l.max)}
		}
		if verr := l.check(p[:n], err == io.EOF); verr != nil {
			return 0, verr
		}
	} else if err == io.EOF && len(l.pending) > 0 {
		return 0, l.invalid(l.n - int64(len(l.pending)))
	}
	return n, err
}

func (l *limitedUTF8Reader) check(p []byte, eof bool) error {
	base := l.n - int64(len(p))
	if len(l.pending) > 0 {
		// Complete the sequence left over from the previous read.
		need := 4 - len(l.pending)
		joined := append(append([]byte(nil), l.pending...), p[:min(need, len(p))]...)
		r, size := utf8.DecodeRune(joined)
		if r == utf8.RuneError && size <= 1 {
			if !utf8.FullRune(joined) && !eof && len(p) < need {
				l.pending = joined
				return nil
			}
			return l.invalid(base - int64(len(l.pending)))
		}
		p = p[size-len(l.pending):]
		base += int64(size - len(l.pending))
		l.pending = l.pending[:0]
	}
	// Fast path: ASCII and complete sequences.
	for i := 0; i < len(p); {
		if p[i] < utf8.RuneSelf {
			i++
			continue
		}
		r, size := utf8.DecodeRune(p[i:])
		if r == utf8.RuneError && size <= 1 {
			if !eof && !utf8.FullRune(p[i:]) {
				l.pending = append(l.pending[:0], p[i:]...)
				return nil
			}
			return l.invalid(base + int64(i))
		}
		i += size
	}
	return nil
}

func (l *limitedUTF8Reader) invalid(off int64) error {
	return &Error{Code: EInvalidJSON, Index: -1, Message: fmt.Sprintf("invalid UTF-8 at byte %d of the body; events must be UTF-8", off)}
}

// MarshalInput encodes e as POST /api/v1/events takes it (the fields a
// client sends; no seq, received_at or digest, and no time the server
// stamped).
func MarshalInput(e *Event) ([]byte, error) {
	in := eventInput{ID: e.ID, Type: e.Type, Actor: &e.Actor, AgentID: e.AgentID, TaskID: e.TaskID, SessionID: e.SessionID,
		Connector: e.Connector, Tool: e.Tool, Target: e.Target, Context: e.Context, Outcome: e.Outcome,
		Status: e.Status, DurationMS: e.DurationMS, Decision: e.Decision, Content: e.Content}
	if !e.Time.IsZero() && !e.ServerTime {
		in.Time = e.Time.UTC().Format(time.RFC3339Nano)
	}
	return json.Marshal(&in)
}
