// Package canonjson is Veritrail's JSON at the byte level: the canonical
// form that envelopes and content are stored, hashed and shown in, and the
// strict, allocation-free readers that the envelope codec and the ingest
// decoder are built on. It knows nothing of events; the root package's
// envelope codec and decoder give the bytes their meaning.
//
// The canonical form follows RFC 8785 (JCS) for structure and strings — no
// insignificant whitespace, object members sorted by their UTF-16 code
// units, strings in their minimal escaped form (only '"', '\\' and control
// characters escaped; never HTML characters, U+2028 or U+2029) — except that
// numbers are kept exactly as written: JCS would rewrite 3074457346235995512
// as a double and lose digits of the identifiers that audit logs are full
// of. Duplicate object keys, lone UTF-16 surrogates and invalid UTF-8 are
// refused everywhere, since two parsers could read them differently.
package canonjson

import (
	"bytes"
	"fmt"
	"slices"
	"sync"
	"unicode/utf16"
	"unicode/utf8"
)

// MaxDepth bounds the nesting of objects and arrays.
const MaxDepth = 64

// Append appends the canonical form of the JSON value src (whitespace
// around it allowed) to dst. Errors name the byte of src where the value
// went wrong.
func Append(dst, src []byte) ([]byte, error) {
	out, n, err := AppendValue(dst, src)
	if err != nil {
		return dst, err
	}
	c := canonicalizer{src: src, pos: n}
	c.skipSpace()
	if c.pos != len(src) {
		return dst, c.errorf("unexpected data after the value")
	}
	return out, nil
}

// AppendValue appends the canonical form of the JSON value at the start of
// src (after any whitespace) to dst, and returns how many bytes of src the
// value took. What follows the value is not looked at.
func AppendValue(dst, src []byte) (out []byte, n int, err error) {
	c := scratch.Get().(*canonicalizer)
	defer func() {
		c.src, c.members, c.tmp = nil, c.members[:0], c.tmp[:0]
		scratch.Put(c)
	}()
	c.src, c.pos = src, 0
	c.skipSpace()
	out, err = c.value(dst, 0)
	if err != nil {
		return dst, c.pos, err
	}
	return out, c.pos, nil
}

// scratch recycles canonicalizers with their stacks.
var scratch = sync.Pool{New: func() any { return new(canonicalizer) }}

type canonicalizer struct {
	src []byte
	pos int
	// members is a stack: each object being read holds its members above
	// those of the objects around it.
	members []member
	tmp     []byte // an object's members while they are put in order
}

// member is one member of an object being written: its decoded key (the
// bytes of src when the key has no escapes) and where the member, key and
// value, was written in the output.
type member struct {
	key        []byte
	start, end int
}

func (c *canonicalizer) errorf(format string, args ...any) error {
	return fmt.Errorf("at byte %d: %s", c.pos, fmt.Sprintf(format, args...))
}

func (c *canonicalizer) skipSpace() { c.pos = SkipSpace(c.src, c.pos) }

// SkipSpace returns the position of the first byte at or after pos that is
// not JSON whitespace.
func SkipSpace(src []byte, pos int) int {
	for pos < len(src) {
		switch src[pos] {
		case ' ', '\t', '\n', '\r':
			pos++
		default:
			return pos
		}
	}
	return pos
}

func (c *canonicalizer) value(dst []byte, depth int) ([]byte, error) {
	if depth > MaxDepth {
		return dst, c.errorf("nested deeper than %d levels", MaxDepth)
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
		// A valid string without escapes is already canonical: only
		// escapes can spell a character differently.
		if raw, end, escaped, ok := ScanString(c.src, c.pos); ok && !escaped {
			c.pos = end
			dst = append(dst, '"')
			dst = append(dst, raw...)
			return append(dst, '"'), nil
		}
		s, err := c.str()
		if err != nil {
			return dst, err
		}
		return AppendString(dst, s), nil
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

// object writes the object at c.pos with its members in the order they
// come, then, if that is not the canonical order, puts them in order in
// place: objects already in order (most are, or are small) cost no copy,
// and none costs an allocation per member.
func (c *canonicalizer) object(dst []byte, depth int) ([]byte, error) {
	c.pos++ // {
	open := len(dst)
	dst = append(dst, '{')
	base := len(c.members)
	defer func() { c.members = c.members[:base] }()
	c.skipSpace()
	if c.pos < len(c.src) && c.src[c.pos] == '}' {
		c.pos++
		return append(dst, '}'), nil
	}
	inOrder := true
	for {
		c.skipSpace()
		if c.pos >= len(c.src) || c.src[c.pos] != '"' {
			return dst, c.errorf("expected an object key")
		}
		if len(c.members) > base {
			dst = append(dst, ',')
		}
		start := len(dst)
		var key []byte
		if raw, end, escaped, ok := ScanString(c.src, c.pos); ok && !escaped {
			// Without escapes the key is canonical as written.
			key, c.pos = raw, end
			dst = append(append(append(dst, '"'), raw...), '"')
		} else {
			s, err := c.str()
			if err != nil {
				return dst, err
			}
			key = []byte(s)
			dst = AppendString(dst, s)
		}
		c.skipSpace()
		if c.pos >= len(c.src) || c.src[c.pos] != ':' {
			return dst, c.errorf("expected ':' after object key")
		}
		c.pos++
		c.skipSpace()
		dst = append(dst, ':')
		var err error
		if dst, err = c.value(dst, depth+1); err != nil {
			return dst, err
		}
		if n := len(c.members); n > base && compareUTF16(c.members[n-1].key, key) >= 0 {
			inOrder = false
		}
		c.members = append(c.members, member{key: key, start: start, end: len(dst)})
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
	if !inOrder {
		members := c.members[base:]
		slices.SortFunc(members, func(a, b member) int { return compareUTF16(a.key, b.key) })
		for i := 1; i < len(members); i++ {
			if bytes.Equal(members[i].key, members[i-1].key) {
				return dst, fmt.Errorf("duplicate object key %q", members[i].key)
			}
		}
		c.tmp = append(c.tmp[:0], dst[open+1:]...)
		dst = dst[:open+1]
		for i, m := range members {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = append(dst, c.tmp[m.start-open-1:m.end-open-1]...)
		}
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
	s, end, err := DecodeString(c.src, c.pos)
	if err != nil {
		c.pos = err.(*StringError).Offset
		return "", c.errorf("%s", err.(*StringError).Reason)
	}
	c.pos = end
	return s, nil
}

// compareUTF16 orders strings by their UTF-16 code units, as RFC 8785 does.
func compareUTF16(a, b []byte) int {
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
		ra, na := utf8.DecodeRune(a[i:])
		rb, nb := utf8.DecodeRune(b[j:])
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
