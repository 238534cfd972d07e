// Package veritrail holds the domain of Veritrail, a tamper-evident audit log
// for people, services and AI agents: the event model, its canonical
// encoding, queries, access roles, and the interfaces that storage engines
// and transports implement. Implementations live in sub-packages (sqlite/,
// http/, …); this package depends on none of them.
package veritrail

import (
	"crypto/rand"
	"encoding/binary"
	"net/netip"
	"strconv"
	"strings"
	"time"
)

// Actor types accepted in Event.Actor.Type.
const (
	ActorUser    = "user"
	ActorAgent   = "agent"
	ActorService = "service"
	ActorAPIKey  = "api_key"
	ActorSystem  = "system"
)

// Outcomes and decision actions.
const (
	OutcomeSuccess = "success"
	OutcomeFailure = "failure"

	DecisionAllowed  = "allowed"
	DecisionBlocked  = "blocked"
	DecisionRedacted = "redacted"
)

// Actor is who did it.
type Actor struct {
	Type  string `json:"type"`
	ID    string `json:"id,omitempty"`
	Email string `json:"email,omitempty"`
	Name  string `json:"name,omitempty"`
}

// Target is what it was done to.
type Target struct {
	Type string `json:"type,omitempty"`
	ID   string `json:"id,omitempty"`
	Name string `json:"name,omitempty"`
}

// Context is where it came from.
type Context struct {
	TeamID    string `json:"team_id,omitempty"`
	IP        string `json:"ip,omitempty"`
	UserAgent string `json:"user_agent,omitempty"`
	RequestID string `json:"request_id,omitempty"`
}

// Decision is a governance outcome taken on the action.
type Decision struct {
	Action string `json:"action"`
	Policy string `json:"policy,omitempty"`
	Reason string `json:"reason,omitempty"`
}

// Event is one audit record. Everything except Content (and ContentSalt) is
// the envelope: it is encoded canonically by AppendEnvelope, and the RFC 6962
// leaf hash of those bytes is what the organization's Merkle tree commits to.
// Content is stored apart, with its own random salt, and committed to by
// ContentDigest = hex(SHA-256(salt ‖ content)), so it can be dropped by
// retention or erasure while the envelope still verifies.
type Event struct {
	ID   string
	Seq  int64     // position in the organization's log, assigned at commit
	Time time.Time // when it happened (UTC)
	// ServerTime says Time is the server's receive time because the client
	// sent none. It is not in the envelope: stores keep it beside the id,
	// so that a retry without time is judged on what the client sent
	// (SameAsStored) rather than on the time the server stamped.
	ServerTime bool
	ReceivedAt time.Time // when Veritrail committed it (UTC)
	Type       string
	Actor      Actor
	AgentID    string
	TaskID     string
	SessionID  string
	Connector  string
	Tool       string
	Target     *Target
	Context    *Context
	Outcome    string
	Status     *int64
	DurationMS *int64
	Decision   *Decision

	// ContentDigest is the salted digest of Content (hex), empty when the
	// event was submitted without content.
	ContentDigest string

	// Content is the canonical JSON object of the sensitive part (prompts,
	// responses, arguments, bodies, details). Nil when absent, removed, or
	// not visible to the reader.
	Content []byte
	// ContentSalt is the random salt of ContentDigest, set alongside Content.
	ContentSalt []byte

	// keys caches IndexKeys; keyBuf, if not nil, is an empty slice
	// IndexKeys computes them into (EnvelopeReader's, reused).
	keys   []IndexEntry
	keyBuf []IndexEntry

	// envelope is the envelope as committed, when the commit path kept it
	// (KeepEnvelope).
	envelope []byte
}

// KeepEnvelope records env as the event's committed envelope: the bytes
// AppendEnvelope made of it at commit, as the store holds them. Only the
// commit path calls it, once the event is sealed and its seq and receive
// time are set; env MUST NOT change afterwards.
func (e *Event) KeepEnvelope(env []byte) { e.envelope = env }

// Envelope returns the committed envelope the commit path kept, or nil:
// what a subscriber to Commits may forward instead of encoding the event
// again (read only).
func (e *Event) Envelope() []byte { return e.envelope }

// IndexEntry is one indexed value of an event.
type IndexEntry struct {
	Field Field
	Key   string
}

// Prepare does, on the caller's goroutine, the work a store needs that does
// not depend on where the event lands: it draws the content salt, computes
// the content digest, and computes the index keys. Stores call it for events
// that were not prepared; the HTTP handlers prepare events as they decode
// them, so this work runs in parallel instead of on the commit path.
func (e *Event) Prepare() {
	e.SealContent()
	keys := e.keys[:0]
	if keys == nil {
		keys = e.keyBuf
	}
	e.keys = e.computeIndexKeys(keys)
}

// SealContent gives the content its random salt and salted digest unless
// it has them (a salt of the wrong size is drawn again), and clears both
// when there is no content. Cheap once done: stores call it on every event
// they commit, whether or not it was prepared.
func (e *Event) SealContent() {
	switch {
	case len(e.Content) == 0:
		e.ContentSalt, e.ContentDigest = nil, ""
	case len(e.ContentSalt) != SaltSize || e.ContentDigest == "":
		e.ContentSalt = make([]byte, SaltSize)
		rand.Read(e.ContentSalt)
		e.ContentDigest = ContentDigest(e.ContentSalt, e.Content)
	}
}

// IndexKeys returns the (field, key) pairs under which e is indexed, in
// Fields order.
func (e *Event) IndexKeys() []IndexEntry {
	if e.keys == nil {
		e.keys = e.computeIndexKeys(e.keyBuf)
	}
	return e.keys
}

func (e *Event) computeIndexKeys(dst []IndexEntry) []IndexEntry {
	if dst == nil {
		dst = make([]IndexEntry, 0, len(Fields))
	}
	for _, f := range Fields {
		if k, ok := e.IndexKey(f); ok {
			dst = append(dst, IndexEntry{f, k})
		}
	}
	return dst
}

// Category is the part of the type before the first dot.
func (e *Event) Category() string { return Category(e.Type) }

// Category returns the part of an event type before the first dot.
func Category(typ string) string {
	if i := strings.IndexByte(typ, '.'); i >= 0 {
		return typ[:i]
	}
	return typ
}

// Field names an indexed, filterable attribute of an event. The names are
// the query parameters of GET /api/v1/events.
type Field uint8

// Indexed fields. The numeric values are stored in indexes: never renumber.
const (
	FieldType       Field = 1
	FieldActorID    Field = 2
	FieldActorEmail Field = 3
	FieldAgentID    Field = 4
	FieldTaskID     Field = 5
	FieldSessionID  Field = 6
	FieldOutcome    Field = 7
	FieldConnector  Field = 8
	FieldTool       Field = 9
	FieldStatus     Field = 10
	FieldDecision   Field = 11
	FieldIP         Field = 12
	FieldTargetID   Field = 13
	FieldTeamID     Field = 14
	FieldActorType  Field = 15
	FieldTargetType Field = 16
	FieldRequestID  Field = 17
	FieldUserAgent  Field = 18

	// FieldClass is derived, not indexed: the OCSF class of the event's
	// type (ClassOf), keyed by ClassKey. Stores filter on it through their
	// index of types (a class is a set of types).
	FieldClass Field = 19

	numFields = 20
)

// Fields lists every indexed field in a stable order.
var Fields = []Field{
	FieldType, FieldActorID, FieldActorEmail, FieldAgentID, FieldTaskID,
	FieldSessionID, FieldOutcome, FieldConnector, FieldTool, FieldStatus,
	FieldDecision, FieldIP, FieldTargetID, FieldTeamID, FieldActorType, FieldTargetType,
	FieldRequestID, FieldUserAgent,
}

// FilterFields lists every field a query can filter on: the indexed ones
// and the derived class.
var FilterFields = append(Fields[:len(Fields):len(Fields)], FieldClass)

var fieldNames = [numFields]string{
	FieldType: "type", FieldActorID: "actor_id", FieldActorEmail: "actor_email",
	FieldAgentID: "agent_id", FieldTaskID: "task_id", FieldSessionID: "session_id",
	FieldOutcome: "outcome", FieldConnector: "connector", FieldTool: "tool",
	FieldStatus: "status", FieldDecision: "decision", FieldIP: "ip",
	FieldTargetID: "target_id", FieldTeamID: "team_id", FieldActorType: "actor_type",
	FieldTargetType: "target_type", FieldRequestID: "request_id", FieldUserAgent: "user_agent",
	FieldClass: "class",
}

func (f Field) String() string {
	if int(f) < len(fieldNames) && fieldNames[f] != "" {
		return fieldNames[f]
	}
	return "field" + strconv.Itoa(int(f))
}

// FieldByName returns the field with the given query-parameter name.
func FieldByName(name string) (Field, bool) {
	for _, f := range FilterFields {
		if fieldNames[f] == name {
			return f, true
		}
	}
	return 0, false
}

// IndexKey returns the key under which e is indexed for field f, and false
// when e has no value for f. Keys are bytes whose order supports the range
// filters: strings are kept as given except e-mail addresses (lower-cased);
// IP addresses are 16 bytes (IPv4 mapped) so a CIDR is a key range; status
// codes are 8 bytes big-endian with the sign bit flipped so 4xx is a range.
// FieldClass, which no store indexes, is keyed by ClassKey.
func (e *Event) IndexKey(f Field) (string, bool) {
	var v string
	switch f {
	case FieldType:
		v = e.Type
	case FieldActorID:
		v = e.Actor.ID
	case FieldActorEmail:
		if e.Actor.Email == "" {
			return "", false
		}
		return strings.ToLower(e.Actor.Email), true
	case FieldActorType:
		v = e.Actor.Type
	case FieldAgentID:
		v = e.AgentID
	case FieldTaskID:
		v = e.TaskID
	case FieldSessionID:
		v = e.SessionID
	case FieldOutcome:
		v = e.Outcome
	case FieldConnector:
		v = e.Connector
	case FieldTool:
		v = e.Tool
	case FieldStatus:
		if e.Status == nil {
			return "", false
		}
		return StatusKey(*e.Status), true
	case FieldDecision:
		if e.Decision != nil {
			v = e.Decision.Action
		}
	case FieldIP:
		if e.Context == nil || e.Context.IP == "" {
			return "", false
		}
		a, err := netip.ParseAddr(e.Context.IP)
		if err != nil {
			return "", false
		}
		return IPKey(a), true
	case FieldTargetID:
		if e.Target != nil {
			v = e.Target.ID
		}
	case FieldTargetType:
		if e.Target != nil {
			v = e.Target.Type
		}
	case FieldTeamID:
		if e.Context != nil {
			v = e.Context.TeamID
		}
	case FieldRequestID:
		if e.Context != nil {
			v = e.Context.RequestID
		}
	case FieldUserAgent:
		if e.Context != nil {
			v = e.Context.UserAgent
		}
	case FieldClass:
		if e.Type != "" {
			v = ClassKey(ClassOf(e.Type))
		}
	}
	return v, v != ""
}

// StatusKey is the index key of a status code.
func StatusKey(s int64) string {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], statusBits(s))
	return string(b[:])
}

// statusBits flips the sign bit so that keys sort as the codes do.
func statusBits(s int64) uint64 { return uint64(s) ^ (1 << 63) }

// IPKey is the index key of an IP address: its 16-byte form.
func IPKey(a netip.Addr) string {
	b := ipBytes(a)
	return string(b[:])
}

// ipBytes is an address's 16-byte form: IPv4 as ::ffff:a.b.c.d, whether
// written mapped or not.
func ipBytes(a netip.Addr) [16]byte { return a.As16() }
