package veritrail

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"unicode/utf16"
	"unicode/utf8"
)

// MaxJSONDepth bounds the nesting of content objects and arrays.
const MaxJSONDepth = 64

// AppendCanonicalJSON appends the canonical form of the JSON value src to dst.
//
// The canonical form follows RFC 8785 (JCS) for structure and strings — no
// insignificant whitespace, object members sorted by their UTF-16 code
// units, strings in their minimal escaped form — except that numbers are
// kept exactly as written: JCS would rewrite 3074457346235995512 as a double
// and lose digits of the identifiers that audit logs are full of. Duplicate
// object keys and lone UTF-16 surrogates are refused, since two parsers
// could read them differently.
func AppendCanonicalJSON(dst, src []byte) ([]byte, error) {
	c := canonicalizer{src: src}
	c.skipSpace()
	out, err := c.value(dst, 0)
	if err != nil {
		return dst, err
	}
	c.skipSpace()
	if c.pos != len(c.src) {
		return dst, c.errorf("unexpected data after the value")
	}
	return out, nil
}

type canonicalizer struct {
	src []byte
	pos int
}

type jsonMember struct {
	key   string
	value []byte // canonical bytes of the value
}

func (c *canonicalizer) errorf(format string, args ...any) error {
	return fmt.Errorf("at byte %d: %s", c.pos, fmt.Sprintf(format, args...))
}

func (c *canonicalizer) skipSpace() {
	for c.pos < len(c.src) {
		switch c.src[c.pos] {
		case ' ', '\t', '\n', '\r':
			c.pos++
		default:
			return
		}
	}
}

func (c *canonicalizer) value(dst []byte, depth int) ([]byte, error) {
	if depth > MaxJSONDepth {
		return dst, c.errorf("nested deeper than %d levels", MaxJSONDepth)
	}
	if c.pos >= len(c.src) {
		return dst, c.errorf("unexpected end of JSON")
	}
	switch ch := c.src[c.pos]; {
	case ch == '{':
		return c.object(dst, depth)
	case ch == '[':
		return c.array(dst, depth)
	case ch == '"':
		s, err := c.str()
		if err != nil {
			return dst, err
		}
		return AppendJSONString(dst, s), nil
	case ch == '-' || (ch >= '0' && ch <= '9'):
		return c.number(dst)
	default:
		for _, lit := range [...]string{"true", "false", "null"} {
			if len(c.src)-c.pos >= len(lit) && string(c.src[c.pos:c.pos+len(lit)]) == lit {
				c.pos += len(lit)
				return append(dst, lit...), nil
			}
		}
		return dst, c.errorf("invalid character %q", ch)
	}
}

func (c *canonicalizer) object(dst []byte, depth int) ([]byte, error) {
	c.pos++ // {
	var members []jsonMember
	c.skipSpace()
	if c.pos < len(c.src) && c.src[c.pos] == '}' {
		c.pos++
		return append(dst, '{', '}'), nil
	}
	for {
		c.skipSpace()
		if c.pos >= len(c.src) || c.src[c.pos] != '"' {
			return dst, c.errorf("expected an object key")
		}
		key, err := c.str()
		if err != nil {
			return dst, err
		}
		c.skipSpace()
		if c.pos >= len(c.src) || c.src[c.pos] != ':' {
			return dst, c.errorf("expected ':' after object key")
		}
		c.pos++
		c.skipSpace()
		v, err := c.value(nil, depth+1)
		if err != nil {
			return dst, err
		}
		members = append(members, jsonMember{key: key, value: v})
		c.skipSpace()
		if c.pos >= len(c.src) {
			return dst, c.errorf("unexpected end of JSON in object")
		}
		if c.src[c.pos] == ',' {
			c.pos++
			continue
		}
		if c.src[c.pos] == '}' {
			c.pos++
			break
		}
		return dst, c.errorf("expected ',' or '}' in object")
	}
	slices.SortFunc(members, func(a, b jsonMember) int { return compareUTF16(a.key, b.key) })
	for i := 1; i < len(members); i++ {
		if members[i].key == members[i-1].key {
			return dst, fmt.Errorf("duplicate object key %q", members[i].key)
		}
	}
	dst = append(dst, '{')
	for i, m := range members {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = AppendJSONString(dst, m.key)
		dst = append(dst, ':')
		dst = append(dst, m.value...)
	}
	return append(dst, '}'), nil
}

func (c *canonicalizer) array(dst []byte, depth int) ([]byte, error) {
	c.pos++ // [
	dst = append(dst, '[')
	c.skipSpace()
	if c.pos < len(c.src) && c.src[c.pos] == ']' {
		c.pos++
		return append(dst, ']'), nil
	}
	for first := true; ; first = false {
		if !first {
			dst = append(dst, ',')
		}
		c.skipSpace()
		var err error
		if dst, err = c.value(dst, depth+1); err != nil {
			return dst, err
		}
		c.skipSpace()
		if c.pos >= len(c.src) {
			return dst, c.errorf("unexpected end of JSON in array")
		}
		if c.src[c.pos] == ',' {
			c.pos++
			continue
		}
		if c.src[c.pos] == ']' {
			c.pos++
			return append(dst, ']'), nil
		}
		return dst, c.errorf("expected ',' or ']' in array")
	}
}

// number copies a JSON number verbatim after checking its grammar.
func (c *canonicalizer) number(dst []byte) ([]byte, error) {
	start := c.pos
	s := c.src
	i := c.pos
	if i < len(s) && s[i] == '-' {
		i++
	}
	switch {
	case i < len(s) && s[i] == '0':
		i++
	case i < len(s) && s[i] >= '1' && s[i] <= '9':
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i++
		}
	default:
		c.pos = i
		return dst, c.errorf("invalid number")
	}
	if i < len(s) && s[i] == '.' {
		i++
		if i >= len(s) || s[i] < '0' || s[i] > '9' {
			c.pos = i
			return dst, c.errorf("invalid number")
		}
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i++
		}
	}
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		i++
		if i < len(s) && (s[i] == '+' || s[i] == '-') {
			i++
		}
		if i >= len(s) || s[i] < '0' || s[i] > '9' {
			c.pos = i
			return dst, c.errorf("invalid number")
		}
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i++
		}
	}
	c.pos = i
	return append(dst, s[start:i]...), nil
}

// str decodes a JSON string at c.pos.
func (c *canonicalizer) str() (string, error) {
	s, end, fault := decodeJSONString(c.src, c.pos)
	c.pos = end
	if fault != "" {
		return "", c.errorf("%s", fault)
	}
	return s, nil
}

// decodeJSONString decodes the JSON string whose opening quote is at
// src[pos]. It returns the string and the position after its closing quote
// or, when the string is not valid JSON (lone UTF-16 surrogates and invalid
// UTF-8 included), what is wrong and where.
func decodeJSONString(src []byte, pos int) (s string, end int, fault string) {
	pos++ // opening quote
	start := pos
	// Fast path: no escapes.
	for pos < len(src) {
		ch := src[pos]
		if ch == '"' {
			if !utf8.Valid(src[start:pos]) {
				return "", pos + 1, "invalid UTF-8 in string"
			}
			return string(src[start:pos]), pos + 1, ""
		}
		if ch == '\\' {
			break
		}
		if ch < 0x20 {
			return "", pos, "control character in string"
		}
		pos++
	}
	buf := append([]byte(nil), src[start:pos]...)
	for pos < len(src) {
		ch := src[pos]
		switch {
		case ch == '"':
			if !utf8.Valid(buf) {
				return "", pos + 1, "invalid UTF-8 in string"
			}
			return string(buf), pos + 1, ""
		case ch < 0x20:
			return "", pos, "control character in string"
		case ch != '\\':
			buf = append(buf, ch)
			pos++
			continue
		}
		pos++
		if pos >= len(src) {
			break
		}
		esc := src[pos]
		pos++
		switch esc {
		case '"', '\\', '/':
			buf = append(buf, esc)
		case 'b':
			buf = append(buf, '\b')
		case 'f':
			buf = append(buf, '\f')
		case 'n':
			buf = append(buf, '\n')
		case 'r':
			buf = append(buf, '\r')
		case 't':
			buf = append(buf, '\t')
		case 'u':
			r, fault := hex4(src, pos)
			if fault != "" {
				return "", pos, fault
			}
			pos += 4
			if utf16.IsSurrogate(r) {
				if r >= 0xDC00 || pos+1 >= len(src) || src[pos] != '\\' || src[pos+1] != 'u' {
					return "", pos, "lone UTF-16 surrogate in string"
				}
				pos += 2
				r2, fault := hex4(src, pos)
				if fault != "" {
					return "", pos, fault
				}
				pos += 4
				if r = utf16.DecodeRune(r, r2); r == utf8.RuneError {
					return "", pos, "lone UTF-16 surrogate in string"
				}
			}
			buf = utf8.AppendRune(buf, r)
		default:
			return "", pos, "invalid escape '\\" + string(rune(esc)) + "' in string"
		}
	}
	return "", pos, "unterminated string"
}

// hex4 decodes the four hex digits of a \u escape at src[pos].
func hex4(src []byte, pos int) (rune, string) {
	if len(src)-pos < 4 {
		return 0, "short unicode escape"
	}
	v, err := strconv.ParseUint(string(src[pos:pos+4]), 16, 32)
	if err != nil {
		return 0, "invalid unicode escape"
	}
	return rune(v), ""
}

// compareUTF16 orders strings by their UTF-16 code units, as RFC 8785 does.
func compareUTF16(a, b string) int {
	for i, j := 0, 0; ; {
		if i >= len(a) || j >= len(b) {
			return (len(a) - i) - (len(b) - j)
		}
		if a[i] < utf8.RuneSelf && b[j] < utf8.RuneSelf {
			if a[i] != b[j] {
				return int(a[i]) - int(b[j])
			}
			i++
			j++
			continue
		}
		ra, na := utf8.DecodeRuneInString(a[i:])
		rb, nb := utf8.DecodeRuneInString(b[j:])
		if ra != rb {
			ua, ub := utf16Units(ra), utf16Units(rb)
			if ua[0] != ub[0] {
				return int(ua[0]) - int(ub[0])
			}
			return int(ua[1]) - int(ub[1])
		}
		i += na
		j += nb
	}
}

func utf16Units(r rune) [2]uint16 {
	if r >= 0x10000 {
		r1, r2 := utf16.EncodeRune(r)
		return [2]uint16{uint16(r1), uint16(r2)}
	}
	return [2]uint16{uint16(r), 0}
}

// AppendJSONString appends s as a JSON string in the RFC 8785 form: only '"',
// '\\' and control characters are escaped, everything else is raw UTF-8.
// s must be valid UTF-8.
func AppendJSONString(dst []byte, s string) []byte {
	dst = append(dst, '"')
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
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}

var errNotObject = errors.New("must be a JSON object")
