package postgres

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	veritrail "github.com/veritrail/veritrail"
	"github.com/veritrail/veritrail/demo"
)

// copyBenchEvents are events like veritrail bench's: actor, target,
// context and a content of a prompt and a response.
func copyBenchEvents(n int) []pendingEvent {
	evs := make([]pendingEvent, n)
	t0 := time.Now().UTC()
	for i := range evs {
		e := &veritrail.Event{ID: fmt.Sprintf("evt_bench_%08d", i), Seq: int64(i), Type: "ai.interaction",
			Time:    t0.Add(time.Duration(i) * time.Millisecond),
			Actor:   veritrail.Actor{Type: "user", ID: fmt.Sprintf("u%d", i%50), Email: fmt.Sprintf("user%d@example.com", i%50)},
			Target:  &veritrail.Target{Type: "model", ID: "gpt-4o"},
			Context: &veritrail.Context{IP: fmt.Sprintf("10.0.%d.%d", i%7, i%200), RequestID: fmt.Sprintf("req-%d", i)},
			Outcome: "success",
			Content: []byte(fmt.Sprintf(`{"prompt":"Summarize the quarterly report for team %d and list the open risks","response":"The report shows revenue up 4%% and two open risks: vendor delay and hiring"}`, i%9)),
		}
		e.SealContent()
		e.Prepare()
		evs[i] = pendingEvent{1, e, veritrail.AppendEnvelope(nil, e)}
	}
	return evs
}

// BenchmarkEncodeEvents: the commit lane's work to put one event into the
// COPY data of events and contents (ns/op and allocs/op are per event).
func BenchmarkEncodeEvents(b *testing.B) {
	benchEncode(b, copyBenchEvents(1000))
}

// benchEncode encodes the events rows of evs, and the contents rows of
// those with content, one event an iteration.
func benchEncode(b *testing.B, evs []pendingEvent) {
	x := &eventEncoder{events: evs}
	var withContent []int
	for i, p := range evs {
		if len(p.e.Content) > 0 {
			withContent = append(withContent, i)
		}
	}
	content := x.contentRow(withContent)
	var buf []byte
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		buf = x.eventRow(buf[:0], i)
		if i < len(withContent) {
			buf = content(buf, i)
		}
		i = (i + 1) % len(evs)
	}
}

// BenchmarkEncodeDemoEvents: the same for the load generator's events
// (veritrail bench sends demo.Event's mix: ~24 envelope words and ~26
// content words an event).
func BenchmarkEncodeDemoEvents(b *testing.B) {
	rnd := rand.New(rand.NewPCG(1, 2))
	now := time.Now()
	evs := make([]pendingEvent, 1000)
	for i := range evs {
		dec := veritrail.NewDecoder(bytes.NewReader(demo.Event(nil, rnd, "", now)), veritrail.DefaultLimits, now)
		e, err := dec.Next()
		if err != nil {
			b.Fatal(err)
		}
		e.Seq = int64(i)
		e.SealContent()
		e.Prepare()
		evs[i] = pendingEvent{1, e, veritrail.AppendEnvelope(nil, e)}
	}
	benchEncode(b, evs)
}

// copyFields splits one binary COPY row into its fields (nil for NULL).
func copyFields(t *testing.T, row []byte) [][]byte {
	t.Helper()
	n := int(binary.BigEndian.Uint16(row))
	row = row[2:]
	var out [][]byte
	for range n {
		l := int32(binary.BigEndian.Uint32(row))
		row = row[4:]
		if l < 0 {
			out = append(out, nil)
			continue
		}
		out = append(out, row[:l])
		row = row[l:]
	}
	if len(row) != 0 {
		t.Fatalf("%d bytes after the row's %d fields", len(row), n)
	}
	return out
}

// tsvWords reads a binary tsvector of words without positions.
func tsvWords(t *testing.T, f []byte) []string {
	t.Helper()
	n := int(binary.BigEndian.Uint32(f))
	f = f[4:]
	var out []string
	for range n {
		i := bytes.IndexByte(f, 0)
		if i < 0 || len(f) < i+3 || f[i+1] != 0 || f[i+2] != 0 {
			t.Fatalf("malformed lexeme at %q", f)
		}
		out = append(out, string(f[:i]))
		f = f[i+3:]
	}
	if len(f) != 0 {
		t.Fatalf("%d bytes after %d lexemes", len(f), n)
	}
	return out
}

// TestEncodedWords: the words COPY sends for tsv_env and tsv_all are the
// ones tsvBuilder makes (what verify checks on the stored rows), each
// once and in PostgreSQL's order of lexemes, also when they pass the
// tsvector's limits and the encoder keeps the first of them.
func TestEncodedWords(t *testing.T) {
	long := strings.Repeat("w", maxLexeme+1)
	many := func(n int) string {
		var b strings.Builder
		for i := range n {
			fmt.Fprintf(&b, "word%07d%s ", i, strings.Repeat("x", 40))
		}
		return b.String()
	}
	for _, tc := range []struct {
		name    string
		actor   string
		content string
	}{
		{"no content", "Alice Ålander", ""},
		{"content repeats envelope words", "alice", `{"prompt":"ALICE alice Alice ai interaction émile"}`},
		{"a word too long for a lexeme", "bob", `{"prompt":"` + long + ` short"}`},
		{"words past the tsvector's size", "carol", `{"prompt":"` + many(25000) + `"}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := &veritrail.Event{ID: "evt_1", Seq: 7, Type: "ai.interaction", Time: time.Unix(1700000000, 5).UTC(),
				Actor: veritrail.Actor{Type: "user", ID: "u1", Name: tc.actor}}
			if tc.content != "" {
				e.Content = []byte(tc.content)
			}
			e.SealContent()
			e.Prepare()
			env := veritrail.AppendEnvelope(nil, e)
			x := &eventEncoder{events: []pendingEvent{{1, e, env}}}
			fields := copyFields(t, x.eventRow(nil, 0))
			if len(fields) != len(eventColumns) {
				t.Fatalf("%d fields, want %d", len(fields), len(eventColumns))
			}
			words := veritrail.AppendEnvelopeText(nil, env)
			var want tsvBuilder
			want.add(words)
			check := func(col string, f []byte, want []string) {
				got := tsvWords(t, f)
				if !slices.IsSorted(got) {
					t.Errorf("%s: lexemes not sorted", col)
				}
				if len(slices.Compact(slices.Clone(got))) != len(got) {
					t.Errorf("%s: a lexeme twice", col)
				}
				slices.Sort(got)
				want = slices.Sorted(slices.Values(want))
				if !slices.Equal(got, want) {
					t.Errorf("%s: %d words, want %d", col, len(got), len(want))
				}
			}
			check("tsv_env", fields[len(fields)-2], want.words())
			if tc.content == "" {
				if fields[len(fields)-1] != nil {
					t.Error("tsv_all is not NULL for an event without content")
				}
				return
			}
			want.add(veritrail.AppendContentText(words[:0], e.Content, ""))
			check("tsv_all", fields[len(fields)-1], want.words())
		})
	}
}

// TestCopyReader: the reader gives the header, every row in order and the
// trailer, whatever the size of the reads, and its buffer stays about the
// size of one read (it once grew to the whole COPY).
func TestCopyReader(t *testing.T) {
	row := func(buf []byte, i int) []byte {
		buf = appendFieldCount(buf, 2)
		buf = appendInt8(buf, int64(i))
		return appendText(buf, strings.Repeat("r", i%300))
	}
	const n = 20000
	want := append([]byte{}, copyHeader...)
	for i := range n {
		want = row(want, i)
	}
	want = append(want, 0xff, 0xff)
	for _, size := range []int{1, 7, 4096, 65531} {
		t.Run(fmt.Sprint(size), func(t *testing.T) {
			r := &copyReader{n: n, row: row}
			var got []byte
			p := make([]byte, size)
			for {
				k, err := r.Read(p)
				got = append(got, p[:k]...)
				if err == io.EOF {
					break
				}
				if err != nil {
					t.Fatal(err)
				}
				if k == 0 {
					t.Fatal("a read of 0 bytes without EOF")
				}
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("read %d bytes, want %d, or they differ", len(got), len(want))
			}
			if c := cap(r.buf); c > 2*max(size, 64<<10) {
				t.Errorf("the buffer grew to %d bytes for reads of %d", c, size)
			}
		})
	}
}

// TestWordOrder: wordOrder sorts and deduplicates as bytes.Compare and
// bytes.Equal do, for words that share 7-byte prefixes or are prefixes of
// each other, and past 256 words (its plain way).
func TestWordOrder(t *testing.T) {
	rnd := rand.New(rand.NewPCG(3, 4))
	alphabet := []byte("abcé\x00\xffZ0")
	var o wordOrder
	for round := range 2000 {
		n := rnd.IntN(40)
		if round%100 == 0 {
			n = 257 + rnd.IntN(300)
		}
		var words [][]byte
		for range n {
			w := make([]byte, 1+rnd.IntN(12))
			for i := range w {
				w[i] = alphabet[rnd.IntN(len(alphabet))]
			}
			words = append(words, w)
			if rnd.IntN(4) == 0 { // repeats and extensions of a word
				words = append(words, slices.Clone(w), append(slices.Clone(w), 'a'))
			}
		}
		want := slices.Clone(words)
		slices.SortFunc(want, bytes.Compare)
		want = slices.CompactFunc(want, bytes.Equal)
		got := o.sort(words)
		if !slices.EqualFunc(got, want, bytes.Equal) {
			t.Fatalf("round %d: %q, want %q", round, got, want)
		}
	}
}

// TestAppendLowered: the encoder's one-pass splitting and lowering gives
// the words of splitting at spaces and lowerWord, but those too long for a
// lexeme, and their size; on fixed words and on random text of ASCII
// (capitals included), accented and other non-ASCII letters and runs of
// spaces.
func TestAppendLowered(t *testing.T) {
	ref := func(text string) (words []string, size int) {
		for _, w := range strings.Split(text, " ") {
			if w == "" {
				continue
			}
			if lw := lowerWord([]byte(w)); len(lw) <= maxLexeme {
				words, size = append(words, string(lw)), size+len(lw)
			}
		}
		return words, size
	}
	check := func(text string) {
		t.Helper()
		var size int
		var got []string
		for _, w := range appendLowered(nil, []byte(text), &size) {
			got = append(got, string(w))
		}
		want, wantSize := ref(text)
		if !slices.Equal(got, want) || size != wantSize {
			t.Fatalf("%q: %q (%d bytes), want %q (%d)", text, got, size, want, wantSize)
		}
	}
	for _, text := range []string{"", " ", "abc", "ABC Ava", "ÉMILE AbÉ Ⱥx x1Y2 ß", "  two  spaces ", "Z", "Émile",
		strings.Repeat("W", maxLexeme) + " " + strings.Repeat("W", maxLexeme+1) + " tail"} {
		check(text)
	}
	rnd := rand.New(rand.NewPCG(3, 4))
	parts := []string{" ", " ", "a", "Z", "m", "Q", "9", "é", "É", "Å", "ß", "Ⱥ", "ǅ", "ИВАН", "ñ"}
	for range 20000 {
		var b strings.Builder
		for range rnd.IntN(30) {
			b.WriteString(parts[rnd.IntN(len(parts))])
		}
		check(b.String())
	}
}

// TestEncoderKeep: each kept envelope is a copy, unchanged by later ones
// and by reuse of the caller's memory, also past a chunk's end and for an
// envelope larger than a chunk.
func TestEncoderKeep(t *testing.T) {
	var x eventEncoder
	var kept [][]byte
	var want []string
	buf := make([]byte, 0, 200<<10)
	for i := range 3000 {
		n := 1 + i%900
		if i == 1500 {
			n = 100 << 10
		}
		buf = buf[:n]
		for j := range buf {
			buf[j] = byte(i + j)
		}
		kept = append(kept, x.keep(buf))
		want = append(want, string(buf))
	}
	for i := range kept {
		if string(kept[i]) != want[i] || cap(kept[i]) != len(kept[i]) {
			t.Fatalf("envelope %d changed, or may be appended to in place", i)
		}
	}
}

// BenchmarkWordOrder: sorting and deduplicating the words of the bench's
// events (their envelope words, then their content words), per event.
func BenchmarkWordOrder(b *testing.B) {
	rnd := rand.New(rand.NewPCG(1, 2))
	now := time.Now()
	var sets [][][]byte
	for range 256 {
		dec := veritrail.NewDecoder(bytes.NewReader(demo.Event(nil, rnd, "", now)), veritrail.DefaultLimits, now)
		e, err := dec.Next()
		if err != nil {
			b.Fatal(err)
		}
		var size int
		sets = append(sets, appendLowered(nil, veritrail.AppendEventText(nil, e), &size),
			appendLowered(nil, veritrail.AppendContentText(nil, e.Content, ""), &size))
	}
	var o wordOrder
	work := make([][]byte, 0, 512)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		for _, s := range sets[i%len(sets) : i%len(sets)+2] {
			o.sort(append(work[:0], s...))
		}
		i += 2
	}
}
