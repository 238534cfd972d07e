package canonjson

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"math/rand/v2"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestAppend(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{`{}`, `{}`},
		{` { "b" : 1 , "a" : [ 1 , 2 , { } ] } `, `{"a":[1,2,{}],"b":1}`},
		{`{"id":3074457346235995512,"x":1.50,"y":-0.0,"z":1e+10}`, `{"id":3074457346235995512,"x":1.50,"y":-0.0,"z":1e+10}`},
		{`{"s":"\u00e9\/\"\\\n\u0001\u2028"}`, "{\"s\":\"é/\\\"\\\\\\n\\u0001\u2028\"}"},
		{`{"emoji":"\ud83d\ude00"}`, `{"emoji":"😀"}`},
		{`{"t":true,"f":false,"n":null}`, `{"f":false,"n":null,"t":true}`},
		// RFC 8785 orders keys by UTF-16 code units: U+10000 (a surrogate
		// pair, 0xD800…) sorts before U+E000.
		{"{\"\ue000\":1,\"\U00010000\":2,\"a\":3}", "{\"a\":3,\"\U00010000\":2,\"\ue000\":1}"},
		{`{"a":{"d":1,"c":2}}`, `{"a":{"c":2,"d":1}}`},
	} {
		got, err := Append(nil, []byte(tc.in))
		if err != nil {
			t.Errorf("%s: %v", tc.in, err)
			continue
		}
		if string(got) != tc.want {
			t.Errorf("%s:\n got %s\nwant %s", tc.in, got, tc.want)
		}
	}
	for _, bad := range []string{
		`{"a":1,"a":2}`,    // duplicate key
		`{"s":"\ud800"}`,   // lone surrogate
		`{"s":"\udc00x"}`,  // lone low surrogate
		`{"a":01}`,         // leading zero
		`{"a":1.}`,         // bad fraction
		`{"a":tru}`,        // bad literal
		`{"a":1}x`,         // trailing data
		`{"a" 1}`,          // missing colon
		`{"a":"\x"}`,       // bad escape
		"{\"a\":\"\xff\"}", // invalid UTF-8
		"{\"a\":\"\t\"}",   // raw control character
		`{"a":[1,2}`,       // unbalanced
		strings.Repeat(`{"a":`, MaxDepth+2) + "1" + strings.Repeat("}", MaxDepth+2),
	} {
		if out, err := Append(nil, []byte(bad)); err == nil {
			t.Errorf("%q: accepted as %s", bad, out)
		}
	}
}

// FuzzAppend checks that canonical output is valid JSON, means the
// same as the input, and is a fixed point.
func FuzzAppend(f *testing.F) {
	for _, s := range []string{`{}`, `{"b":[1,{"c":null}],"a":"x"}`, `{"n":-1.5e3}`, `{"u":"\u00e9\ud83d\ude00"}`, `[1,"a",true]`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		out, err := Append(nil, in)
		if err != nil {
			return
		}
		if !json.Valid(out) {
			t.Fatalf("invalid output %q for %q", out, in)
		}
		// Numbers are compared as written (1e700 is valid JSON, if not a
		// float64).
		decode := func(b []byte) (any, error) {
			dec := json.NewDecoder(bytes.NewReader(b))
			dec.UseNumber()
			var v any
			return v, dec.Decode(&v)
		}
		a, err := decode(in)
		if err != nil {
			t.Fatalf("accepted invalid input %q", in)
		}
		b, err := decode(out)
		if err != nil || !reflect.DeepEqual(a, b) {
			t.Fatalf("meaning changed: %q -> %q", in, out)
		}
		again, err := Append(nil, out)
		if err != nil || string(again) != string(out) {
			t.Fatalf("not a fixed point: %q -> %q (%v)", out, again, err)
		}
	})
}

// TestAppendValue canonicalizes the value at the start of its input and
// says where it ended, whatever follows.
func TestAppendValue(t *testing.T) {
	out, n, err := AppendValue([]byte("x:"), []byte(` {"b":1, "a":2} ,"next":1}`))
	if err != nil || string(out) != `x:{"a":2,"b":1}` || n != 15 {
		t.Fatalf("%s %d %v", out, n, err)
	}
	if _, _, err := AppendValue(nil, []byte(`{"a":"\ud800"}`)); err == nil || !strings.Contains(err.Error(), "at byte 12: lone UTF-16 surrogate") {
		t.Fatalf("lone surrogate: %v", err)
	}
}

func TestStrings(t *testing.T) {
	for _, tc := range []struct {
		in, want string // want "" with fault: refused
		escaped  bool
		fault    string
	}{
		{`"plain é"`, "plain é", false, ""},
		{`"a\"b\\c\/d"`, `a"b\c/d`, true, ""},
		{`"\b\f\n\r\t"`, "\b\f\n\r\t", true, ""},
		{`"\u00e9\u2028\uFFFD"`, "é\u2028\ufffd", true, ""},
		{`"\ud83d\ude00"`, "😀", true, ""},
		{`"\ud800"`, "", false, "lone UTF-16 surrogate"},
		{`"\ud800x"`, "", false, "lone UTF-16 surrogate"},
		{`"\ud800\u0041"`, "", false, "lone UTF-16 surrogate"},
		{`"\udc00\ud800"`, "", false, "lone UTF-16 surrogate"},
		{`"\ud800\ud800"`, "", false, "lone UTF-16 surrogate"},
		{`"\u12"`, "", false, "short unicode escape"},
		{`"\u12g4"`, "", false, "invalid unicode escape"},
		{`"\u12`, "", false, "short unicode escape"},
		{`"\x"`, "", false, "invalid escape"},
		{"\"\t\"", "", false, "control character"},
		{"\"\xff\"", "", false, "invalid UTF-8"},
		{`"abc`, "", false, "unterminated"},
		{`"abc\`, "", false, "unterminated"},
	} {
		raw, end, escaped, ok := ScanString([]byte(tc.in), 0)
		s, end2, err := DecodeString([]byte(tc.in), 0)
		if tc.fault != "" {
			if ok || err == nil || !strings.Contains(err.Error(), tc.fault) {
				t.Errorf("%s: ok=%v err=%v, want %q", tc.in, ok, err, tc.fault)
			}
			continue
		}
		if !ok || err != nil || s != tc.want || escaped != tc.escaped || end != len(tc.in) || end2 != end || string(raw) != tc.in[1:len(tc.in)-1] {
			t.Errorf("%s: %q %v %v %d / %q %v", tc.in, raw, escaped, ok, end, s, err)
		}
	}
}

// FuzzString holds the string readers to encoding/json on everything they
// accept (encoding/json also reads lone surrogates, as U+FFFD: they must
// be refused), to each other, and the writer to a round trip.
func FuzzString(f *testing.F) {
	for _, s := range []string{`"a"`, `"\u00e9\n"`, `"\ud83d\ude00"`, `"\ud800"`, `"\ud800\u0041"`, "\"\xff\"", `"\u0000"`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		raw, end, escaped, ok := ScanString(in, 0)
		s, end2, err := DecodeString(in, 0)
		if ok != (err == nil) || end != end2 {
			t.Fatalf("ScanString ok=%v end=%d, DecodeString %v end=%d for %q", ok, end, err, end2, in)
		}
		if !ok {
			return
		}
		if escaped != (bytes.IndexByte(raw, '\\') >= 0) || (!escaped && s != string(raw)) || string(AppendUnescaped(nil, raw)) != s {
			t.Fatalf("raw %q (escaped %v) does not stand for %q", raw, escaped, s)
		}
		var ref string
		if err := json.Unmarshal(in[:end], &ref); err != nil || ref != s {
			t.Fatalf("encoding/json reads %q (%v), DecodeString %q, for %q", ref, err, s, in)
		}
		w := AppendString(nil, s)
		back, n, err := DecodeString(w, 0)
		if err != nil || back != s || n != len(w) {
			t.Fatalf("AppendString(%q) = %s reads back as %q (%v)", s, w, back, err)
		}
		if again, _ := Append(nil, in[:end]); !bytes.Equal(again, w) {
			t.Fatalf("Append %q = %s, AppendString %s", in[:end], again, w)
		}
	})
}

func TestAppendStringForm(t *testing.T) {
	got := string(AppendString(nil, "<a href=\"x\">\\ \u2028\b\x01\x7f é"))
	want := `"<a href=\"x\">\\ ` + "\u2028" + `\b\u0001` + "\x7f é\""
	if got != want {
		t.Fatalf("got %s\nwant %s", got, want)
	}
	if !utf8.ValidString(got) {
		t.Fatal("invalid UTF-8")
	}
}

// FuzzScanInt holds ScanInt to strconv on the JSON integer grammar.
func FuzzScanInt(f *testing.F) {
	for _, s := range []string{"0", "-0", "01", "-", "9223372036854775807", "9223372036854775808", "-9223372036854775808", "-9223372036854775809", "12x", "1.5"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		v, end, ok := ScanInt(in, 0)
		if !ok {
			if n, err := strconv.ParseInt(string(in[:end]), 10, 64); err == nil && end > 0 && (in[0] != '-' || end > 1) && !(len(in[:end]) > 1 && in[:end][0] == '0') && !strings.HasPrefix(string(in[:end]), "-0") {
				t.Fatalf("%q refused, strconv reads %d", in[:end], n)
			}
			return
		}
		n, err := strconv.ParseInt(string(in[:end]), 10, 64)
		if err != nil || n != v {
			t.Fatalf("%q: ScanInt %d, strconv %d %v", in[:end], v, n, err)
		}
		if end < len(in) && in[end] >= '0' && in[end] <= '9' {
			t.Fatalf("%q: stopped before a digit", in)
		}
	})
}

// TestPlain8 holds the eight-byte string scan to the byte-by-byte rule:
// every byte value at every position, among plain and random neighbours.
func TestPlain8(t *testing.T) {
	plain := func(b []byte) bool {
		for _, c := range b {
			if c == '"' || c == '\\' || c < 0x20 || c >= 0x80 {
				return false
			}
		}
		return true
	}
	rnd := rand.New(rand.NewPCG(1, 2))
	var b [8]byte
	for round := 0; round < 200; round++ {
		for i := range b {
			b[i] = byte(0x20 + rnd.IntN(0x60))
			if round%2 == 1 {
				b[i] = byte(rnd.IntN(256))
			}
		}
		for pos := range 8 {
			for v := 0; v < 256; v++ {
				c := b
				c[pos] = byte(v)
				if got := plain8(binary.LittleEndian.Uint64(c[:])); got != plain(c[:]) {
					t.Fatalf("plain8(%q) = %v", c, got)
				}
			}
		}
	}
}
