package canonjson

import (
	"encoding/binary"
	"fmt"
	"math"
	"unicode/utf16"
	"unicode/utf8"
)

// AppendString appends s as a JSON string in the canonical form: only '"',
// '\\' and control characters are escaped (\b \f \n \r \t, others as
// \u00XX), everything else is raw UTF-8. s must be valid UTF-8.
func AppendString(dst []byte, s string) []byte {
	dst = append(dst, '"')
	dst = AppendEscaped(dst, s)
	return append(dst, '"')
}

// AppendEscaped appends what lies between the quotes of AppendString(s):
// for writers that build one JSON string from several pieces.
func AppendEscaped(dst []byte, s string) []byte {
	start := 0
	for i := 0; i < len(s); i++ {
		ch := s[i]
		if ch >= 0x20 && ch != '"' && ch != '\\' {
			continue
		}
		dst = append(dst, s[start:i]...)
		switch ch {
		case '"':
			dst = append(dst, '\\', '"')
		case '\\':
			dst = append(dst, '\\', '\\')
		case '\b':
			dst = append(dst, '\\', 'b')
		case '\f':
			dst = append(dst, '\\', 'f')
		case '\n':
			dst = append(dst, '\\', 'n')
		case '\r':
			dst = append(dst, '\\', 'r')
		case '\t':
			dst = append(dst, '\\', 't')
		default:
			const hex = "0123456789abcdef"
			dst = append(dst, '\\', 'u', '0', '0', hex[ch>>4], hex[ch&0xF])
		}
		start = i + 1
	}
	return append(dst, s[start:]...)
}

// StringError says why the JSON string at some position is not valid.
type StringError struct {
	Offset int    // the byte of the input where it went wrong
	Reason string // e.g. "lone UTF-16 surrogate in string"
}

func (e *StringError) Error() string { return fmt.Sprintf("at byte %d: %s", e.Offset, e.Reason) }

// ScanString reads the JSON string whose opening quote is at src[pos]
// without decoding or allocating: raw is what lies between the quotes
// (still escaped when escaped is true) and end the position after the
// closing quote. ok is false for anything that is not a valid JSON string:
// a bad escape, a lone UTF-16 surrogate, a raw control character, invalid
// UTF-8, no closing quote. DecodeString accepts exactly the same strings.
func ScanString(src []byte, pos int) (raw []byte, end int, escaped, ok bool) {
	raw, end, escaped, fault := scanString(src, pos)
	return raw, end, escaped, fault == nil
}

// DecodeString decodes the JSON string whose opening quote is at src[pos],
// and returns it and the position after its closing quote, or a
// *StringError.
func DecodeString(src []byte, pos int) (s string, end int, err error) {
	raw, end, escaped, fault := scanString(src, pos)
	if fault != nil {
		return "", end, fault
	}
	if !escaped {
		return string(raw), end, nil
	}
	return string(AppendUnescaped(make([]byte, 0, len(raw)), raw)), end, nil
}

// scanString is the one reading of the JSON string grammar behind
// ScanString and DecodeString.
func scanString(src []byte, pos int) (raw []byte, end int, escaped bool, fault *StringError) {
	if pos >= len(src) || src[pos] != '"' {
		return nil, pos, false, &StringError{pos, "expected a string"}
	}
	start := pos + 1
	high := false // a byte >= 0x80 was seen: check UTF-8 at the end
	for i := start; i < len(src); {
		// Eight plain bytes at a time: none a quote, a backslash, a
		// control character or part of a multi-byte character.
		for i+8 <= len(src) && plain8(binary.LittleEndian.Uint64(src[i:])) {
			i += 8
		}
		if i >= len(src) {
			break
		}
		ch := src[i]
		switch {
		case ch == '"':
			if high && !utf8.Valid(src[start:i]) {
				return nil, i + 1, false, &StringError{invalidUTF8At(src, start), "invalid UTF-8 in string"}
			}
			return src[start:i], i + 1, escaped, nil
		case ch < 0x20:
			return nil, i, false, &StringError{i, "control character in string"}
		case ch >= utf8.RuneSelf:
			high = true
			i++
		case ch != '\\':
			i++
		default:
			escaped = true
			n, reason := escapeLen(src, i)
			if reason != "" {
				return nil, i + n, false, &StringError{i + n, reason}
			}
			i += n
		}
	}
	return nil, len(src), false, &StringError{len(src), "unterminated string"}
}

// plain8 reports whether none of the eight bytes in x is '"', '\\', below
// 0x20 or above 0x7f (SWAR: each test sets the high bit of the bytes it
// finds).
func plain8(x uint64) bool {
	const ones, highs = 0x0101010101010101, 0x8080808080808080
	quote := x ^ (ones * '"')
	backslash := x ^ (ones * '\\')
	found := (quote - ones) & ^quote
	found |= (backslash - ones) & ^backslash
	found |= x - ones*0x20 // below 0x20 (borrows only matter past a hit)
	found |= x
	return found&highs == 0
}

// escapeLen checks the escape at src[i] (a backslash) and returns its
// length, a \u surrogate pair counting as one escape; or, when it is not
// valid, how far in it went wrong and why.
func escapeLen(src []byte, i int) (int, string) {
	if i+1 >= len(src) {
		return 1, "unterminated string"
	}
	switch src[i+1] {
	case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
		return 2, ""
	case 'u':
	default:
		return 2, "invalid escape '\\" + string(rune(src[i+1])) + "' in string"
	}
	r, reason := hex4(src, i+2)
	if reason != "" {
		return 2, reason
	}
	if !utf16.IsSurrogate(r) {
		return 6, ""
	}
	if r >= 0xDC00 || i+7 >= len(src) || src[i+6] != '\\' || src[i+7] != 'u' {
		return 6, "lone UTF-16 surrogate in string"
	}
	r2, reason := hex4(src, i+8)
	if reason != "" {
		return 8, reason
	}
	if utf16.DecodeRune(r, r2) == utf8.RuneError {
		return 12, "lone UTF-16 surrogate in string"
	}
	return 12, ""
}

// hex4 decodes the four hex digits of a \u escape at src[pos].
func hex4(src []byte, pos int) (rune, string) {
	if len(src)-pos < 4 {
		return 0, "short unicode escape"
	}
	var r rune
	for _, c := range src[pos : pos+4] {
		switch {
		case c >= '0' && c <= '9':
			c -= '0'
		case c >= 'a' && c <= 'f':
			c -= 'a' - 10
		case c >= 'A' && c <= 'F':
			c -= 'A' - 10
		default:
			return 0, "invalid unicode escape"
		}
		r = r<<4 | rune(c)
	}
	return r, ""
}

func invalidUTF8At(src []byte, start int) int {
	for i := start; i < len(src); {
		r, n := utf8.DecodeRune(src[i:])
		if r == utf8.RuneError && n <= 1 {
			return i
		}
		i += n
	}
	return len(src)
}

// AppendUnescaped appends the characters that the raw string bytes stand
// for (raw as ScanString returned it for a valid string) to dst.
func AppendUnescaped(dst, raw []byte) []byte {
	for i := 0; i < len(raw); {
		ch := raw[i]
		if ch != '\\' {
			j := i + 1
			for j < len(raw) && raw[j] != '\\' {
				j++
			}
			dst = append(dst, raw[i:j]...)
			i = j
			continue
		}
		if i+1 >= len(raw) {
			return dst // not valid; ScanString refuses it
		}
		switch esc := raw[i+1]; esc {
		case 'b':
			dst = append(dst, '\b')
		case 'f':
			dst = append(dst, '\f')
		case 'n':
			dst = append(dst, '\n')
		case 'r':
			dst = append(dst, '\r')
		case 't':
			dst = append(dst, '\t')
		case 'u':
			r, _ := hex4(raw, i+2)
			i += 6
			if utf16.IsSurrogate(r) {
				r2, _ := hex4(raw, i+2)
				r = utf16.DecodeRune(r, r2)
				i += 6
			}
			dst = utf8.AppendRune(dst, r)
			continue
		default: // " \ /
			dst = append(dst, esc)
		}
		i += 2
	}
	return dst
}

// ScanInt reads the JSON integer at src[pos] (-?(0|[1-9][0-9]*), within
// int64) and returns it and the position after it. A fraction or exponent
// after the digits is the caller's to refuse: it sees src[end].
func ScanInt(src []byte, pos int) (v int64, end int, ok bool) {
	i := pos
	neg := i < len(src) && src[i] == '-'
	if neg {
		i++
	}
	start := i
	var u uint64
	over := false
	for i < len(src) && src[i] >= '0' && src[i] <= '9' {
		d := uint64(src[i] - '0')
		over = over || u > (math.MaxUint64-d)/10
		u = u*10 + d
		i++
	}
	switch {
	case over, i == start, src[start] == '0' && i-start > 1: // too large, no digits, or a leading zero
		return 0, i, false
	case neg && u <= 1<<63:
		return -int64(u), i, true
	case !neg && u <= math.MaxInt64:
		return int64(u), i, true
	}
	return 0, i, false
}
