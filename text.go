package veritrail

import (
	"strings"
	"unicode"
	"unicode/utf8"
	"unsafe"

	"github.com/veritrail/veritrail/internal/canonjson"
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

// AppendEventText appends what AppendEnvelopeText(AppendEnvelope(e))
// appends, the same words in the same order, from e's fields rather than
// by scanning its envelope: a store that holds the event spares the scan
// (on PostgreSQL it was a sixth of the encoding of an events row).
// AppendEnvelope escapes only quotes, backslashes and control
// characters, which separate words whether escaped or not, so the tokens
// of a field are those of its escaped form. The members are envelopeText's,
// in the envelope's order (TestAppendEventText holds the two together).
func AppendEventText(dst []byte, e *Event) []byte {
	if !envelopeUTF8(e) {
		return dst // an envelope the scanner refuses: no words
	}
	dst = appendStringTokens(dst, e.Type)
	dst = appendStringTokens(dst, e.Actor.Type)
	dst = appendStringTokens(dst, e.Actor.Email)
	dst = appendStringTokens(dst, e.Actor.Name)
	dst = appendStringTokens(dst, e.AgentID)
	dst = appendStringTokens(dst, e.TaskID)
	dst = appendStringTokens(dst, e.SessionID)
	dst = appendStringTokens(dst, e.Connector)
	dst = appendStringTokens(dst, e.Tool)
	if t := e.Target; t != nil {
		dst = appendStringTokens(dst, t.Type)
		dst = appendStringTokens(dst, t.Name)
	}
	if c := e.Context; c != nil {
		dst = appendStringTokens(dst, c.TeamID)
		dst = appendStringTokens(dst, c.IP)
	}
	dst = appendStringTokens(dst, e.Outcome)
	if d := e.Decision; d != nil {
		dst = appendStringTokens(dst, d.Action)
		dst = appendStringTokens(dst, d.Policy)
		dst = appendStringTokens(dst, d.Reason)
	}
	return dst
}

// envelopeUTF8 reports whether the strings of e's envelope are valid
// UTF-8: AppendEnvelope copies them as they are, and ScanEnvelope refuses
// an envelope with a string that is not.
func envelopeUTF8(e *Event) bool {
	ok := utf8.ValidString(e.ID) && utf8.ValidString(e.Type) && utf8.ValidString(e.Actor.Type) &&
		utf8.ValidString(e.Actor.ID) && utf8.ValidString(e.Actor.Email) && utf8.ValidString(e.Actor.Name) &&
		utf8.ValidString(e.AgentID) && utf8.ValidString(e.TaskID) && utf8.ValidString(e.SessionID) &&
		utf8.ValidString(e.Connector) && utf8.ValidString(e.Tool) && utf8.ValidString(e.Outcome) &&
		utf8.ValidString(e.ContentDigest)
	if t := e.Target; ok && t != nil {
		ok = utf8.ValidString(t.Type) && utf8.ValidString(t.ID) && utf8.ValidString(t.Name)
	}
	if c := e.Context; ok && c != nil {
		ok = utf8.ValidString(c.TeamID) && utf8.ValidString(c.IP) && utf8.ValidString(c.UserAgent) && utf8.ValidString(c.RequestID)
	}
	if d := e.Decision; ok && d != nil {
		ok = utf8.ValidString(d.Action) && utf8.ValidString(d.Policy) && utf8.ValidString(d.Reason)
	}
	return ok
}

// appendStringTokens appends the tokens of s as appendTokens does those of
// its JSON-escaped form. appendTokens reads a backslash as the start of an
// escape, so a string with one is escaped first (rare: the copy is
// allocated); any other is read in place.
func appendStringTokens(dst []byte, s string) []byte {
	switch {
	case s == "":
		return dst
	case strings.IndexByte(s, '\\') >= 0:
		return appendTokens(dst, canonjson.AppendEscaped(nil, s), "")
	}
	return appendTokens(dst, unsafe.Slice(unsafe.StringData(s), len(s)), "")
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
