package postgres

import (
	"bytes"
	"unicode"
	"unicode/utf8"

	"github.com/jackc/pgx/v5/pgtype"
	"golang.org/x/text/unicode/norm"

	veritrail "github.com/veritrail/veritrail"
)

// keyFields are the index-key columns (request_id and user_agent were
// added last, by migration 0010, so the table has them after tsv_all).
var keyFields = [...]struct {
	col   string
	field veritrail.Field
}{
	{"type", veritrail.FieldType}, {"actor_id", veritrail.FieldActorID}, {"actor_email", veritrail.FieldActorEmail},
	{"actor_type", veritrail.FieldActorType}, {"agent_id", veritrail.FieldAgentID}, {"task_id", veritrail.FieldTaskID},
	{"session_id", veritrail.FieldSessionID}, {"outcome", veritrail.FieldOutcome}, {"connector", veritrail.FieldConnector},
	{"tool", veritrail.FieldTool}, {"status", veritrail.FieldStatus}, {"decision", veritrail.FieldDecision},
	{"ip", veritrail.FieldIP}, {"target_id", veritrail.FieldTargetID}, {"team_id", veritrail.FieldTeamID},
	{"target_type", veritrail.FieldTargetType}, {"request_id", veritrail.FieldRequestID}, {"user_agent", veritrail.FieldUserAgent},
}

// keyPos is 1 + the index in keyFields of each field that has a column,
// 0 for the others.
var keyPos = func() (p [256]uint8) {
	for i, k := range keyFields {
		p[k.field] = uint8(i + 1)
	}
	return p
}()

// column returns the column of an indexed field, "" if it has none.
func column(f veritrail.Field) string {
	if i := keyPos[f]; i > 0 {
		return keyFields[i-1].col
	}
	return ""
}

// eventColumns are the columns COPY fills, in eventEncoder.eventRow's
// order.
var eventColumns = func() []string {
	cols := []string{"org_id", "seq", "time_ns", "id", "category"}
	for _, k := range keyFields {
		cols = append(cols, k.col)
	}
	return append(cols, "envelope", "tsv_env", "tsv_all")
}()

var contentColumns = []string{"org_id", "seq", "time_ns", "category", "salt", "body"}

// PostgreSQL's limits on a tsvector: the bytes of one lexeme, and of all
// its lexemes together. Longer words, and words past the total, are left
// out of the index: the event is stored all the same.
const (
	maxLexeme  = 2046
	maxLexemes = 1<<20 - 1
)

// tsvBuilder makes a tsvector of space-separated words: each word
// lower-cased, once, without positions; given as lexemes, so PostgreSQL's
// parser never re-splits them and the words are the same as the embedded
// store's.
type tsvBuilder struct {
	lexemes []string
	seen    map[string]struct{}
	size    int
}

// reset empties b for the next event, keeping its memory.
func (b *tsvBuilder) reset() {
	clear(b.seen)
	b.lexemes, b.size = b.lexemes[:0], 0
}

// words returns the words added so far, valid until the next add or reset.
func (b *tsvBuilder) words() []string { return b.lexemes }

func (b *tsvBuilder) add(words []byte) {
	if b.seen == nil {
		b.seen = make(map[string]struct{}, 32)
	}
	for len(words) > 0 {
		var w []byte
		w, words, _ = bytes.Cut(words, []byte{' '})
		if len(w) == 0 {
			continue
		}
		// The length that counts is the lowered word's: ToLower can
		// lengthen a word (Ⱥ, 2 bytes, becomes ⱥ, 3).
		lw := lowerWord(w)
		if len(lw) > maxLexeme {
			continue
		}
		if _, dup := b.seen[string(lw)]; dup {
			continue
		}
		if b.size+len(lw) > maxLexemes {
			return
		}
		word := string(lw)
		b.seen[word] = struct{}{}
		b.lexemes = append(b.lexemes, word)
		b.size += len(lw)
	}
}

// vector returns the words added so far; later adds do not change it.
func (b *tsvBuilder) vector() pgtype.TSVector {
	v := pgtype.TSVector{Lexemes: make([]pgtype.TSVectorLexeme, len(b.lexemes)), Valid: true}
	for i, w := range b.lexemes {
		v.Lexemes[i].Word = w
	}
	return v
}

// lowerWord lower-cases a word and folds Latin letters' accents, without
// allocating when it is ASCII and already lower case.
func lowerWord(w []byte) []byte {
	upper := false
	for _, c := range w {
		if c >= utf8.RuneSelf {
			return foldAccents(bytes.ToLower(w))
		}
		upper = upper || c >= 'A' && c <= 'Z'
	}
	if upper {
		return bytes.ToLower(w)
	}
	return w
}

// foldAccents removes the combining marks that follow a Latin letter
// (é → e, Å → A; ø, ß and other letters without a decomposition stay), as
// SQLite's unicode61 tokenizer does with remove_diacritics 2, so that q
// matches the same words on both stores.
func foldAccents(w []byte) []byte {
	d := norm.NFD.Bytes(w)
	out := make([]byte, 0, len(d))
	latin := false
	for len(d) > 0 {
		r, n := utf8.DecodeRune(d)
		seg := d[:n]
		d = d[n:]
		if unicode.Is(unicode.Mn, r) {
			if latin {
				continue
			}
		} else {
			latin = unicode.Is(unicode.Latin, r)
		}
		out = append(out, seg...)
	}
	return norm.NFC.Bytes(out)
}
