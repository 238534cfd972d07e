package postgres

import (
	"bytes"
	"context"
	"encoding/binary"
	"io"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"

	veritrail "github.com/veritrail/veritrail"
)

// The events and contents of a commit are written with COPY in
// PostgreSQL's binary format, encoded here rather than by pgx from rows of
// interface values: no value is boxed, no encode plan is looked up per
// value, and the full-text words of an event are made only when the
// connection asks for more data, so that the commit lane's encoding of
// the later rows overlaps PostgreSQL's inserting of the earlier ones.

// copyIn streams n rows, each appended to the buffer by row(buf, i), into
// table's columns in one COPY of tx.
func copyIn(ctx context.Context, tx pgx.Tx, table string, columns []string, n int, row func(buf []byte, i int) []byte) error {
	r := &copyReader{n: n, row: row}
	sql := "COPY " + pgx.Identifier{table}.Sanitize() + " (" + quotedColumns(columns) + ") FROM STDIN BINARY"
	// COPY stores every row or fails; its tag is not checked (Citus's
	// tags have counted rows differently before, see ClaimIDs).
	_, err := tx.Conn().PgConn().CopyFrom(ctx, r, sql)
	return err
}

func quotedColumns(columns []string) string {
	q := make([]string, len(columns))
	for i, c := range columns {
		q[i] = pgx.Identifier{c}.Sanitize()
	}
	return strings.Join(q, ", ")
}

// copyReader is the binary COPY data of n rows, encoded as it is read.
type copyReader struct {
	n    int
	row  func(buf []byte, i int) []byte
	next int // the next row to encode; -1 before the header
	buf  []byte
	off  int // buf[off:] is encoded and not yet read
	done bool
}

// copyHeader starts binary COPY data: the signature, no flags, no header
// extension.
var copyHeader = []byte("PGCOPY\n\xff\r\n\x00\x00\x00\x00\x00\x00\x00\x00\x00")

// Read implements io.Reader: it encodes rows until p can be filled.
func (r *copyReader) Read(p []byte) (int, error) {
	// What the last read left (less than a row) moves to the front, so
	// the buffer stays about the size of a read.
	r.buf, r.off = r.buf[:copy(r.buf, r.buf[r.off:])], 0
	for len(r.buf) < len(p) && !r.done {
		switch {
		case r.buf == nil && r.next == 0:
			r.buf = append(make([]byte, 0, 64<<10), copyHeader...)
		case r.next < r.n:
			r.buf = r.row(r.buf, r.next)
			r.next++
		default:
			r.buf = binary.BigEndian.AppendUint16(r.buf, 0xffff) // the trailer: -1 fields
			r.done = true
		}
	}
	if len(r.buf) == 0 {
		return 0, io.EOF
	}
	n := copy(p, r.buf)
	r.off = n
	return n, nil
}

// The fields of a binary COPY row: a count, then each field's length (-1
// for NULL) and bytes, in the types' binary send formats.

func appendFieldCount(buf []byte, n int) []byte {
	return binary.BigEndian.AppendUint16(buf, uint16(n))
}

func appendNull(buf []byte) []byte { return binary.BigEndian.AppendUint32(buf, 0xffffffff) }

func appendInt8(buf []byte, v int64) []byte {
	buf = binary.BigEndian.AppendUint32(buf, 8)
	return binary.BigEndian.AppendUint64(buf, uint64(v))
}

// appendBytes appends a bytea field, NULL when b is nil.
func appendBytes(buf, b []byte) []byte {
	if b == nil {
		return appendNull(buf)
	}
	buf = binary.BigEndian.AppendUint32(buf, uint32(len(b)))
	return append(buf, b...)
}

// appendText appends a text (or bytea) field.
func appendText(buf []byte, s string) []byte {
	buf = binary.BigEndian.AppendUint32(buf, uint32(len(s)))
	return append(buf, s...)
}

// appendTSVector appends a tsvector of words without positions: the
// count, then each word NUL-terminated with a position count of 0.
func appendTSVector[W string | []byte](buf []byte, words []W) []byte {
	size := 4
	for _, w := range words {
		size += len(w) + 3
	}
	buf = binary.BigEndian.AppendUint32(buf, uint32(size))
	buf = binary.BigEndian.AppendUint32(buf, uint32(len(words)))
	for _, w := range words {
		buf = append(buf, w...)
		buf = append(buf, 0, 0, 0)
	}
	return buf
}

// pendingEvent is an event of the commit, with its envelope, to be
// written by COPY.
type pendingEvent struct {
	org int64
	e   *veritrail.Event
	env []byte
}

// eventEncoder encodes events rows (eventColumns) and contents rows
// (contentColumns), reusing its buffers from row to row.
type eventEncoder struct {
	events []pendingEvent
	// The words of the envelope and of the content, and the lowered
	// words of both, sorted.
	envText, contentText []byte
	sorted, merged       [][]byte
	order                wordOrder
	tsv                  tsvBuilder // for words past the tsvector's limits
	keys                 [len(keyFields)]string
	has                  [len(keyFields)]bool
	// envelopes holds the events' envelopes, copied in (keep): one
	// allocation per 64 KiB rather than one per event.
	envelopes []byte
}

// keep returns a copy of env in x's envelope memory.
func (x *eventEncoder) keep(env []byte) []byte {
	if cap(x.envelopes)-len(x.envelopes) < len(env) {
		x.envelopes = make([]byte, 0, max(64<<10, len(env)))
	}
	n := len(x.envelopes)
	x.envelopes = append(x.envelopes, env...)
	return x.envelopes[n:len(x.envelopes):len(x.envelopes)]
}

// eventRow appends the events row of events[i].
func (x *eventEncoder) eventRow(buf []byte, i int) []byte {
	p := &x.events[i]
	e := p.e
	buf = appendFieldCount(buf, len(eventColumns))
	buf = appendInt8(buf, p.org)
	buf = appendInt8(buf, e.Seq)
	buf = appendInt8(buf, e.Time.UnixNano())
	buf = appendText(buf, e.ID)
	buf = appendText(buf, e.Category())
	// The keys Prepare computed (on the ingest goroutine, off the
	// commit); a column without a key stays NULL.
	clear(x.has[:])
	for _, k := range e.IndexKeys() {
		if i := keyPos[k.Field]; i > 0 {
			x.keys[i-1], x.has[i-1] = k.Key, true
		}
	}
	for i, k := range x.keys {
		if x.has[i] {
			buf = appendText(buf, k)
		} else {
			buf = appendNull(buf)
		}
	}
	buf = appendBytes(buf, p.env)
	// The envelope's words, from the event's fields: the envelope need
	// not be scanned again (AppendEventText's contract).
	x.envText = veritrail.AppendEventText(x.envText[:0], e)
	x.contentText = x.contentText[:0]
	if len(e.Content) > 0 {
		x.contentText = veritrail.AppendContentText(x.contentText, e.Content, "")
	}
	// Each lowered word once, in PostgreSQL's order of lexemes
	// (bytewise), which spares it the sort; words past a tsvector's
	// limit are rare enough to take the builder's slower way.
	var size int
	low := appendLowered(x.sorted[:0], x.envText, &size)
	nEnv := len(low)
	low = appendLowered(low, x.contentText, &size)
	x.sorted = low
	if size > maxLexemes {
		return x.appendWordsLimited(buf, len(e.Content) > 0)
	}
	env := x.order.sort(low[:nEnv])
	buf = appendTSVector(buf, env)
	if len(e.Content) == 0 {
		return appendNull(buf)
	}
	x.merged = mergeWords(x.merged[:0], env, x.order.sort(low[nEnv:]))
	return appendTSVector(buf, x.merged)
}

// mergeWords appends the union of two sorted sets of words, sorted.
func mergeWords(dst, a, b [][]byte) [][]byte {
	for len(a) > 0 && len(b) > 0 {
		switch c := bytes.Compare(a[0], b[0]); {
		case c < 0:
			dst, a = append(dst, a[0]), a[1:]
		case c > 0:
			dst, b = append(dst, b[0]), b[1:]
		default:
			dst, a, b = append(dst, a[0]), a[1:], b[1:]
		}
	}
	return append(append(dst, a...), b...)
}

// appendWordsLimited appends tsv_env and tsv_all of words too many for one
// tsvector: the builder keeps the first words, in the order they come,
// up to PostgreSQL's limit.
func (x *eventEncoder) appendWordsLimited(buf []byte, hasContent bool) []byte {
	x.tsv.reset()
	x.tsv.add(x.envText)
	buf = appendTSVector(buf, slices.Sorted(slices.Values(x.tsv.words())))
	if !hasContent {
		return appendNull(buf)
	}
	x.tsv.add(x.contentText)
	return appendTSVector(buf, slices.Sorted(slices.Values(x.tsv.words())))
}

// appendLowered appends the lowered words of space-separated text, but
// those too long for a lexeme (tsvBuilder.add's words, before it
// deduplicates), and adds their lengths to size. It lowers ASCII letters
// in text itself (the encoder's own copy), so that a capitalized word
// costs no allocation, in the same pass that splits the words; a word
// with other runes is lowered by lowerWord (to which its ASCII letters,
// already lowered, make no difference).
func appendLowered(dst [][]byte, text []byte, size *int) [][]byte {
	start, ascii := 0, true
	for i := 0; i <= len(text); i++ {
		c := byte(' ')
		if i < len(text) {
			c = text[i]
		}
		switch {
		case c == ' ':
			if i > start {
				w := text[start:i]
				if !ascii {
					w = lowerWord(w)
				}
				if len(w) <= maxLexeme {
					dst = append(dst, w)
					*size += len(w)
				}
			}
			start, ascii = i+1, true
		case c >= 'A' && c <= 'Z':
			text[i] = c + 'a' - 'A'
		case c >= utf8.RuneSelf:
			ascii = false
		}
	}
	return dst
}

// wordOrder sorts the words of one event bytewise and drops repeats,
// reusing its buffers. It sorts integers, each a word's first 7 bytes
// (zero-padded) above its index, and compares whole words only among
// those that share their first 7 bytes: slices.SortFunc with
// bytes.Compare was a third of the encoding of an event.
type wordOrder struct {
	keys  []uint64
	words [][]byte
}

// sort sorts words and returns them without repeats, in words' memory.
func (o *wordOrder) sort(words [][]byte) [][]byte {
	n := len(words)
	if n > 256 { // indexes past a byte: rare, the plain way
		slices.SortFunc(words, bytes.Compare)
		return slices.CompactFunc(words, bytes.Equal)
	}
	keys := o.keys[:0]
	for i, w := range words {
		keys = append(keys, wordPrefix(w)<<8|uint64(i))
	}
	slices.Sort(keys)
	// Zero padding sorts a prefix of a word before it, as bytes.Compare
	// does, so words of different prefixes are in order; a run of one
	// prefix is sorted and compacted word by word.
	in := append(o.words[:0], words...)
	out := words[:0]
	for a := 0; a < n; {
		b := a + 1
		for b < n && keys[b]>>8 == keys[a]>>8 {
			b++
		}
		start := len(out)
		for _, k := range keys[a:b] {
			out = append(out, in[k&0xff])
		}
		if b-a > 1 {
			run := out[start:]
			slices.SortFunc(run, bytes.Compare)
			out = out[:start+len(slices.CompactFunc(run, bytes.Equal))]
		}
		a = b
	}
	o.keys, o.words = keys, in
	return out
}

// wordPrefix is w's first 7 bytes, big-endian, zero-padded.
func wordPrefix(w []byte) uint64 {
	if len(w) >= 8 {
		return binary.BigEndian.Uint64(w) >> 8
	}
	var b [8]byte
	copy(b[:], w)
	return binary.BigEndian.Uint64(b[:]) >> 8
}

// contentRow appends the contents row of the i-th event with content.
func (x *eventEncoder) contentRow(withContent []int) func(buf []byte, i int) []byte {
	return func(buf []byte, i int) []byte {
		p := &x.events[withContent[i]]
		e := p.e
		buf = appendFieldCount(buf, len(contentColumns))
		buf = appendInt8(buf, p.org)
		buf = appendInt8(buf, e.Seq)
		buf = appendInt8(buf, e.Time.UnixNano())
		buf = appendText(buf, e.Category())
		buf = appendBytes(buf, e.ContentSalt)
		return appendBytes(buf, e.Content)
	}
}
