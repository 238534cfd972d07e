package veritrail

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strconv"
	"time"
)

// SaltSize is the size of the random salt stored with each event's content.
const SaltSize = 16

// ContentDigest returns hex(SHA-256(salt ‖ content)): the commitment to the
// content that the envelope carries. The salt keeps the digest from
// confirming guesses about content once the content itself is gone.
func ContentDigest(salt, content []byte) string {
	h := sha256.New()
	h.Write(salt)
	h.Write(content)
	var sum [sha256.Size]byte
	return hex.EncodeToString(h.Sum(sum[:0]))
}

// LeafHash returns the RFC 6962 leaf hash of envelope bytes:
// SHA-256(0x00 ‖ envelope).
func LeafHash(envelope []byte) [32]byte {
	h := sha256.New()
	h.Write([]byte{0})
	h.Write(envelope)
	var out [32]byte
	h.Sum(out[:0])
	return out
}

// AppendEnvelope appends the canonical envelope bytes of e to dst.
//
// The encoding MUST stay byte-for-byte stable: stored envelopes are hashed
// into the Merkle tree and verified by recomputing these bytes. It is JSON
// with a fixed member order, empty members omitted, strings in RFC 8785 form
// and times in RFC 3339 UTC with nanoseconds and no trailing zeros. The
// bytes are also the event as the API returns it, without its content.
func AppendEnvelope(dst []byte, e *Event) []byte {
	dst = append(dst, `{"id":`...)
	dst = AppendJSONString(dst, e.ID)
	dst = append(dst, `,"seq":`...)
	dst = strconv.AppendInt(dst, e.Seq, 10)
	dst = append(dst, `,"time":"`...)
	dst = e.Time.UTC().AppendFormat(dst, time.RFC3339Nano)
	dst = append(dst, `","received_at":"`...)
	dst = e.ReceivedAt.UTC().AppendFormat(dst, time.RFC3339Nano)
	dst = append(dst, `","type":`...)
	dst = AppendJSONString(dst, e.Type)
	dst = append(dst, `,"actor":{"type":`...)
	dst = AppendJSONString(dst, e.Actor.Type)
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
		dst = AppendJSONString(dst, d.Action)
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
	return AppendJSONString(dst, value)
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
		dst = AppendJSONString(dst, kv[i+1])
	}
	return dst
}

// envelopeJSON mirrors AppendEnvelope for decoding.
type envelopeJSON struct {
	ID            string    `json:"id"`
	Seq           *int64    `json:"seq"`
	Time          time.Time `json:"time"`
	ReceivedAt    time.Time `json:"received_at"`
	Type          string    `json:"type"`
	Actor         Actor     `json:"actor"`
	AgentID       string    `json:"agent_id"`
	TaskID        string    `json:"task_id"`
	SessionID     string    `json:"session_id"`
	Connector     string    `json:"connector"`
	Tool          string    `json:"tool"`
	Target        *Target   `json:"target"`
	Context       *Context  `json:"context"`
	Outcome       string    `json:"outcome"`
	Status        *int64    `json:"status"`
	DurationMS    *int64    `json:"duration_ms"`
	Decision      *Decision `json:"decision"`
	ContentDigest string    `json:"content_digest"`
}

// ParseEnvelope decodes envelope bytes written by AppendEnvelope. It does not
// check that the bytes are canonical; CheckEnvelope does.
func ParseEnvelope(b []byte) (*Event, error) {
	if e, ok := parseEnvelopeFast(b); ok {
		return e, nil
	}
	var j envelopeJSON
	if err := json.Unmarshal(b, &j); err != nil {
		return nil, fmt.Errorf("envelope: %w", err)
	}
	if j.Seq == nil {
		return nil, fmt.Errorf("envelope: no seq")
	}
	return &Event{
		ID: j.ID, Seq: *j.Seq, Time: j.Time.UTC(), ReceivedAt: j.ReceivedAt.UTC(),
		Type: j.Type, Actor: j.Actor, AgentID: j.AgentID, TaskID: j.TaskID,
		SessionID: j.SessionID, Connector: j.Connector, Tool: j.Tool,
		Target: j.Target, Context: j.Context, Outcome: j.Outcome, Status: j.Status,
		DurationMS: j.DurationMS, Decision: j.Decision, ContentDigest: j.ContentDigest,
	}, nil
}

// CheckEnvelope parses envelope bytes and confirms they are exactly the
// canonical encoding of what they say, so that no two byte strings can stand
// for the same event.
func CheckEnvelope(b []byte) (*Event, error) {
	e, err := ParseEnvelope(b)
	if err != nil {
		return nil, err
	}
	if again := AppendEnvelope(nil, e); string(again) != string(b) {
		return nil, fmt.Errorf("envelope is not in canonical form")
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
