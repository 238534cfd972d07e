package veritrail

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"
	"time"
)

// appendTokensRef is appendTokens done another way: escapes made spaces,
// then strings.FieldsFunc. FuzzAppendTokens holds appendTokens to it.
func appendTokensRef(dst, s []byte, mark string) []byte {
	var plain []byte
	for i := 0; i < len(s); i++ {
		if s[i] != '\\' || i+1 == len(s) {
			plain = append(plain, s[i])
			continue
		}
		plain = append(plain, ' ')
		if s[i+1] == 'u' {
			i += 5
		} else {
			i++
		}
	}
	for _, tok := range strings.FieldsFunc(string(plain), func(r rune) bool { return !IsTokenRune(r) }) {
		dst = append(append(append(dst, mark...), tok...), ' ')
	}
	return dst
}

// FuzzAppendTokens: the tokens are the reference's for any bytes, escapes,
// invalid UTF-8 and marks included.
func FuzzAppendTokens(f *testing.F) {
	for _, s := range []string{"", "Ava Thompson", `a\"b\u00e9c\\d`, "Hürden beim\tOnboarding", "x\\", "\xff\xfeab", "ⅻ½٣", "a\\u12", "mcp-sess-tcgn3vjv0e 192.0.2.103"} {
		f.Add(s, "")
		f.Add(s, "\x01")
	}
	f.Fuzz(func(t *testing.T, s, mark string) {
		got := appendTokens([]byte("pre "), []byte(s), mark)
		want := appendTokensRef([]byte("pre "), []byte(s), mark)
		if string(got) != string(want) {
			t.Fatalf("%q: %q, want %q", s, got, want)
		}
	})
}

// TestAppendEventText: the words of an event's fields are those of its
// envelope, byte for byte, for random events whose every member is set
// or not, with escapes (quotes, backslashes, control characters),
// non-ASCII and invalid UTF-8 in the strings. A member added to the
// envelope's text but not to AppendEventText fails here.
func TestAppendEventText(t *testing.T) {
	rnd := rand.New(rand.NewPCG(5, 6))
	parts := []string{"", "a", "Bob", "x9", " ", "\"", "\\", "\n", "\x01", "\x7f", "é", "Émile", "ß", "\u2028", "-", ".", "日本", "\ue000"}
	str := func() string {
		if rnd.IntN(5) == 0 {
			return ""
		}
		var b strings.Builder
		for range rnd.IntN(6) {
			if rnd.IntN(200) == 0 { // invalid UTF-8 in about a quarter of the events
				b.WriteString([]string{"\xff", "\xc3", "a\x80"}[rnd.IntN(3)])
				continue
			}
			b.WriteString(parts[rnd.IntN(len(parts))])
		}
		return b.String()
	}
	empty := 0
	for round := range 20000 {
		e := &Event{ID: "evt_" + str(), Seq: int64(round), Time: time.Unix(int64(round), 0).UTC(), ReceivedAt: time.Unix(int64(round), 7).UTC(),
			Type: str(), Actor: Actor{Type: str(), ID: str(), Email: str(), Name: str()},
			AgentID: str(), TaskID: str(), SessionID: str(), Connector: str(), Tool: str(), Outcome: str(), ContentDigest: str()}
		if rnd.IntN(3) > 0 {
			e.Target = &Target{Type: str(), ID: str(), Name: str()}
		}
		if rnd.IntN(3) > 0 {
			e.Context = &Context{TeamID: str(), IP: str(), UserAgent: str(), RequestID: str()}
		}
		if rnd.IntN(3) > 0 {
			e.Decision = &Decision{Action: str(), Policy: str(), Reason: str()}
		}
		if rnd.IntN(2) > 0 {
			n := int64(round)
			e.Status, e.DurationMS = &n, &n
		}
		want := AppendEnvelopeText(nil, AppendEnvelope(nil, e))
		if len(want) == 0 {
			empty++
		}
		if got := AppendEventText(nil, e); !bytes.Equal(got, want) {
			t.Fatalf("round %d: %q, want %q (event %+v)", round, got, want, e)
		}
	}
	if empty < 2000 || empty > 10000 {
		t.Errorf("%d of 20000 events without words: the test's mix is off", empty)
	}
	// Every text member of the envelope is among the event's words.
	e := &Event{ID: "i", Type: "t1", Actor: Actor{Type: "t2", ID: "i", Email: "t3", Name: "t4"}, AgentID: "t5", TaskID: "t6",
		SessionID: "t7", Connector: "t8", Tool: "t9", Target: &Target{Type: "t10", ID: "i", Name: "t11"},
		Context: &Context{TeamID: "t12", IP: "t13", UserAgent: "i", RequestID: "i"}, Outcome: "t14",
		Decision: &Decision{Action: "t15", Policy: "t16", Reason: "t17"}, ContentDigest: "i"}
	if got, want := string(AppendEventText(nil, e)), "t1 t2 t3 t4 t5 t6 t7 t8 t9 t10 t11 t12 t13 t14 t15 t16 t17 "; got != want {
		t.Errorf("%q, want %q", got, want)
	}
	if want := string(AppendEnvelopeText(nil, AppendEnvelope(nil, e))); want != string(AppendEventText(nil, e)) {
		t.Errorf("envelope words %q", want)
	}
}

// TestAppendEventTextEveryField sets every string field of an event, found
// by reflection (so a field added to Event is covered without changing
// this test), to a word of its own, and then each one in turn to invalid
// UTF-8: the event's words must be its envelope's in every case.
func TestAppendEventTextEveryField(t *testing.T) {
	var fields []func(*Event) reflect.Value
	var walk func(typ reflect.Type, path func(*Event) reflect.Value)
	walk = func(typ reflect.Type, path func(*Event) reflect.Value) {
		for i := range typ.NumField() {
			f := typ.Field(i)
			if !f.IsExported() {
				continue
			}
			at := func(e *Event) reflect.Value {
				v := path(e)
				if v.Kind() == reflect.Pointer {
					if v.IsNil() {
						v.Set(reflect.New(v.Type().Elem()))
					}
					v = v.Elem()
				}
				return v.Field(i)
			}
			ft := f.Type
			if ft.Kind() == reflect.Pointer {
				ft = ft.Elem()
			}
			switch {
			case ft.Kind() == reflect.String:
				fields = append(fields, at)
			case ft.Kind() == reflect.Struct && ft != reflect.TypeFor[time.Time]():
				walk(ft, at)
			}
		}
	}
	walk(reflect.TypeFor[Event](), func(e *Event) reflect.Value { return reflect.ValueOf(e).Elem() })
	if len(fields) < 20 {
		t.Fatalf("found %d string fields; the walk is broken", len(fields))
	}
	base := func() *Event {
		e := &Event{Time: time.Unix(1, 0).UTC(), ReceivedAt: time.Unix(2, 0).UTC()}
		for i, f := range fields {
			f(e).SetString(fmt.Sprintf("w%d", i))
		}
		return e
	}
	e := base()
	want := AppendEnvelopeText(nil, AppendEnvelope(nil, e))
	if got := AppendEventText(nil, e); !bytes.Equal(got, want) {
		t.Fatalf("every field set: %q, want %q", got, want)
	}
	for i, f := range fields {
		e := base()
		f(e).SetString("a\xffb")
		want := AppendEnvelopeText(nil, AppendEnvelope(nil, e))
		if got := AppendEventText(nil, e); !bytes.Equal(got, want) {
			t.Errorf("string field %d (now %q) invalid UTF-8: %q, want %q", i, "a\xffb", got, want)
		}
	}
}
