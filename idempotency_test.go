package veritrail

import (
	"testing"
	"time"
)

// TestSameAsStored tells retries from new events with a reused id, with
// the stored content present, removed, or never sent.
func TestSameAsStored(t *testing.T) {
	at := time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)
	sent := func(content string) *Event {
		e := &Event{ID: "e1", Time: at, Type: "a.b", Actor: Actor{Type: "user", ID: "u"}}
		if content != "" {
			e.Content = []byte(content)
		}
		return e
	}
	store := func(e *Event) (env, salt []byte) {
		c := *e
		c.Seq, c.ReceivedAt = 9, at.Add(time.Second)
		c.Prepare()
		return AppendEnvelope(nil, &c), c.ContentSalt
	}
	withContent, salt := store(sent(`{"a":1}`))
	without, _ := store(sent(""))
	for _, tc := range []struct {
		name      string
		candidate *Event
		env, salt []byte
		want      bool
	}{
		{"retry", sent(`{"a":1}`), withContent, salt, true},
		{"other content", sent(`{"a":2}`), withContent, salt, false},
		{"content dropped", sent(""), withContent, salt, false},
		{"content removed, retry", sent(`{"a":1}`), withContent, nil, true},
		{"content removed, retry without", sent(""), withContent, nil, false},
		{"retry without content", sent(""), without, nil, true},
		{"content added", sent(`{"a":1}`), without, nil, false},
	} {
		got, err := SameAsStored(tc.candidate, tc.env, tc.salt)
		if err != nil || got != tc.want {
			t.Errorf("%s: got %v %v, want %v", tc.name, got, err, tc.want)
		}
	}
}
