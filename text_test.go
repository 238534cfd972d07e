package veritrail

import (
	"strings"
	"testing"
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
