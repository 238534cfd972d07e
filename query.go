package veritrail

import (
	"encoding/base64"
	"encoding/binary"
	"hash/fnv"
	"net/netip"
	"strconv"
	"strings"
	"time"
)

// Order is the order of a query's results.
type Order uint8

const (
	// OrderDesc sorts by time, newest first; ties by seq, highest first.
	OrderDesc Order = iota
	// OrderAsc sorts by time, oldest first; ties by seq, lowest first.
	OrderAsc
	// OrderSeq is the polling mode: storage order, ascending seq. Its pages
	// always carry a next cursor, so a poller keeps it and asks again later.
	OrderSeq
)

func (o Order) String() string {
	switch o {
	case OrderAsc:
		return "asc"
	case OrderSeq:
		return "seq"
	}
	return "desc"
}

// ParseOrder parses "desc", "asc" or "seq" ("" is desc).
func ParseOrder(s string) (Order, bool) {
	switch s {
	case "", "desc":
		return OrderDesc, true
	case "asc":
		return OrderAsc, true
	case "seq":
		return OrderSeq, true
	}
	return 0, false
}

// Query limits.
const (
	DefaultLimit = 100
	MaxLimit     = 1000
)

// KeyRange is a range [Lo, Hi) of index keys (see Event.IndexKey). Hi == ""
// means no upper bound.
type KeyRange struct {
	Lo, Hi string
}

// Contains reports whether key k is in the range.
func (r KeyRange) Contains(k string) bool {
	return k >= r.Lo && (r.Hi == "" || k < r.Hi)
}

// Exact returns the range holding exactly key k.
func Exact(k string) KeyRange { return KeyRange{Lo: k, Hi: k + "\x00"} }

// PrefixRange returns the range of the keys that begin with p.
func PrefixRange(p string) KeyRange {
	hi := []byte(p)
	for len(hi) > 0 && hi[len(hi)-1] == 0xff {
		hi = hi[:len(hi)-1]
	}
	if len(hi) == 0 {
		return KeyRange{Lo: p}
	}
	hi[len(hi)-1]++
	return KeyRange{Lo: p, Hi: string(hi)}
}

// Filter keeps events whose Field value lies in any of Ranges and in none
// of Exclude. With Ranges empty it keeps every event not excluded, those
// without a value for the field included (type=!audit.* keeps events of
// every other type; actor_email=!x@example.com keeps events without an
// address); with Ranges given, an event needs a value in one of them. A
// filter with neither keeps nothing.
type Filter struct {
	Field   Field
	Ranges  []KeyRange
	Exclude []KeyRange
}

// MatchKey reports whether an event whose key for the filter's field is k
// (has: whether it has one) passes the filter. It is the reference
// semantics of filters; Query.Match applies it to every filter.
func (f *Filter) MatchKey(k string, has bool) bool {
	if has {
		for _, r := range f.Exclude {
			if r.Contains(k) {
				return false
			}
		}
	}
	if len(f.Ranges) == 0 {
		return len(f.Exclude) > 0
	}
	if !has {
		return false
	}
	for _, r := range f.Ranges {
		if r.Contains(k) {
			return true
		}
	}
	return false
}

// ParseFilterValue turns a query-parameter value into a key range:
// exact values; "auth.*" for a type prefix; a CIDR such as 10.0.0.0/8 for ip;
// "4xx" for a status class; a class by its name ("authentication") or uid;
// "curl/*" for a user agent prefix.
func ParseFilterValue(f Field, v string) (KeyRange, error) {
	if v == "" {
		return KeyRange{}, Errorf(EInvalid, "parameter %s: empty value", f)
	}
	switch f {
	case FieldClass:
		c, ok := parseClass(v)
		if !ok {
			names := make([]string, len(Classes))
			for i, c := range Classes {
				names[i] = ClassKey(c)
			}
			return KeyRange{}, Errorf(EInvalid, "parameter class: %q is not an OCSF class: %s (or its uid, such as %d)", v, strings.Join(names, ", "), ClassAuthentication)
		}
		return Exact(ClassKey(c)), nil
	case FieldUserAgent:
		if p, ok := strings.CutSuffix(v, "*"); ok {
			return PrefixRange(p), nil
		}
		return Exact(v), nil
	case FieldType:
		v = strings.ToLower(v)
		if p, ok := strings.CutSuffix(v, ".*"); ok {
			if !ValidType(p+".x") && !validCategory(p) {
				return KeyRange{}, Errorf(EInvalid, "parameter type: %q is not a type prefix such as auth.*", v)
			}
			return KeyRange{Lo: p + ".", Hi: p + "/"}, nil // '/' follows '.'
		}
		if !ValidType(v) {
			return KeyRange{}, Errorf(EInvalid, "parameter type: %q is not a type such as auth.login or a prefix such as auth.*", v)
		}
		return Exact(v), nil
	case FieldActorEmail:
		return Exact(strings.ToLower(v)), nil
	case FieldOutcome:
		v = strings.ToLower(v)
		if v != OutcomeSuccess && v != OutcomeFailure {
			return KeyRange{}, Errorf(EInvalid, "parameter outcome: must be success or failure, got %q", v)
		}
		return Exact(v), nil
	case FieldDecision:
		v = strings.ToLower(v)
		if v != DecisionAllowed && v != DecisionBlocked && v != DecisionRedacted {
			return KeyRange{}, Errorf(EInvalid, "parameter decision: must be allowed, blocked or redacted, got %q", v)
		}
		return Exact(v), nil
	case FieldStatus:
		if len(v) == 3 && v[0] >= '1' && v[0] <= '9' && strings.EqualFold(v[1:], "xx") {
			base := int64(v[0]-'0') * 100
			return KeyRange{Lo: StatusKey(base), Hi: StatusKey(base + 100)}, nil
		}
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return KeyRange{}, Errorf(EInvalid, "parameter status: must be an integer such as 403 or a class such as 5xx, got %q", v)
		}
		return Exact(StatusKey(n)), nil
	case FieldIP:
		if strings.Contains(v, "/") {
			p, err := netip.ParsePrefix(v)
			if err != nil {
				return KeyRange{}, Errorf(EInvalid, "parameter ip: %q is not an address or CIDR prefix", v)
			}
			p = p.Masked()
			bits := p.Bits()
			if p.Addr().Is4() {
				bits += 96
			}
			lo := []byte(IPKey(p.Addr()))
			hi := append([]byte(nil), lo...)
			for i := bits; i < 128; i++ {
				hi[i/8] |= 1 << (7 - i%8)
			}
			// hi is the last address; the range ends just past it.
			return KeyRange{Lo: string(lo), Hi: string(hi) + "\x00"}, nil
		}
		a, err := netip.ParseAddr(v)
		if err != nil {
			return KeyRange{}, Errorf(EInvalid, "parameter ip: %q is not an address or CIDR prefix", v)
		}
		return Exact(IPKey(a)), nil
	}
	return Exact(v), nil
}

func validCategory(s string) bool {
	if s == "" || len(s) > maxTypeLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_') {
			return false
		}
	}
	return true
}

// Query selects events of one organization. All filters must match (AND);
// within a filter any range may match (OR).
type Query struct {
	Since time.Time // inclusive; zero means unbounded
	Until time.Time // exclusive; zero means unbounded

	Filters []Filter

	// Text is a full-text query: words, all of which must appear (a trailing
	// * makes a word a prefix). TextInContent lets words match content;
	// without it only envelope text is searched, so a reader who may not see
	// content cannot probe it.
	Text          string
	TextInContent bool

	Order Order
	Limit int
	After *Cursor // resume after this position

	// Anchor is the time relative times in the parameters ("-24h", "now")
	// were read against; zero when there were none. Cursors carry it
	// (NextCursor), so every page of a query has the same window.
	Anchor time.Time

	// WithContent returns content (and salts) with the events.
	WithContent bool
}

// Match reports whether e passes q's filters and time window. It is the
// reference semantics that every store's index must agree with (Text aside,
// which depends on the store's tokenizer).
func (q *Query) Match(e *Event) bool {
	if !q.Since.IsZero() && e.Time.Before(q.Since) {
		return false
	}
	if !q.Until.IsZero() && !e.Time.Before(q.Until) {
		return false
	}
	for _, f := range q.Filters {
		if !f.MatchKey(e.IndexKey(f.Field)) {
			return false
		}
	}
	return true
}

// Cursor is a position in a query's results: the last event returned.
type Cursor struct {
	Order  Order
	TimeNS int64 // for OrderAsc / OrderDesc
	Seq    int64
	// Fingerprint ties the cursor to the query it came from.
	Fingerprint uint32
	// Anchor is the time (unix ns) relative times ("-24h") were read
	// against on the first page, so that later pages keep its window;
	// 0 when the query has none.
	Anchor int64
}

// Fingerprint returns a hash of the parts of q that define its result set,
// so a cursor cannot silently be applied to a different query.
func (q *Query) Fingerprint() uint32 {
	h := fnv.New32a()
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], uint64(q.Since.UnixNano()))
	h.Write(b[:])
	binary.BigEndian.PutUint64(b[:], uint64(q.Until.UnixNano()))
	h.Write(b[:])
	h.Write([]byte{byte(q.Order)})
	writeRanges := func(rs []KeyRange) {
		for _, r := range rs {
			h.Write([]byte(r.Lo))
			h.Write([]byte{0})
			h.Write([]byte(r.Hi))
			h.Write([]byte{0})
		}
	}
	for _, f := range q.Filters {
		h.Write([]byte{0xff, byte(f.Field)})
		writeRanges(f.Ranges)
		if len(f.Exclude) > 0 {
			h.Write([]byte{0xfe})
			writeRanges(f.Exclude)
		}
	}
	h.Write([]byte(q.Text))
	return h.Sum32()
}

// Cursor versions: 1 without an anchor, 2 with one (after the seq).
const (
	cursorVersion         = 1
	cursorVersionAnchored = 2
)

// Encode returns the opaque, URL-safe form of the cursor.
func (c *Cursor) Encode() string {
	b := make([]byte, 0, 40)
	if c.Anchor != 0 {
		b = append(b, cursorVersionAnchored, byte(c.Order))
	} else {
		b = append(b, cursorVersion, byte(c.Order))
	}
	b = binary.AppendVarint(b, c.TimeNS)
	b = binary.AppendVarint(b, c.Seq)
	if c.Anchor != 0 {
		b = binary.AppendVarint(b, c.Anchor)
	}
	b = binary.BigEndian.AppendUint32(b, c.Fingerprint)
	return base64.RawURLEncoding.EncodeToString(b)
}

var errBadCursor = Errorf(EInvalidCursor, "cursor is not valid for this query; start again without cursor")

// decodeCursor parses a cursor's wire form without checking it against a
// query.
func decodeCursor(s string) (*Cursor, error) {
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil || len(b) < 2 || (b[0] != cursorVersion && b[0] != cursorVersionAnchored) {
		return nil, errBadCursor
	}
	anchored := b[0] == cursorVersionAnchored
	c := &Cursor{Order: Order(b[1])}
	b = b[2:]
	var n int
	if c.TimeNS, n = binary.Varint(b); n <= 0 {
		return nil, errBadCursor
	}
	b = b[n:]
	if c.Seq, n = binary.Varint(b); n <= 0 || c.Seq < -1 {
		return nil, errBadCursor
	}
	b = b[n:]
	if anchored {
		if c.Anchor, n = binary.Varint(b); n <= 0 || c.Anchor == 0 {
			return nil, errBadCursor
		}
		b = b[n:]
	}
	if len(b) != 4 {
		return nil, errBadCursor
	}
	c.Fingerprint = binary.BigEndian.Uint32(b)
	return c, nil
}

// DecodeCursor parses a cursor made by Encode for query q.
func DecodeCursor(s string, q *Query) (*Cursor, error) {
	c, err := decodeCursor(s)
	if err != nil {
		return nil, err
	}
	if c.Order != q.Order || c.Fingerprint != q.Fingerprint() || c.Anchor != anchorNS(q.Anchor) {
		return nil, errBadCursor
	}
	return c, nil
}

func anchorNS(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

// NextCursor is the wire form of the page's next cursor for q ("" when
// there is none), carrying q's anchor so that the next page reads its
// relative times as this one did.
func (q *Query) NextCursor(p *Page) string {
	if p.Next == nil {
		return ""
	}
	c := *p.Next
	c.Anchor = anchorNS(q.Anchor)
	return c.Encode()
}

// StoredEvent is an event as a store returns it: the exact envelope bytes,
// and the content with its salt when asked for and still present.
type StoredEvent struct {
	Seq      int64
	TimeNS   int64
	Envelope []byte
	Content  []byte
	Salt     []byte
}

// Page is one page of query results.
type Page struct {
	Events []StoredEvent
	// Next is where the following page starts; nil when there is none. In
	// OrderSeq it is never nil.
	Next *Cursor
}
