package veritrail_test

import (
	"encoding/base64"
	"net/url"
	"strings"
	"testing"
	"time"

	veritrail "github.com/veritrail/veritrail"
)

func TestParseTime(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want time.Time
		ok   bool
	}{
		{"2026-06-20T14:32:01Z", time.Date(2026, 6, 20, 14, 32, 1, 0, time.UTC), true},
		{"2025-12-05T10:15:00.00Z", time.Date(2025, 12, 5, 10, 15, 0, 0, time.UTC), true},
		{"2026-06-20T16:32:01.123456789+02:00", time.Date(2026, 6, 20, 14, 32, 1, 123456789, time.UTC), true},
		{"2026-06-20", time.Date(2026, 6, 20, 0, 0, 0, 0, time.UTC), true},
		{"yesterday", time.Time{}, false},
		{"2026-06-20T14:32", time.Time{}, false},
		{"", time.Time{}, false},
	} {
		got, err := veritrail.ParseTime(tc.in)
		if (err == nil) != tc.ok || !got.Equal(tc.want) || (tc.ok && got.Location() != time.UTC) {
			t.Errorf("ParseTime(%q) = %v, %v", tc.in, got, err)
		}
	}
}

func TestParseQueryRefuses(t *testing.T) {
	for query, want := range map[string]string{
		"limit=0":                           "parameter limit",
		"limit=1&limit=2":                   "parameter limit: give it once",
		"order=sideways":                    "parameter order",
		"since=yesterday":                   "parameter since",
		"since=2026-02-02&until=2026-02-01": "since (2026-02-02T00:00:00Z) must be before until",
		"usr=alice":                         `unknown parameter "usr"`,
		"cursor=garbage":                    "cursor",
		"ip=10.0.0.0/99":                    "ip",
	} {
		vals, _ := url.ParseQuery(query)
		_, err := veritrail.ParseQuery(vals, false)
		if err == nil || !strings.Contains(err.Error(), want) || veritrail.ErrorCode(err) == veritrail.EInternal {
			t.Errorf("%s: %v, want a coded error naming %q", query, err, want)
		}
	}
	q, err := veritrail.ParseQuery(url.Values{"type": {"auth.*,admin.*"}, "q": {" word "}, "order": {"seq"}}, true)
	if err != nil || len(q.Filters) != 1 || len(q.Filters[0].Ranges) != 2 || q.Text != "word" || q.Order != veritrail.OrderSeq || !q.WithContent || !q.TextInContent {
		t.Errorf("query: %+v, %v", q, err)
	}
}

// FuzzParseQuery: any query string is parsed or refused with a coded
// error, never a panic or an internal error.
func FuzzParseQuery(f *testing.F) {
	for _, s := range []string{"type=auth.*&since=2026-01-01", "ip=10.0.0.0/8,::1&status=5xx", "q=a*&order=asc&limit=5", "cursor=AAAA", "actor_email=A@B.example"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		vals, err := url.ParseQuery(raw)
		if err != nil {
			return
		}
		if _, err := veritrail.ParseQuery(vals, true); err != nil && veritrail.ErrorCode(err) == veritrail.EInternal {
			t.Fatalf("%q: uncoded error %v", raw, err)
		}
	})
}

// FuzzDecodeCursor: any bytes given as a cursor are refused with
// invalid_cursor or decode to a cursor of the query whose encoding decodes
// to the same cursor, never a panic; seeds are real cursors of each order.
func FuzzDecodeCursor(f *testing.F) {
	q := &veritrail.Query{Order: veritrail.OrderDesc}
	for _, c := range []veritrail.Cursor{
		{Order: veritrail.OrderDesc, TimeNS: 1_780_000_000_000_000_000, Seq: 42, Fingerprint: q.Fingerprint()},
		{Order: veritrail.OrderAsc, TimeNS: -1, Seq: -1},
		{Order: veritrail.OrderSeq, Seq: 1 << 40},
	} {
		raw, _ := base64.RawURLEncoding.DecodeString(c.Encode())
		f.Add(raw)
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		s := base64.RawURLEncoding.EncodeToString(raw)
		c, err := veritrail.DecodeCursor(s, q)
		if err != nil {
			if veritrail.ErrorCode(err) != veritrail.EInvalidCursor {
				t.Fatalf("%x: %v, want invalid_cursor", raw, err)
			}
			return
		}
		again, err := veritrail.DecodeCursor(c.Encode(), q)
		if err != nil || *again != *c {
			t.Fatalf("%x decodes to %+v, encoded and decoded again to %+v %v", raw, c, again, err)
		}
	})
}
