package veritrail

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/veritrail/veritrail/internal/canonjson"
)

var testNow = time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)

func decodeAll(body string, lim Limits) ([]*Event, error) {
	dec := NewDecoder(strings.NewReader(body), lim, testNow)
	var out []*Event
	for {
		e, err := dec.Next()
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return out, err
		}
		out = append(out, e)
	}
}

const okEvent = `{"type":"auth.login","actor":{"type":"user","id":"u1"}}`

func TestDecoderShapes(t *testing.T) {
	for name, body := range map[string]string{
		"object": okEvent,
		"array":  "[" + okEvent + "," + okEvent + "]\n",
		"ndjson": okEvent + "\n" + okEvent + "\n\n" + okEvent,
		"spaces": "\n  " + okEvent + "  \n",
	} {
		evs, err := decodeAll(body, DefaultLimits)
		if err != nil {
			t.Errorf("%s: %v", name, err)
		}
		if len(evs) == 0 || evs[0].Type != "auth.login" || !strings.HasPrefix(evs[0].ID, "evt_") || !evs[0].Time.Equal(testNow) {
			t.Errorf("%s: %+v", name, evs)
		}
	}
}

// TestDecoderBadInput covers every class of bad input: each must be
// refused with its code and a message naming the event and field.
func TestDecoderBadInput(t *testing.T) {
	small := DefaultLimits
	small.MaxEventBytes = 200
	small.MaxBatchEvents = 2
	small.MaxBodyBytes = 1000
	for _, tc := range []struct {
		name, body string
		lim        Limits
		code       string
		index      int
		field      string
		msg        string
	}{
		{"empty body", "", DefaultLimits, EInvalidJSON, -1, "", "empty"},
		{"not json", "hello", DefaultLimits, EInvalidJSON, -1, "", "must start with"},
		{"malformed", `{"type":"a.b",}`, DefaultLimits, EInvalidJSON, 0, "", "malformed JSON"},
		{"truncated", `[` + okEvent + `,{"type":"a.b"`, DefaultLimits, EInvalidJSON, 1, "", "ends in the middle"},
		{"trailing after array", `[` + okEvent + `] x`, DefaultLimits, EInvalidJSON, -1, "", "after the closing"},
		{"array of numbers", `[1]`, DefaultLimits, EInvalidEvent, 0, "", "expected a JSON object"},
		{"wrong type", `{"type":5,"actor":{"type":"user","id":"u"}}`, DefaultLimits, EInvalidEvent, 0, "type", "expected a string"},
		{"wrong nested type", `{"type":"a.b","actor":{"type":"user","id":7}}`, DefaultLimits, EInvalidEvent, 0, "actor.id", "expected a string"},
		{"fractional status", `{"type":"a.b","actor":{"type":"user","id":"u"},"status":200.5}`, DefaultLimits, EInvalidEvent, 0, "status", "integer"},
		{"unknown field", `{"type":"a.b","actor":{"type":"user","id":"u"},"user_id":"x"}`, DefaultLimits, EInvalidEvent, 0, "user_id", "unknown field; the event fields are listed in docs/EVENTS.md"},
		{"missing type", `{"actor":{"type":"user","id":"u"}}`, DefaultLimits, EInvalidEvent, 0, "type", "required"},
		{"malformed type", `{"type":"login","actor":{"type":"user","id":"u"}}`, DefaultLimits, EInvalidEvent, 0, "type", "category.action"},
		{"type with space", `{"type":"auth. login","actor":{"type":"user","id":"u"}}`, DefaultLimits, EInvalidEvent, 0, "type", "category.action"},
		{"type double dot", `{"type":"auth..login","actor":{"type":"user","id":"u"}}`, DefaultLimits, EInvalidEvent, 0, "type", ""},
		{"missing actor", `{"type":"a.b"}`, DefaultLimits, EInvalidEvent, 0, "actor", "required"},
		{"bad actor type", `{"type":"a.b","actor":{"type":"robot","id":"u"}}`, DefaultLimits, EInvalidEvent, 0, "actor.type", "one of"},
		{"anonymous actor", `{"type":"a.b","actor":{"type":"user"}}`, DefaultLimits, EInvalidEvent, 0, "actor", "at least one"},
		{"bad time", `{"type":"a.b","time":"yesterday","actor":{"type":"user","id":"u"}}`, DefaultLimits, EInvalidEvent, 0, "time", "RFC 3339"},
		{"far future", `{"type":"a.b","time":"2026-11-24T12:00:00Z","actor":{"type":"user","id":"u"}}`, DefaultLimits, EInvalidEvent, 0, "time", "future"},
		{"bad outcome", `{"type":"a.b","outcome":"meh","actor":{"type":"user","id":"u"}}`, DefaultLimits, EInvalidEvent, 0, "outcome", ""},
		{"bad decision", `{"type":"a.b","decision":{"action":"maybe"},"actor":{"type":"user","id":"u"}}`, DefaultLimits, EInvalidEvent, 0, "decision.action", ""},
		{"negative duration", `{"type":"a.b","duration_ms":-1,"actor":{"type":"user","id":"u"}}`, DefaultLimits, EInvalidEvent, 0, "duration_ms", ""},
		{"bad ip", `{"type":"a.b","context":{"ip":"999.1.1.1"},"actor":{"type":"user","id":"u"}}`, DefaultLimits, EInvalidEvent, 0, "context.ip", ""},
		{"bad id", `{"id":"a b/c","type":"a.b","actor":{"type":"user","id":"u"}}`, DefaultLimits, EInvalidEvent, 0, "id", ""},
		{"content not object", `{"type":"a.b","content":[1],"actor":{"type":"user","id":"u"}}`, DefaultLimits, EInvalidEvent, 0, "content", "object"},
		{"content duplicate key", `{"type":"a.b","content":{"a":1,"a":2},"actor":{"type":"user","id":"u"}}`, DefaultLimits, EInvalidEvent, 0, "content", "duplicate"},
		{"long field", `{"type":"a.b","actor":{"type":"user","id":"` + strings.Repeat("x", 300) + `"}}`, DefaultLimits, EInvalidEvent, 0, "actor.id", "limit"},
		{"long nested field", `{"type":"a.b","target":{"name":"` + strings.Repeat("x", 1100) + `"},"actor":{"type":"user","id":"u"}}`, DefaultLimits, EInvalidEvent, 0, "target.name", "limit"},
		{"long reason", `{"type":"a.b","decision":{"action":"blocked","reason":"` + strings.Repeat("x", 4100) + `"},"actor":{"type":"user","id":"u"}}`, DefaultLimits, EInvalidEvent, 0, "decision.reason", "limit"},
		{"invalid utf8", "{\"type\":\"a.b\",\"actor\":{\"type\":\"user\",\"id\":\"\xff\xfe\"}}", DefaultLimits, EInvalidJSON, 0, "", "UTF-8"},
		{"invalid utf8 later", okEvent + "\n" + "{\"type\":\"a.b\",\"actor\":{\"type\":\"user\",\"name\":\"ok \xc3\"}}", DefaultLimits, EInvalidJSON, -2, "", "UTF-8"},
		{"oversize event", `{"type":"a.b","actor":{"type":"user","id":"u"},"content":{"x":"` + strings.Repeat("y", 300) + `"}}`, small, ETooLarge, 0, "", "limit is 200 bytes"},
		{"too many events", okEvent + okEvent + okEvent, small, ETooLarge, 2, "", "more than 2 events"},
		{"too many events in array", "[" + okEvent + "," + okEvent + "," + okEvent + "]", small, ETooLarge, 2, "", "more than 2 events"},
		{"oversize body", "[" + strings.Repeat(" ", 1100) + "]", small, ETooLarge, -1, "", "over 1000 bytes"},
		{"second event bad", okEvent + "\n" + `{"type":"A B"}`, DefaultLimits, EInvalidEvent, 1, "type", ""},
		// Strings are read strictly, and the field named.
		{"lone surrogate", `{"type":"a.b","actor":{"type":"user","id":"\ud800"}}`, DefaultLimits, EInvalidEvent, 0, "actor.id", "lone UTF-16 surrogate"},
		{"lone low surrogate", `{"type":"a.b","actor":{"type":"user","id":"u"},"tool":"x\udc00"}`, DefaultLimits, EInvalidEvent, 0, "tool", "lone UTF-16 surrogate"},
		{"unpaired surrogate", `{"type":"a.b","actor":{"type":"user","id":"u"},"target":{"name":"\ud800\u0041"}}`, DefaultLimits, EInvalidEvent, 0, "target.name", "lone UTF-16 surrogate"},
		{"lone surrogate in content", `{"type":"a.b","actor":{"type":"user","id":"u"},"content":{"k":"\udfff"}}`, DefaultLimits, EInvalidEvent, 0, "content", "lone UTF-16 surrogate"},
		{"lone surrogate in a name", `{"type":"a.b","actor":{"type":"user","id":"u","\ud800":1}}`, DefaultLimits, EInvalidEvent, 0, "actor", "lone UTF-16 surrogate"},
		{"second event lone surrogate", okEvent + "\n" + `{"type":"a.b","actor":{"type":"user","id":"u"},"session_id":"\ud83d"}`, DefaultLimits, EInvalidEvent, 1, "session_id", "lone UTF-16 surrogate"},
		// Each field once, spelt as documented.
		{"repeated field", `{"type":"a.b","actor":{"type":"user","id":"u"},"type":"c.d"}`, DefaultLimits, EInvalidEvent, 0, "type", "twice"},
		{"repeated nested field", `{"type":"a.b","actor":{"type":"user","id":"u","id":"v"}}`, DefaultLimits, EInvalidEvent, 0, "actor.id", "twice"},
		{"repeated object", `{"type":"a.b","actor":{"type":"user","id":"u"},"actor":null}`, DefaultLimits, EInvalidEvent, 0, "actor", "twice"},
		{"upper-case field", `{"Type":"a.b","actor":{"type":"user","id":"u"}}`, DefaultLimits, EInvalidEvent, 0, "Type", "unknown field"},
		{"unknown nested field", `{"type":"a.b","actor":{"type":"user","id":"u","uid":"x"}}`, DefaultLimits, EInvalidEvent, 0, "actor.uid", "unknown field"},
		{"actor not an object", `{"type":"a.b","actor":"u"}`, DefaultLimits, EInvalidEvent, 0, "actor", "expected an object, got string"},
		{"status as string", `{"type":"a.b","actor":{"type":"user","id":"u"},"status":"200"}`, DefaultLimits, EInvalidEvent, 0, "status", "expected an integer, got string"},
		{"status too large", `{"type":"a.b","actor":{"type":"user","id":"u"},"status":9223372036854775808}`, DefaultLimits, EInvalidEvent, 0, "status", "integer"},
		{"content null string", `{"type":"a.b","actor":{"type":"user","id":"u"},"content":"x"}`, DefaultLimits, EInvalidEvent, 0, "content", "object"},
		{"null event", `[null]`, DefaultLimits, EInvalidEvent, 0, "", "expected a JSON object, got null"},
	} {
		_, err := decodeAll(tc.body, tc.lim)
		var ve *Error
		if !errors.As(err, &ve) {
			t.Errorf("%s: got %v, want a coded error", tc.name, err)
			continue
		}
		if ve.Code != tc.code {
			t.Errorf("%s: code %s, want %s (%s)", tc.name, ve.Code, tc.code, ve.Message)
		}
		if tc.index != -2 && ve.Index != tc.index {
			t.Errorf("%s: index %d, want %d (%s)", tc.name, ve.Index, tc.index, ve.Message)
		}
		if ve.Field != tc.field {
			t.Errorf("%s: field %q, want %q (%s)", tc.name, ve.Field, tc.field, ve.Message)
		}
		if !strings.Contains(ve.Message, tc.msg) {
			t.Errorf("%s: message %q lacks %q", tc.name, ve.Message, tc.msg)
		}
		if ve.Index >= 0 && !strings.Contains(ve.Message, "event ") {
			t.Errorf("%s: message %q does not name the event", tc.name, ve.Message)
		}
	}
}

// TestUnknownFieldDocExists keeps the unknown-field error pointing at a
// document that is in the repository.
func TestUnknownFieldDocExists(t *testing.T) {
	_, err := decodeAll(`{"type":"a.b","actor":{"type":"user","id":"u"},"timestamp":"x"}`, DefaultLimits)
	if err == nil {
		t.Fatal("an unknown field was accepted")
	}
	_, rest, ok := strings.Cut(err.Error(), "docs/")
	doc, _, _ := strings.Cut(rest, " ")
	doc = strings.TrimRight(doc, ",.;")
	if !ok || !strings.HasSuffix(doc, ".md") {
		t.Fatalf("%q points at no document under docs/", err)
	}
	if _, err := os.Stat("docs/" + doc); err != nil {
		t.Errorf("the unknown-field error points at a missing document: %v", err)
	}
}

// TestDecoderLargeBodyStreamed: a body over maxFastBody is not held whole
// but streamed, with the same events, and the same error naming the event
// and field (or the byte) as the streaming path gives.
func TestDecoderLargeBodyStreamed(t *testing.T) {
	var valid bytes.Buffer
	for valid.Len() <= maxFastBody {
		valid.WriteString(okEvent + "\n")
	}
	n := bytes.Count(valid.Bytes(), []byte("\n"))
	cases := []struct {
		name string
		body string
		want string // the error, "" for none
	}{
		{name: "valid", body: valid.String()},
		{name: "a bad field past the first MiB", body: valid.String() + `{"type":"a.b","actor":{"type":"user","id":"u"},"status":"x"}`,
			want: fmt.Sprintf("event %d: ", n)},
		{name: "malformed past the first MiB", body: valid.String() + `{"type":"a.b",`, want: fmt.Sprintf("event %d: the body ends", n)},
		{name: "malformed at the start", body: `{"type":` + strings.Repeat(" ", maxFastBody) + `]`, want: "event 0: malformed JSON at byte"},
	}
	lim := DefaultLimits
	lim.MaxBatchEvents = n + 1
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			d := NewDecoder(strings.NewReader(tc.body), lim, testNow)
			var got int
			var err error
			for {
				var e *Event
				if e, err = d.Next(); err != nil {
					break
				}
				if d.fast != nil {
					t.Fatal("the fast path held a body over maxFastBody")
				}
				if e.Type != "auth.login" {
					t.Fatalf("event %d: %+v", got, e)
				}
				got++
			}
			s := NewDecoder(nil, lim, testNow)
			s.stream(strings.NewReader(tc.body))
			var serr error
			for serr == nil {
				_, serr = s.Next()
			}
			if fmt.Sprint(err) != fmt.Sprint(serr) {
				t.Fatalf("error %v, the streaming path's %v", err, serr)
			}
			if tc.want == "" {
				if !errors.Is(err, io.EOF) || got != n {
					t.Fatalf("%d of %d events, then %v", got, n, err)
				}
				return
			}
			if err == io.EOF || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one containing %q", err, tc.want)
			}
		})
	}
}

// TestDecoderBatchLimitExact accepts exactly MaxBatchEvents events.
func TestDecoderBatchLimitExact(t *testing.T) {
	lim := DefaultLimits
	lim.MaxBatchEvents = 3
	for _, body := range []string{okEvent + okEvent + okEvent, "[" + okEvent + "," + okEvent + "," + okEvent + "]", okEvent + "\n" + okEvent + "\n" + okEvent + "\n"} {
		if evs, err := decodeAll(body, lim); err != nil || len(evs) != 3 {
			t.Errorf("%d events, %v", len(evs), err)
		}
	}
}

// TestDecoderNulls: null stands for an absent field, as it always has.
func TestDecoderNulls(t *testing.T) {
	evs, err := decodeAll(`{"id":null,"time":null,"type":"a.b","actor":{"type":"user","id":"u","name":null},"target":null,
		"context":null,"decision":null,"status":null,"duration_ms":null,"content":null,"tool":null}`, DefaultLimits)
	if err != nil {
		t.Fatal(err)
	}
	e := evs[0]
	if !strings.HasPrefix(e.ID, "evt_") || !e.Time.Equal(testNow) || e.Target != nil || e.Context != nil || e.Decision != nil ||
		e.Status != nil || e.DurationMS != nil || e.Content != nil || e.Actor.Name != "" {
		t.Fatalf("%+v", e)
	}
}

// TestDecoderEscapes: escaped names and values mean what they spell.
func TestDecoderEscapes(t *testing.T) {
	evs, err := decodeAll(`{"typ\u0065":"a.b","actor":{"type":"user","id":"\ud83d\ude00 \"x\"\n\u00e9"}}`, DefaultLimits)
	if err != nil {
		t.Fatal(err)
	}
	if e := evs[0]; e.Type != "a.b" || e.Actor.ID != "😀 \"x\"\né" {
		t.Fatalf("%+v", e)
	}
}

func TestDecoderNormalizes(t *testing.T) {
	evs, err := decodeAll(`{"id":"A-1","type":"Auth.Login","time":"2026-06-20T16:32:01.5+02:00","outcome":"FAILURE",
		"actor":{"type":"USER","email":"X@Example.com"},"context":{"ip":"::ffff:10.0.0.1"},"decision":{"action":"Blocked"},
		"content":{"b":1,"a":{"y":2,"x":"\u00e9"}}}`, DefaultLimits)
	if err != nil {
		t.Fatal(err)
	}
	e := evs[0]
	if e.Type != "auth.login" || e.Outcome != "failure" || e.Actor.Type != "user" || e.Decision.Action != "blocked" ||
		e.Context.IP != "10.0.0.1" || !e.Time.Equal(time.Date(2026, 6, 20, 14, 32, 1, 5e8, time.UTC)) || e.Time.Location() != time.UTC {
		t.Fatalf("not normalized: %+v", e)
	}
	if string(e.Content) != `{"a":{"x":"é","y":2},"b":1}` {
		t.Fatalf("content not canonical: %s", e.Content)
	}
	if e.Actor.Email != "X@Example.com" {
		t.Fatal("e-mail must be kept as sent (the index lower-cases it)")
	}
}

// FuzzDecoder feeds arbitrary bodies: the decoder must never panic, and
// whatever it accepts must encode to a canonical envelope.
func FuzzDecoder(f *testing.F) {
	f.Add([]byte(okEvent))
	f.Add([]byte("[" + okEvent + "]"))
	f.Add([]byte(`{"id":"x","type":"a.b","time":"2026-01-01T00:00:00Z","actor":{"type":"agent","id":"a"},"status":-1,"content":{"k":[1,{"z":null}]}}`))
	f.Add([]byte("{\"type\":\"a.b\",\"actor\":{\"type\":\"user\",\"id\":\"\xff\"}}"))
	f.Add([]byte(`{"type":"a.b","actor":{"type":"user","id":"\ud800"}}`))
	f.Add([]byte(`[{"type":"a.b","actor":{"type":"user","name":null,"email":"\u0041@x"},"target":null,"decision":{"action":"allowed"},"duration_ms":5},{"type":"c.d","actor":{"type":"agent","id":"a"},"id":"a","id":"b"}]`))
	f.Fuzz(func(t *testing.T, body []byte) {
		lim := Limits{MaxEventBytes: 4096, MaxBatchEvents: 50, MaxBodyBytes: 64 << 10, MaxFuture: time.Hour}
		evs, err := decodeAll(string(body), lim)
		if err != nil {
			var ve *Error
			if !errors.As(err, &ve) {
				t.Fatalf("uncoded error %v", err)
			}
			return
		}
		for _, e := range evs {
			env := AppendEnvelope(nil, e)
			if !json.Valid(env) {
				t.Fatalf("invalid envelope %s", env)
			}
			if _, err := CheckEnvelope(env); err != nil {
				t.Fatalf("envelope does not round-trip: %s: %v", env, err)
			}
			if e.Content != nil && !json.Valid(e.Content) {
				t.Fatalf("invalid content %s", e.Content)
			}
		}
	})
}

// FuzzDecoderPaths holds the decoder's fast path (whole body, no
// encoding/json) to its streaming path: the same events, or the same
// error, for any body.
func FuzzDecoderPaths(f *testing.F) {
	f.Add([]byte(okEvent))
	f.Add([]byte(" [ " + okEvent + " , " + okEvent + " ] \n"))
	f.Add([]byte(okEvent + okEvent + "\n\n" + okEvent))
	f.Add([]byte(`{"id":"x","type":"a.b","time":"2026-01-01T00:00:00Z","actor":{"type":"agent","id":"a"},"status":-1,"duration_ms":0,"content":{"k":[1,{"z":null}]}}`))
	f.Add([]byte(`{"type":"a.b","actor":{"type":"user","id":"u"},"status":01}`))
	f.Add([]byte(`{"type":"a.b","actor":{"type":"user","id":"u"},"status":+1}`))
	f.Add([]byte(`[]`))
	f.Add([]byte(`[` + okEvent + `,]`))
	f.Add([]byte(okEvent + `]`))
	f.Add([]byte(`[` + okEvent + `] x`))
	f.Add([]byte(`{"type":"a.b","actor":{"type":"user","id":"u"},"content":{"b":1,"a":[true,false,null,-0.5e+3]}} 7`))
	lim := Limits{MaxEventBytes: 300, MaxBatchEvents: 3, MaxBodyBytes: 2000, MaxFuture: time.Hour}
	read := func(d *Decoder) ([]*Event, error) {
		var out []*Event
		for {
			e, err := d.Next()
			if errors.Is(err, io.EOF) {
				return out, nil
			}
			if err != nil {
				return out, err
			}
			if strings.HasPrefix(e.ID, "evt_") {
				e.ID = "" // drawn at random
			}
			out = append(out, e)
		}
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		fast, ferr := read(NewDecoder(bytes.NewReader(body), lim, testNow))
		d := NewDecoder(nil, lim, testNow)
		d.stream(bytes.NewReader(body))
		slow, serr := read(d)
		if fmt.Sprint(ferr) != fmt.Sprint(serr) {
			t.Fatalf("errors differ on %q:\nfast   %v\nstream %v", body, ferr, serr)
		}
		if serr == nil && !reflect.DeepEqual(fast, slow) {
			t.Fatalf("events differ on %q:\nfast   %+v\nstream %+v", body, fast, slow)
		}
		// A body larger than the fast path holds: streamed on from what
		// the fast path read.
		d = NewDecoder(bytes.NewReader(body), lim, testNow)
		d.fastMax = 40
		big, berr := read(d)
		if fmt.Sprint(berr) != fmt.Sprint(serr) {
			t.Fatalf("errors differ on %q:\nover fastMax %v\nstream       %v", body, berr, serr)
		}
		if serr == nil && !reflect.DeepEqual(big, slow) {
			t.Fatalf("events differ on %q:\nover fastMax %+v\nstream       %+v", body, big, slow)
		}
	})
}

// FuzzEventReader holds the event reader to encoding/json: whatever
// syntactically valid event it accepts, encoding/json reads the same way
// (encoding/json accepts more: names in any case, repeated members, lone
// surrogates as U+FFFD).
func FuzzEventReader(f *testing.F) {
	f.Add([]byte(okEvent))
	f.Add([]byte(`{"id":"x","time":"2026-01-01T00:00:00Z","type":"a.b","actor":{"type":"agent","id":"a","name":null},"status":-1,"duration_ms":0,` +
		`"target":{"type":"t","id":"i","name":"n"},"context":{"team_id":"t","ip":"::1","user_agent":"u","request_id":"r"},` +
		`"decision":{"action":"blocked","policy":"p","reason":"r"},"outcome":"success","agent_id":"a","task_id":"t","session_id":"s",` +
		`"connector":"c","tool":"t","content":{"k":[1,{"z":null}],"a":"\u00e9"}}`))
	f.Add([]byte(` { "typ\u0065" : "a.b" , "actor" : { "type" : "user" , "id" : "\ud83d\ude00" } } `))
	f.Add([]byte(`{"type":"a.b","actor":{"type":"user","id":"\ud800"}}`))
	f.Add([]byte(`{"TYPE":"a.b","type":"c.d","actor":null,"content":null}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		if !json.Valid(b) {
			return // the json.Decoder refuses it before the reader sees it
		}
		d := &Decoder{lim: DefaultLimits}
		if err := (*eventReader)(d).UnmarshalJSON(b); err != nil {
			var ve *Error
			if !errors.As(err, &ve) || ve.Index != 0 {
				t.Fatalf("uncoded error %v", err)
			}
			return
		}
		var ref eventInput
		if err := json.Unmarshal(b, &ref); err != nil {
			t.Fatalf("reader accepted what encoding/json refuses (%v): %q", err, b)
		}
		if c := bytes.TrimSpace(ref.Content); len(c) == 0 || string(c) == "null" {
			ref.Content = nil
		} else {
			ref.Content, _ = canonjson.Append(nil, c)
		}
		if !reflect.DeepEqual(d.in, ref) {
			t.Fatalf("readers disagree on %q:\n got %+v\nwant %+v", b, d.in, ref)
		}
	})
}

// TestEventKey: the member names of events come back without allocating
// (the decoder reads one per member of every event), others as themselves.
func TestEventKey(t *testing.T) {
	names := []string{"id", "time", "type", "actor", "agent_id", "task_id", "session_id", "connector", "tool", "target",
		"context", "outcome", "status", "duration_ms", "decision", "content"}
	names = append(names, actorMembers[:]...)
	names = append(names, targetMembers[:]...)
	names = append(names, contextMembers[:]...)
	names = append(names, decisionMembers[:]...)
	for _, n := range names {
		raw := []byte(n)
		if got := eventKey(raw); got != n {
			t.Errorf("eventKey(%q) = %q", n, got)
		}
		if a := testing.AllocsPerRun(100, func() { _ = eventKey(raw) }); a != 0 {
			t.Errorf("eventKey(%q): %v allocations", n, a)
		}
	}
	for _, n := range []string{"", "Id", "ids", "conten", "contents", "x"} {
		if got := eventKey([]byte(n)); got != n {
			t.Errorf("eventKey(%q) = %q", n, got)
		}
	}
}
