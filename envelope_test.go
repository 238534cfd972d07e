package veritrail

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

func TestEnvelopeRoundTrip(t *testing.T) {
	st, d := int64(-32601), int64(0)
	e := &Event{
		ID: "x", Seq: 7, Type: "agent.tool_call",
		Actor:   Actor{Type: "agent", ID: "a\"b", Name: "Ünïcode \n name"},
		Target:  &Target{ID: "t"},
		Context: &Context{IP: "2001:db8::1"},
		Status:  &st, DurationMS: &d,
		Decision:      &Decision{Action: "blocked", Reason: "<script>"},
		ContentDigest: strings.Repeat("ab", 32),
	}
	b := AppendEnvelope(nil, e)
	back, err := CheckEnvelope(b)
	if err != nil {
		t.Fatalf("%s: %v", b, err)
	}
	if string(AppendEnvelope(nil, back)) != string(b) {
		t.Fatalf("round trip changed the bytes")
	}
	if !strings.Contains(string(b), `"reason":"<script>"`) {
		t.Fatalf("HTML characters must not be escaped: %s", b)
	}
	// An empty target or context is omitted, not written as {}.
	e2 := &Event{ID: "y", Type: "a.b", Actor: Actor{Type: "user", ID: "u"}, Target: &Target{}, Context: &Context{}}
	if s := string(AppendEnvelope(nil, e2)); strings.Contains(s, "target") || strings.Contains(s, "context") {
		t.Fatalf("empty members written: %s", s)
	}
}

// canonicalEnvelope is a canonical envelope the table tests spell
// differently.
const canonicalEnvelope = `{"id":"x","seq":7,"time":"2026-01-02T03:04:05.5Z","received_at":"2026-01-02T03:04:06Z","type":"a.b",` +
	`"actor":{"type":"user","id":"u","name":"N \"q\""},"target":{"id":"t"},"status":-1,"decision":{"action":"blocked"},"content_digest":"ab"}`

// TestCheckEnvelope: the canonical bytes pass; every other spelling of the
// same event is refused, as not canonical when it reads as an envelope.
func TestCheckEnvelope(t *testing.T) {
	if _, err := CheckEnvelope([]byte(canonicalEnvelope)); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, old, new string
		canonical      bool // whether the error is ErrNotCanonical (else a scan error)
	}{
		{"space", `{"id":"x",`, `{ "id":"x",`, false},
		{"order", `"id":"x","seq":7,`, `"seq":7,"id":"x",`, true},
		{"escaped letter", `"type":"a.b"`, `"type":"a\u002eb"`, true},
		{"escaped slash", `"id":"u"`, `"id":"\u0075"`, true},
		{"quote escaped as \\u", `\"q\"`, `\u0022q\"`, true},
		{"trailing zero", `05.5Z`, `05.50Z`, true},
		{"fraction of zero", `06Z`, `06.0Z`, true},
		{"minus zero", `"status":-1`, `"status":-0`, true},
		{"empty target", `"target":{"id":"t"}`, `"target":{"id":""}`, true},
		{"empty member", `"content_digest":"ab"`, `"content_digest":"ab","tool":""`, true},
		{"nested order", `"type":"user","id":"u"`, `"id":"u","type":"user"`, true},
		{"offset time", `05.5Z`, `05.5+00:00`, false},
		{"lower-case t", `02T03:04:06Z`, `02t03:04:06Z`, false},
		{"duplicate", `"type":"a.b",`, `"type":"a.b","type":"a.b",`, false},
		{"unknown member", `"type":"a.b",`, `"type":"a.b","extra":"x",`, false},
		{"upper-case key", `"type":"a.b",`, `"Type":"a.b",`, false},
		{"escaped key", `"type":"a.b",`, `"typ\u0065":"a.b",`, false},
		{"empty object", `"target":{"id":"t"}`, `"target":{}`, false},
		{"float", `"status":-1`, `"status":-1.0`, false},
		{"string seq", `"seq":7`, `"seq":"7"`, false},
		{"null", `"content_digest":"ab"`, `"content_digest":null`, false},
		{"no seq", `"seq":7,`, ``, false},
		{"no received_at", `"received_at":"2026-01-02T03:04:06Z",`, ``, false},
		{"no actor type", `"type":"user",`, ``, false},
		{"trailing data", `"ab"}`, `"ab"} `, false},
		{"lone surrogate", `"id":"u"`, `"id":"\ud800"`, false},
		{"raw control", `"id":"u"`, "\"id\":\"\x01\"", false},
		{"invalid UTF-8", `"id":"u"`, "\"id\":\"\xff\"", false},
		{"February 30", `2026-01-02T03:04:06Z`, `2026-02-30T03:04:06Z`, false},
	} {
		b := strings.Replace(canonicalEnvelope, tc.old, tc.new, 1)
		if b == canonicalEnvelope {
			t.Fatalf("%s: nothing replaced", tc.name)
		}
		_, err := CheckEnvelope([]byte(b))
		if err == nil {
			t.Errorf("%s: %s accepted", tc.name, b)
			continue
		}
		if errors.Is(err, ErrNotCanonical) != tc.canonical {
			t.Errorf("%s: %v (not canonical: %v, want %v)", tc.name, err, errors.Is(err, ErrNotCanonical), tc.canonical)
		}
	}
}

func TestScanEnvelope(t *testing.T) {
	env := []byte(canonicalEnvelope)
	var got []string
	s := ScanEnvelope(env)
	for s.Next() {
		m := s.Member()
		if string(env[s.Offset():s.Offset()+len(s.Raw())]) != string(s.Raw()) {
			t.Fatalf("%s: offset %d is not where %q is", m, s.Offset(), s.Raw())
		}
		v := s.Text()
		if m.IsInt() {
			v = fmt.Sprint(s.Int())
		}
		got = append(got, fmt.Sprintf("%s=%s/%v", m, v, s.Escaped()))
	}
	if err := s.Err(); err != nil {
		t.Fatal(err)
	}
	want := []string{"id=x/false", "seq=7/false", "time=2026-01-02T03:04:05.5Z/false", "received_at=2026-01-02T03:04:06Z/false",
		"type=a.b/false", "actor.type=user/false", "actor.id=u/false", `actor.name=N "q"/true`, "target.id=t/false",
		"status=-1/false", "decision.action=blocked/false", "content_digest=ab/false"}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got  %q\nwant %q", got, want)
	}
	if s.Next() || s.Err() != nil {
		t.Fatal("Next after the end")
	}
	// A member may be read before the fault that ends the scan.
	s = ScanEnvelope([]byte(`{"id":"x","seq":7,"seq":8}`))
	if !s.Next() || !s.Next() || s.Int() != 7 || s.Next() || s.Err() == nil || !strings.Contains(s.Err().Error(), "seq appears twice") {
		t.Fatalf("duplicate: %v", s.Err())
	}
	for _, bad := range []string{"", "{}", "[]", `{"id":"x"`, `{"":{"id":"x"}}`, `{"actor":{"actor":{"type":"x"}}}`, `{"id":1}`, `{"seq":"1"}`} {
		s := ScanEnvelope([]byte(bad))
		for s.Next() {
		}
		if s.Err() == nil {
			t.Errorf("%q accepted", bad)
		}
	}
	if err := (&EnvelopeScanner{}).Err(); err == nil {
		t.Error("an unfinished scan has no error")
	}
}

func TestAppendEventJSON(t *testing.T) {
	env := []byte(`{"id":"x","seq":0}`)
	got := AppendEventJSON(nil, env, []byte(`{"a":1}`), []byte{1, 2, 3})
	want := `{"id":"x","seq":0,"content":{"a":1},"content_salt":"AQID"}`
	if string(got) != want {
		t.Fatalf("got %s", got)
	}
	if string(AppendEventJSON(nil, env, nil, nil)) != string(env) {
		t.Fatal("without content the envelope must be unchanged")
	}
}

// envelopeJSON is the reflection-based reference reading of an envelope
// the fuzz tests hold the scanner to.
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

func parseEnvelopeJSON(b []byte) (*Event, error) {
	var j envelopeJSON
	if err := json.Unmarshal(b, &j); err != nil {
		return nil, err
	}
	if j.Seq == nil {
		return nil, errors.New("no seq")
	}
	return &Event{ID: j.ID, Seq: *j.Seq, Time: j.Time.UTC(), ReceivedAt: j.ReceivedAt.UTC(), Type: j.Type, Actor: j.Actor,
		AgentID: j.AgentID, TaskID: j.TaskID, SessionID: j.SessionID, Connector: j.Connector, Tool: j.Tool, Target: j.Target,
		Context: j.Context, Outcome: j.Outcome, Status: j.Status, DurationMS: j.DurationMS, Decision: j.Decision,
		ContentDigest: j.ContentDigest}, nil
}

// envelopeSeeds are the fuzz tests' starting points.
func envelopeSeeds(f *testing.F) {
	st := int64(-32601)
	f.Add([]byte(canonicalEnvelope))
	f.Add(AppendEnvelope(nil, &Event{ID: "a\"b", Seq: 3, Type: "a.b", Actor: Actor{Type: "user", ID: "é\u2028"}, Status: &st,
		Target: &Target{ID: "t"}, Context: &Context{IP: "::1"}, Decision: &Decision{Action: "blocked"}, ContentDigest: "ab"}))
	f.Add(AppendEnvelope(nil, &Event{ID: "a", Seq: 3, Time: time.Date(2026, 2, 3, 4, 5, 6, 7000, time.UTC), Type: "a.b",
		Actor: Actor{Type: "user", ID: "u", Email: "Mixed@Case.COM", Name: "n"}, Status: &st, AgentID: "ag", TaskID: "t",
		SessionID: "s", Connector: "c", Tool: "to", Outcome: "failure",
		Target: &Target{ID: "t", Type: "board", Name: "x"}, Context: &Context{IP: "10.0.0.1", TeamID: "tm", UserAgent: "ua", RequestID: "r"},
		Decision: &Decision{Action: "blocked", Policy: "p", Reason: "why"}, ContentDigest: "ab"}))
	f.Add(AppendEnvelope(nil, &Event{ID: "b", Time: time.Unix(0, 0).UTC(), Type: "x.y", Actor: Actor{Type: "agent", Email: "Ü@x"}, Context: &Context{IP: "not an ip"}}))
	f.Add([]byte(`{"id":"x","seq":1,"time":"2026-01-01T00:00:00Z","received_at":"2026-01-01T00:00:00.5Z","type":"a.b","actor":{"type":"user","name":"\ud83d\ude00\n","email":"A\u0042@x"}}`))
	f.Add([]byte(`{"id":"x","seq":1,"time":"2026-02-30T00:00:00Z","received_at":"x","type":"a.b","actor":{"type":"user","id":"u"}}`))
	// A lone surrogate before another escape: encoding/json reads U+FFFD
	// and then "A"; a parser that pairs them blindly loses the "A".
	f.Add([]byte(`{"id":"x","seq":1,"time":"2026-01-01T00:00:00Z","received_at":"2026-01-01T00:00:00Z","type":"a.b","actor":{"type":"user","name":"\ud800\u0041"}}`))
	// A repeated object: encoding/json decodes into the object it made.
	f.Add([]byte(`{"id":"x","seq":1,"time":"2026-01-01T00:00:00Z","received_at":"2026-01-01T00:00:00Z","type":"a.b","actor":{"type":"user"},"target":{"id":"t"},"target":{"name":"n"}}`))
	// Top-level members nested under an empty key are not the envelope's.
	f.Add([]byte(`{"":{"id":"x","seq":1,"time":"2026-01-01T00:00:00Z","received_at":"2026-01-01T00:00:00Z","type":"a.b"}}`))
}

// FuzzParseEnvelope holds ParseEnvelope (the scanner) to encoding/json on
// everything it accepts, ParseEnvelopeString to ParseEnvelope, and
// CheckEnvelope to the canonical writer: what it accepts, AppendEnvelope
// writes again byte for byte.
func FuzzParseEnvelope(f *testing.F) {
	envelopeSeeds(f)
	f.Fuzz(func(t *testing.T, b []byte) {
		e, err := ParseEnvelope(b)
		es, serr := ParseEnvelopeString(string(b))
		if (err == nil) != (serr == nil) || err == nil && string(AppendEnvelope(nil, e)) != string(AppendEnvelope(nil, es)) {
			t.Fatalf("ParseEnvelopeString disagrees with ParseEnvelope on %q: %v, %v", b, err, serr)
		}
		if err != nil {
			if _, cerr := CheckEnvelope(b); cerr == nil {
				t.Fatalf("CheckEnvelope accepts what ParseEnvelope refuses (%v): %q", err, b)
			}
			return
		}
		ref, err := parseEnvelopeJSON(b)
		if err != nil {
			t.Fatalf("ParseEnvelope accepted what encoding/json refuses (%v): %q", err, b)
		}
		again := AppendEnvelope(nil, e)
		if string(again) != string(AppendEnvelope(nil, ref)) {
			t.Fatalf("parsers disagree on %q", b)
		}
		_, cerr := CheckEnvelope(b)
		if (cerr == nil) != (string(again) == string(b)) {
			t.Fatalf("CheckEnvelope says %v for %q, rewritten as %q", cerr, b, again)
		}
		var r EnvelopeReader
		str := string(b)
		if _, err := r.ParseString(str); err != nil {
			t.Fatalf("EnvelopeReader refuses what ParseEnvelope reads (%v): %q", err, b)
		}
		if cerr != nil && !errors.Is(cerr, ErrNotCanonical) {
			t.Fatalf("a parsed envelope is refused for another reason than its form: %v", cerr)
		}
		if !utf8.Valid(again) {
			t.Fatalf("invalid UTF-8 written for %q", b)
		}
		// The writer's output is canonical: a fixed point.
		if _, err := CheckEnvelope(again); err != nil {
			t.Fatalf("AppendEnvelope wrote a non-canonical %q: %v", again, err)
		}
	})
}

// FuzzScanEnvelopeIndex holds the allocation-free index scanner to
// ParseEnvelope and IndexKeys, and the full-text words to the reading of
// the envelope as plain JSON that stores indexed before the scanner.
func FuzzScanEnvelopeIndex(f *testing.F) {
	envelopeSeeds(f)
	f.Fuzz(func(t *testing.T, env []byte) {
		got := map[string]bool{}
		id, ts, ok := ScanEnvelopeIndex(env, func(fl Field, k []byte) { got[fmt.Sprint(fl)+"="+string(k)] = true })
		e, err := ParseEnvelope(env)
		if !ok {
			if err == nil && !idEscaped(env) {
				t.Fatalf("scanner refused what ParseEnvelope reads: %q", env)
			}
			return
		}
		if err != nil {
			t.Fatalf("scanner accepted what ParseEnvelope refuses (%v): %q", err, env)
		}
		if string(id) != e.ID || ts != e.Time.UnixNano() {
			t.Fatalf("id/time differ: %q %d vs %q %d for %q", id, ts, e.ID, e.Time.UnixNano(), env)
		}
		want := map[string]bool{}
		for _, ie := range e.IndexKeys() {
			want[fmt.Sprint(ie.Field)+"="+ie.Key] = true
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("entries differ for %q:\n got %v\nwant %v", env, got, want)
		}
		if _, err := CheckEnvelope(env); err == nil {
			if text, ref := AppendEnvelopeText(nil, env), jsonText(env); string(text) != string(ref) {
				t.Fatalf("words of %q:\n got %q\nwant %q", env, text, ref)
			}
		}
	})
}

func idEscaped(env []byte) bool {
	s := ScanEnvelope(env)
	for s.Next() {
		if s.Member() == MemberID {
			return s.Escaped()
		}
	}
	return false
}

// jsonText is how the full-text words of an envelope were read before the
// scanner: its string values but those of the keys skipped, from the raw
// bytes. Indexes built then must keep meaning the same.
func jsonText(js []byte) []byte {
	skip := map[string]bool{"id": true, "time": true, "received_at": true, "content_digest": true, "request_id": true, "user_agent": true}
	var dst, key []byte
	for i := 0; i < len(js); {
		if js[i] != '"' {
			i++
			continue
		}
		j := i + 1
		for j < len(js) && js[j] != '"' {
			if js[j] == '\\' {
				j++
			}
			j++
		}
		str := js[i+1 : min(j, len(js))]
		i = j + 1
		if i < len(js) && js[i] == ':' {
			key = str
			continue
		}
		if !skip[string(key)] {
			dst = appendTokens(dst, str, "")
		}
	}
	return dst
}

// TestScanEnvelopeIndexAllocs holds the index scanner to its allocations:
// none when every key is a slice of the envelope, one buffer otherwise
// (and the string netip parses an address from).
func TestScanEnvelopeIndexAllocs(t *testing.T) {
	at := time.Date(2026, 2, 3, 4, 5, 6, 7000, time.UTC)
	st := int64(404)
	plain := AppendEnvelope(nil, &Event{ID: "a", Seq: 3, Time: at, Type: "a.b", Actor: Actor{Type: "user", ID: "u", Email: "lower@case.example", Name: "O\"Brien"},
		AgentID: "ag", Target: &Target{ID: "t", Type: "board"}, Decision: &Decision{Action: "blocked", Reason: "why"}})
	keyed := AppendEnvelope(nil, &Event{ID: "a", Seq: 3, Time: at, Type: "a.b", Actor: Actor{Type: "user", Email: "Mixed@Case.example"},
		Status: &st, Context: &Context{IP: "10.0.0.1"}, Tool: "say \"hi\""})
	for _, tc := range []struct {
		env  []byte
		max  float64
		keys int
	}{{plain, 0, 8}, {keyed, 2, 6}} {
		n := 0
		allocs := testing.AllocsPerRun(100, func() {
			n = 0
			if _, _, ok := ScanEnvelopeIndex(tc.env, func(Field, []byte) { n++ }); !ok {
				t.Fatalf("refused %s", tc.env)
			}
		})
		if allocs > tc.max || n != tc.keys {
			t.Errorf("%s: %v allocations (at most %v), %d keys (want %d)", tc.env, allocs, tc.max, n, tc.keys)
		}
	}
}

// FuzzEnvelopeRoundTrip writes events with arbitrary text, integers and
// times: the scanner must read back exactly the event written, the bytes
// must pass CheckEnvelope, and the index scanner must agree with IndexKeys.
func FuzzEnvelopeRoundTrip(f *testing.F) {
	f.Add("x", "a.b", "O\"Brien\n\u2028\x00é", "Mixed@Case.example", "10.0.0.1", int64(7), int64(-32601), int64(1767225600123456789))
	f.Add("", "", "", "", "", int64(0), int64(0), int64(0))
	f.Fuzz(func(t *testing.T, id, typ, name, email, ip string, seq, status, ns int64) {
		for _, s := range []string{id, typ, name, email, ip} {
			if !utf8.ValidString(s) {
				return // strings come from validated input or the server
			}
		}
		at := time.Unix(0, ns).UTC()
		e := &Event{ID: id, Seq: seq, Time: at, ReceivedAt: at.Add(time.Millisecond), Type: typ,
			Actor: Actor{Type: name, ID: id, Email: email, Name: name}, Tool: name, Status: &status, DurationMS: &seq,
			Target: &Target{Name: name}, Context: &Context{IP: ip, UserAgent: name}, Decision: &Decision{Reason: name},
			Outcome: typ, ContentDigest: email}
		env := AppendEnvelope(nil, e)
		back, err := CheckEnvelope(env)
		if err != nil {
			t.Fatalf("%q: %v", env, err)
		}
		e.keys = nil
		if name == "" { // empty objects are not written
			e.Target = nil
		}
		if name == "" && ip == "" {
			e.Context = nil
		}
		if !reflect.DeepEqual(back, e) {
			t.Fatalf("read back\n %+v\nwrote\n %+v", back, e)
		}
		got := map[string]bool{}
		gotID, gotNS, ok := ScanEnvelopeIndex(env, func(fl Field, k []byte) { got[fmt.Sprint(fl)+"="+string(k)] = true })
		if !ok && !idEscaped(env) {
			t.Fatalf("index scanner refused %q", env)
		}
		want := map[string]bool{}
		for _, ie := range e.IndexKeys() {
			want[fmt.Sprint(ie.Field)+"="+ie.Key] = true
		}
		if ok && (string(gotID) != id || gotNS != at.UnixNano() || !reflect.DeepEqual(got, want)) {
			t.Fatalf("index of %q:\n got %q %d %v\nwant %q %d %v", env, gotID, gotNS, got, id, at.UnixNano(), want)
		}
	})
}

func TestSplitEventJSON(t *testing.T) {
	env := []byte(canonicalEnvelope)
	content := []byte(`{"a":",\"content\":{}","b":[1,{"c":null}]}`)
	for _, tc := range []struct{ content, salt []byte }{{nil, nil}, {content, nil}, {content, []byte{1, 2, 3}}} {
		ev := AppendEventJSON(nil, env, tc.content, tc.salt)
		e, c, s, err := SplitEventJSON(ev)
		if err != nil || string(e) != string(env) || string(c) != string(tc.content) || string(s) != string(tc.salt) {
			t.Errorf("%s: %s %s %v %v", ev, e, c, s, err)
		}
	}
	for _, bad := range []string{
		`{"id":"x","content":[1]}`, `{"id":"x","content":{"a":1},"content_salt":"!!"}`,
		`{"id":"x","content":{"a":1},"content_salt":"AQID"`, `{"id":"x","content":{"a":1},"x":1}`, `{"id":"x","content":{`,
	} {
		if _, _, _, err := SplitEventJSON([]byte(bad)); err == nil {
			t.Errorf("%s accepted", bad)
		}
	}
}

// FuzzSplitEventJSON: whatever SplitEventJSON takes apart, AppendEventJSON
// puts together again byte for byte.
func FuzzSplitEventJSON(f *testing.F) {
	f.Add(AppendEventJSON(nil, []byte(canonicalEnvelope), []byte(`{"k":"v"}`), []byte{1, 2}))
	f.Add([]byte(`{"id":"x","content":{"a":1},"content_salt":"AQID"}`))
	f.Fuzz(func(t *testing.T, ev []byte) {
		env, content, salt, err := SplitEventJSON(ev)
		if err != nil {
			return
		}
		if again := AppendEventJSON(nil, env, content, salt); string(again) != string(ev) {
			t.Fatalf("%q split into %q %q %q, joined as %q", ev, env, content, salt, again)
		}
	})
}

// TestContentDigestMatches checks the verifier's comparison against
// ContentDigest: equal digests match, anything else (another content or
// salt, upper case, a truncated or empty digest) does not.
func TestContentDigestMatches(t *testing.T) {
	salt, content := []byte("0123456789abcdef"), []byte(`{"prompt":"hello"}`)
	d := ContentDigest(salt, content)
	for _, tc := range []struct {
		salt, content []byte
		digest        string
		want          bool
	}{
		{salt, content, d, true},
		{salt, []byte(`{"prompt":"hellO"}`), d, false},
		{[]byte("0123456789abcdeF"), content, d, false},
		{salt, content, strings.ToUpper(d), false},
		{salt, content, d[:62], false},
		{salt, content, "", false},
		{nil, nil, ContentDigest(nil, nil), true},
	} {
		if got := ContentDigestMatches(tc.salt, tc.content, tc.digest); got != tc.want {
			t.Errorf("ContentDigestMatches(%q, %q, %q) = %v", tc.salt, tc.content, tc.digest, got)
		}
	}
	// The parts hashed in turn are the parts joined, whatever their sizes.
	long := bytes.Repeat([]byte("0123456789"), 700)
	for _, n := range []int{0, 1, 63, 64, 65, 1000, len(long)} {
		env := long[:n]
		if got, want := LeafHash(env), sha256.Sum256(append([]byte{0}, env...)); got != want {
			t.Errorf("LeafHash of %d bytes = %x, want %x", n, got, want)
		}
		if got, want := ContentDigest(salt, env), sha256.Sum256(append(append([]byte{}, salt...), env...)); got != hex.EncodeToString(want[:]) {
			t.Errorf("ContentDigest of %d bytes = %s, want %x", n, got, want)
		}
	}
}

// readerEvents are events of every shape for EnvelopeReader's tests:
// every member set, the fewest, and escaped strings and empty parts.
func readerEvents() []*Event {
	at := time.Date(2026, 2, 3, 4, 5, 6, 7000, time.UTC)
	st, dur := int64(404), int64(12)
	events := []*Event{
		{ID: "a", Seq: 1, Time: at, ReceivedAt: at, Type: "a.b", Actor: Actor{Type: "user", ID: "u", Email: "Mixed@Case.example", Name: "é"}, Status: &st, DurationMS: &dur,
			AgentID: "ag", TaskID: "tk", SessionID: "se", Connector: "co", Tool: "to", Outcome: "failure",
			Target: &Target{ID: "t", Type: "board", Name: "n"}, Context: &Context{IP: "10.0.0.1", TeamID: "tm", UserAgent: "ua", RequestID: "rq"},
			Decision: &Decision{Action: "blocked", Policy: "p", Reason: "r"}, ContentDigest: "ab"},
		{ID: "b", Seq: 2, Time: at, Type: "c.d", Actor: Actor{Type: "agent"}},
		{ID: "c\"\\", Seq: 30, Time: at, Type: "e.f", Actor: Actor{Type: ""}, Tool: "say \"hi\"\n\x01\x1f", Context: &Context{UserAgent: "ua"}, Decision: &Decision{}},
	}
	return events
}

// TestEnvelopeSpellings: the same events spelt other ways that the
// envelope reader still reads (escapes where none is needed, times with
// trailing zeros, numbers with a plus or leading zero, empty members,
// members out of order, a repeated member) are refused as not canonical,
// and the canonical spelling is accepted: verify's canonical check.
func TestEnvelopeSpellings(t *testing.T) {
	mutations := []struct{ from, to string }{
		{`"a"`, `"\u0061"`},
		{`"b"`, `"\u0062"`},
		{`"to"`, `"t\u006f"`},
		{`é`, `\u00e9`},
		{`\"`, `\u0022`},
		{`\n`, `\u000a`},
		{`\u001f`, `\u001F`}, // as long as the canonical escape
		{`.000007Z"`, `.0000070Z"`},
		{`,"seq":1,`, `,"seq":01,`},
		{`,"seq":2,`, `,"seq":+2,`},
		{`"status":404`, `"status":404.0`},
		{`,"tool":"to"`, `,"tool":""`},
		{`,"agent_id":"ag","task_id":"tk"`, `,"task_id":"tk","agent_id":"ag"`},
		{`"ip":"10.0.0.1"`, `"ip":"10.0.0.1","ip":"10.0.0.1"`},
		{`{"type":"board"`, `{"type":"board","type":"board"`},
		{`"actor":{"type":"agent"}`, `"actor":{"type":"agent","id":""}`},
		{`"actor":{"type":"agent"}`, `"actor":{"type":"agent"},"target":{}`},
		{`}`, `} `},
	}
	var r EnvelopeReader
	refused := 0
	for _, ev := range readerEvents() {
		env := string(AppendEnvelope(nil, ev))
		if _, err := CheckEnvelope([]byte(env)); err != nil {
			t.Fatalf("the canonical envelope %q is refused: %v", env, err)
		}
		for _, mu := range mutations {
			if !strings.Contains(env, mu.from) {
				continue
			}
			c := strings.Replace(env, mu.from, mu.to, 1)
			if _, err := r.ParseString(c); err != nil {
				continue // not read at all: verify reports it unreadable
			}
			if _, err := CheckEnvelope([]byte(c)); !errors.Is(err, ErrNotCanonical) {
				t.Errorf("%q (%s → %s) is read, and CheckEnvelope says %v, want ErrNotCanonical", c, mu.from, mu.to, err)
			}
			refused++
		}
	}
	if refused < 10 {
		t.Errorf("only %d spellings read and refused: the cases test too little", refused)
	}
}

// TestEnvelopeReaderReuse reads events of different shapes one after
// another into one EnvelopeReader: each must come back exactly as written
// (nothing left from the one before, its index keys its own), and reading
// allocates nothing once the reader has its key buffer.
func TestEnvelopeReaderReuse(t *testing.T) {
	events := readerEvents()
	var r EnvelopeReader
	for round := 0; round < 2; round++ {
		for _, want := range events {
			env := AppendEnvelope(nil, want)
			got, err := r.ParseString(string(env))
			if err != nil {
				t.Fatal(err)
			}
			keys := got.IndexKeys()
			fresh, err := ParseEnvelope(env)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(keys, fresh.IndexKeys()) {
				t.Errorf("seq %d: index keys %v, want %v", want.Seq, keys, fresh.IndexKeys())
			}
			back := *got
			back.keys, back.keyBuf, fresh.keys = nil, nil, nil
			if !reflect.DeepEqual(&back, fresh) {
				t.Errorf("seq %d: read back\n %+v\nwant\n %+v", want.Seq, &back, fresh)
			}
		}
	}
	env := string(AppendEnvelope(nil, events[1]))
	if allocs := testing.AllocsPerRun(100, func() {
		e, _ := r.ParseString(env)
		e.IndexKeys()
	}); allocs != 0 {
		t.Errorf("%v allocations per envelope read, want 0", allocs)
	}
}
