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

// Filter keeps events whose Field value lies in any of Ranges.
type Filter struct {
	Field  Field
	Ranges []KeyRange
}

// ParseFilterValue turns a query-parameter value into a key range:
// exact values; "auth.*" for a type prefix; a CIDR such as 10.0.0.0/8 for ip;
// "4xx" for a status class.
func ParseFilterValue(f Field, v string) (KeyRange, error) {
	if v == "" {
		return KeyRange{}, Errorf(EInvalid, "parameter %s: empty value", f)
	}
	switch f {
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
		k, ok := e.IndexKey(f.Field)
		if !ok {
			return false
		}
		hit := false
		for _, r := range f.Ranges {
			if r.Contains(k) {
				hit = true
				break
			}
		}
		if !hit {
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
	for _, f := range q.Filters {
		h.Write([]byte{0xff, byte(f.Field)})
		for _, r := range f.Ranges {
			h.Write([]byte(r.Lo))
			h.Write([]byte{0})
			h.Write([]byte(r.Hi))
			h.Write([]byte{0})
		}
	}
	h.Write([]byte(q.Text))
	return h.Sum32()
}

const cursorVersion = 1

// Encode returns the opaque, URL-safe form of the cursor.
func (c *Cursor) Encode() string {
	b := make([]byte, 0, 32)
	b = append(b, cursorVersion, byte(c.Order))
	b = binary.AppendVarint(b, c.TimeNS)
	b = binary.AppendVarint(b, c.Seq)
	b = binary.BigEndian.AppendUint32(b, c.Fingerprint)
	return base64.RawURLEncoding.EncodeToString(b)
}

// DecodeCursor parses a cursor made by Encode for query q.
func DecodeCursor(s string, q *Query) (*Cursor, error) {
	bad := Errorf(EInvalidCursor, "cursor is not valid for this query; start again without cursor")
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil || len(b) < 2 || b[0] != cursorVersion {
		return nil, bad
	}
	c := &Cursor{Order: Order(b[1])}
	b = b[2:]
	var n int
	if c.TimeNS, n = binary.Varint(b); n <= 0 {
		return nil, bad
	}
	b = b[n:]
	if c.Seq, n = binary.Varint(b); n <= 0 || c.Seq < -1 {
		return nil, bad
	}
	b = b[n:]
	if len(b) != 4 {
		return nil, bad
	}
	c.Fingerprint = binary.BigEndian.Uint32(b)
	if c.Order != q.Order || c.Fingerprint != q.Fingerprint() {
		return nil, bad
	}
	return c, nil
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
