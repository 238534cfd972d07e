package veritrail

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

// Full-text words. Stores index the same words, split the same way, so a
// q means the same on every engine: the tokens of an envelope's string
// values (AppendEnvelopeText) and of content's string and number values
// (AppendContentText), lower-cased by the engine. This is the search
// contract between the stores and query parsing (ParseText), so it lives
// with Query in the domain package.

// envelopeText reports whether a member's words are searchable: not the
// identifiers and times the API filters on exactly (nor the id of an actor
// or target), nor the digest.
func envelopeText(m EnvelopeMember) bool {
	switch m {
	case MemberID, MemberActorID, MemberTargetID, MemberTime, MemberReceivedAt, MemberContentDigest,
		MemberContextRequestID, MemberContextUserAgent:
		return false
	}
	return !m.IsInt()
}

// AppendEnvelopeText appends the searchable words of envelope bytes: those
// of its string members but the ones envelopeText leaves out. Bytes that
// are not an envelope give no words (the verifier reports them).
func AppendEnvelopeText(dst, env []byte) []byte {
	n := len(dst)
	s := ScanEnvelope(env)
	for s.Next() {
		if envelopeText(s.Member()) {
			dst = appendTokens(dst, s.Raw(), "")
		}
	}
	if s.Err() != nil {
		return dst[:n]
	}
	return dst
}

// AppendContentText appends the words of canonical content JSON (string
// and number values; keys are structure, not content), each token prefixed
// with mark (a store may mark content tokens to keep them apart). It walks
// the bytes without decoding them: escapes separate words (see
// appendTokens).
func AppendContentText(dst, content []byte, mark string) []byte {
	for i := 0; i < len(content); {
		c := content[i]
		switch {
		case c == '"':
			j := i + 1
			for j < len(content) && content[j] != '"' {
				if content[j] == '\\' {
					j++
				}
				j++
			}
			str := content[i+1 : min(j, len(content))]
			i = j + 1
			if i >= len(content) || content[i] != ':' { // a value, not a key
				dst = appendTokens(dst, str, mark)
			}
		case c == '-' || (c >= '0' && c <= '9'):
			j := i
			for j < len(content) && strings.IndexByte("+-.eE0123456789", content[j]) >= 0 {
				j++
			}
			dst = appendTokens(dst, content[i:j], mark)
			i = j
		default:
			i++
		}
	}
	return dst
}

// appendTokens splits s into tokens the way unicode61 does (see
// IsTokenRune) and appends each, prefixed with mark, separated by spaces.
// JSON escapes (\n, \u00e9) are separators: canonical JSON escapes only
// quotes, backslashes and control characters.
func appendTokens(dst, s []byte, mark string) []byte {
	in := false
	for i := 0; i < len(s); {
		if c := s[i]; c < utf8.RuneSelf && asciiToken[c] {
			// A run of ASCII letters and digits, appended at once.
			j := i + 1
			for j < len(s) && s[j] < utf8.RuneSelf && asciiToken[s[j]] {
				j++
			}
			if !in {
				dst = append(dst, mark...)
				in = true
			}
			dst = append(dst, s[i:j]...)
			i = j
			continue
		}
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
		r, size := rune(s[i]), 1
		if r >= utf8.RuneSelf {
			r, size = utf8.DecodeRune(s[i:])
		}
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

// asciiToken is IsTokenRune of the ASCII runes: letters and digits.
var asciiToken = func() (t [utf8.RuneSelf]bool) {
	for c := range utf8.RuneSelf {
		t[c] = IsTokenRune(rune(c))
	}
	return t
}()

// IsTokenRune mirrors SQLite FTS5 unicode61's default token characters: letters,
// numbers and private-use characters (categories L*, N*, Co). Everything
// else, marks included, separates tokens.
func IsTokenRune(r rune) bool {
	return r != utf8.RuneError && (unicode.IsLetter(r) || unicode.IsNumber(r) || unicode.Is(unicode.Co, r))
}

// TextTerm is one token of a full-text query; Prefix matches any word
// that starts with it.
type TextTerm struct {
	Token  string
	Prefix bool
}

// ParseText splits a user's q the way text is split: every token must
// match; a trailing * makes the last token of a word a prefix. Runes equal
// to exclude (a store's private marker) separate tokens.
func ParseText(q string, exclude rune) ([]TextTerm, error) {
	var terms []TextTerm
	for _, word := range strings.Fields(q) {
		prefix := strings.HasSuffix(word, "*")
		toks := strings.FieldsFunc(word, func(r rune) bool { return !IsTokenRune(r) || r == exclude })
		for i, t := range toks {
			terms = append(terms, TextTerm{Token: t, Prefix: prefix && i == len(toks)-1})
		}
	}
	if len(terms) == 0 {
		return nil, Errorf(EInvalid, "parameter q: no searchable words in %q", q)
	}
	if len(terms) > 32 {
		return nil, Errorf(EInvalid, "parameter q: at most 32 words")
	}
	return terms, nil
}
