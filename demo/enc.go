package demo

import (
	"strconv"

	"github.com/veritrail/veritrail/internal/canonjson"
)

// enc appends JSON to a byte slice. Keys are trusted ASCII literals from this
// package; every value string is escaped. It keeps track of commas so the
// generators read as a list of fields.
type enc struct {
	b     []byte
	depth int
	more  [16]bool // more[d]: the container at depth d already has a member
}

func (w *enc) sep() {
	if w.more[w.depth] {
		w.b = append(w.b, ',')
	}
	w.more[w.depth] = true
}

func (w *enc) open(c byte) {
	w.b = append(w.b, c)
	w.depth++
	w.more[w.depth] = false
}

func (w *enc) key(k string) {
	w.sep()
	w.b = append(w.b, '"')
	w.b = append(w.b, k...)
	w.b = append(w.b, '"', ':')
}

// obj starts the object member k; end closes it.
func (w *enc) obj(k string) { w.key(k); w.open('{') }
func (w *enc) end()         { w.b = append(w.b, '}'); w.depth-- }

// arr starts the array member k; endArr closes it.
func (w *enc) arr(k string) { w.key(k); w.open('[') }
func (w *enc) endArr()      { w.b = append(w.b, ']'); w.depth-- }

// elem starts an object element of the current array.
func (w *enc) elem() { w.sep(); w.open('{') }

func (w *enc) str(k, v string) {
	w.key(k)
	w.b = canonjson.AppendString(w.b, v)
}

// strNE writes k only when v is not empty.
func (w *enc) strNE(k, v string) {
	if v != "" {
		w.str(k, v)
	}
}

func (w *enc) elemStr(v string) {
	w.sep()
	w.b = canonjson.AppendString(w.b, v)
}

func (w *enc) int(k string, v int64) {
	w.key(k)
	w.b = strconv.AppendInt(w.b, v, 10)
}

func (w *enc) bool(k string, v bool) {
	w.key(k)
	w.b = strconv.AppendBool(w.b, v)
}

// strs writes k as an array of strings.
func (w *enc) strs(k string, vs ...string) {
	w.arr(k)
	for _, v := range vs {
		w.elemStr(v)
	}
	w.endArr()
}

// A tmpl is text with $name placeholders, compiled once at init against
// varTable. '$' not followed by a lowercase letter is literal ("$48,000").
type tmpl []seg

type seg struct {
	lit string
	v   int // index into varTable, or -1
}

func compile(s string) tmpl {
	var t tmpl
	for {
		i := dollarVar(s)
		if i < 0 {
			if s != "" {
				t = append(t, seg{lit: s, v: -1})
			}
			return t
		}
		j := i + 1
		for j < len(s) && (s[j] >= 'a' && s[j] <= 'z' || s[j] >= '0' && s[j] <= '9') {
			j++
		}
		t = append(t, seg{lit: s[:i], v: varID(s[i+1 : j])})
		s = s[j:]
	}
}

func dollarVar(s string) int {
	for i := 0; i+1 < len(s); i++ {
		if s[i] == '$' && s[i+1] >= 'a' && s[i+1] <= 'z' {
			return i
		}
	}
	return -1
}
