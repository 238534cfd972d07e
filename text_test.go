package veritrail

import (
	"bytes"
	"math/rand/v2"
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
