package veritrail

import (
	"bytes"
	"time"
)

// Idempotent ingest: a stored id submitted again with the same event is a
// duplicate; with another event, a conflict. Every store decides with these.
//
// "The same event" is judged on what the client sent: the envelope without
// what the server assigns (seq, received_at, the content's salt) and
// without the time when the server stamped it (Event.ServerTime). A client
// that sends no time and retries after a lost answer sends the same event
// again, though the server would stamp the retry with another time; a
// client that sent a time once and not the other time (or the reverse)
// sent two different events.

// submissionBytes is the envelope of e with everything the server assigns
// blanked and the content committed without salt: two submissions with the
// same ServerTime are the same event iff these bytes are equal. Used in
// memory only.
func submissionBytes(e *Event) []byte {
	c := *e
	c.Seq, c.ReceivedAt, c.ContentDigest = 0, time.Time{}, ""
	if c.ServerTime {
		c.Time = time.Time{}
	}
	if len(e.Content) > 0 {
		c.ContentDigest = ContentDigest(nil, e.Content)
	}
	return AppendEnvelope(nil, &c)
}

// SameSubmission reports whether two submissions are the same event
// (idempotent retries), whatever the server assigned to either.
func SameSubmission(a, b *Event) bool {
	return a.ServerTime == b.ServerTime && bytes.Equal(submissionBytes(a), submissionBytes(b))
}

// SameAsStored reports whether candidate e is the event stored as env with
// content salt salt (nil when the content is gone or there was none);
// serverTime is what the store kept of the stored event's ServerTime.
func SameAsStored(e *Event, env, salt []byte, serverTime bool) (bool, error) {
	if e.ServerTime != serverTime {
		return false, nil
	}
	stored, err := ParseEnvelope(env)
	if err != nil {
		return false, err
	}
	c := *e
	c.Seq, c.ReceivedAt, c.ContentDigest = stored.Seq, stored.ReceivedAt, ""
	if serverTime {
		c.Time = stored.Time
	}
	if len(e.Content) > 0 {
		switch {
		case salt != nil:
			c.ContentDigest = ContentDigest(salt, e.Content)
		case stored.ContentDigest != "":
			// The stored content was removed (retention or erasure): the
			// envelope is all that can still be compared.
			c.ContentDigest = stored.ContentDigest
		default:
			return false, nil // stored without content
		}
	}
	return bytes.Equal(AppendEnvelope(nil, &c), env), nil
}
