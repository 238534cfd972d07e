package veritrail

import (
	"testing"
	"unicode/utf8"
)

// appendTokensRef is appendTokens rune by rune, without its ASCII runs:
// the reference FuzzAppendTokens holds it to.
func appendTokensRef(dst, s []byte, mark string) []byte {
	in := false
	for i := 0; i < len(s); {
		if s[i] == '\\' && i+1 < len(s) {
			if in {
				dst = append(dst, ' ')
				in = false
			}
			if s[i+1] == 'u' {
				i += 6
			} else {
				i += 2
			}
			continue
		}
		r, size := utf8.DecodeRune(s[i:])
		if IsTokenRune(r) {
			if !in {
				dst = append(dst, mark...)
				in = true
			}
			dst = append(dst, s[i:i+size]...)
		} else if in {
			dst = append(dst, ' ')
			in = false
		}
		i += size
	}
	if in {
		dst = append(dst, ' ')
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
