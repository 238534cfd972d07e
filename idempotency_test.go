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
	// untimed is sent without time: the decoder stamps its own clock.
	untimed := func(content string, now time.Time) *Event {
		e := sent(content)
		e.Time, e.ServerTime = now, true
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
	stamped, stampedSalt := store(untimed(`{"a":1}`, at))
	for _, tc := range []struct {
		name       string
		candidate  *Event
		env, salt  []byte
		serverTime bool
		want       bool
	}{
		{"retry", sent(`{"a":1}`), withContent, salt, false, true},
		{"other content", sent(`{"a":2}`), withContent, salt, false, false},
		{"content dropped", sent(""), withContent, salt, false, false},
		{"content removed, retry", sent(`{"a":1}`), withContent, nil, false, true},
		{"content removed, retry without", sent(""), withContent, nil, false, false},
		{"retry without content", sent(""), without, nil, false, true},
		{"content added", sent(`{"a":1}`), without, nil, false, false},
		{"retry without time", untimed(`{"a":1}`, at.Add(time.Minute)), stamped, stampedSalt, true, true},
		{"retry without time, content removed", untimed(`{"a":1}`, at.Add(time.Minute)), stamped, nil, true, true},
		{"retry without time, other content", untimed(`{"a":2}`, at.Add(time.Minute)), stamped, stampedSalt, true, false},
		{"time added on retry", sent(`{"a":1}`), stamped, stampedSalt, true, false},
		{"time dropped on retry", untimed(`{"a":1}`, at), withContent, salt, false, false},
	} {
		got, err := SameAsStored(tc.candidate, tc.env, tc.salt, tc.serverTime)
		if err != nil || got != tc.want {
			t.Errorf("%s: got %v %v, want %v", tc.name, got, err, tc.want)
		}
	}
}

// TestSameSubmission compares two submissions in memory: a time the
// server stamped is not the client's, so it does not count.
func TestSameSubmission(t *testing.T) {
	at := time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)
	mk := func(serverTime bool, tm time.Time, typ string) *Event {
		return &Event{ID: "e1", Time: tm, ServerTime: serverTime, Type: typ, Actor: Actor{Type: "user", ID: "u"}, Content: []byte(`{"a":1}`)}
	}
	for _, tc := range []struct {
		name string
		a, b *Event
		want bool
	}{
		{"same time sent", mk(false, at, "a.b"), mk(false, at, "a.b"), true},
		{"other time sent", mk(false, at, "a.b"), mk(false, at.Add(time.Second), "a.b"), false},
		{"no time, stamped apart", mk(true, at, "a.b"), mk(true, at.Add(time.Second), "a.b"), true},
		{"no time, other type", mk(true, at, "a.b"), mk(true, at, "a.c"), false},
		{"time once, not the other", mk(false, at, "a.b"), mk(true, at, "a.b"), false},
	} {
		if got := SameSubmission(tc.a, tc.b); got != tc.want {
			t.Errorf("%s: got %v, want %v", tc.name, got, tc.want)
		}
	}
}
