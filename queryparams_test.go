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
		"type=!":                            `parameter type: "!" excludes`,
		"class=sign_in":                     "parameter class",
		"since=-24x":                        "parameter since",
		"since=-":                           "parameter since",
		"since=now-":                        "parameter since",
		"since=nowish":                      "parameter since",
		"since=-99999999999w":               "more than 100 years",
		"until=-7d&since=-1d":               "must be before until",
		"since=2026-06-01T10:00:00 02:00":   "did you mean 2026-06-01T10:00:00+02:00? A + in a URL's query must be encoded as %2B",
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
	for _, s := range []string{"type=!audit.*,auth.*", "actor_id=%5C%21x", "since=-1d12h&until=now", "since=now-90m", "class=authentication,!6003", "user_agent=curl/*&request_id=r1"} {
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

func TestParseQueryExcludes(t *testing.T) {
	vals, _ := url.ParseQuery(`type=auth.*,!auth.logout&type=!audit.*&actor_id=%5C%21bang&outcome=!success`)
	q, err := veritrail.ParseQuery(vals, false)
	if err != nil {
		t.Fatal(err)
	}
	ev := func(typ, actor, outcome string) *veritrail.Event {
		return &veritrail.Event{Type: typ, Actor: veritrail.Actor{Type: "user", ID: actor}, Outcome: outcome}
	}
	for _, tc := range []struct {
		e    *veritrail.Event
		want bool
	}{
		{ev("auth.login", "!bang", "failure"), true},
		{ev("auth.login", "!bang", ""), true}, // no outcome: not excluded
		{ev("auth.login", "!bang", "success"), false},
		{ev("auth.logout", "!bang", "failure"), false},
		{ev("audit.query", "!bang", "failure"), false},
		{ev("auth.login", "bang", "failure"), false},
	} {
		if got := q.Match(tc.e); got != tc.want {
			t.Errorf("%s by %s (%s): %v, want %v", tc.e.Type, tc.e.Actor.ID, tc.e.Outcome, got, tc.want)
		}
	}
}

func TestParseQueryClass(t *testing.T) {
	for _, v := range []string{"authentication", "Authentication", "3002"} {
		q, err := veritrail.ParseQuery(url.Values{"class": {v}}, false)
		if err != nil {
			t.Fatal(err)
		}
		for typ, want := range map[string]bool{"auth.login": true, "authentication.sign_in_failed": true, "crm.user_login": true, "board.board_opened": false} {
			if got := q.Match(&veritrail.Event{Type: typ}); got != want {
				t.Errorf("class=%s, %s: %v", v, typ, got)
			}
		}
	}
	q, err := veritrail.ParseQuery(url.Values{"class": {"!api_activity"}}, false)
	if err != nil || q.Match(&veritrail.Event{Type: "agent.tool_call"}) || !q.Match(&veritrail.Event{Type: "team.member_added"}) {
		t.Errorf("class=!api_activity: %v", err)
	}
}

// Relative times are read against the first page's time, which the
// cursor carries: the second page, asked later, has the same window.
func TestParseQueryRelativeTimes(t *testing.T) {
	now := time.Date(2026, 6, 30, 12, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		since, until string
		want         [2]time.Time
	}{
		{"-24h", "now", [2]time.Time{now.Add(-24 * time.Hour), now}},
		{"-7d", "", [2]time.Time{now.AddDate(0, 0, -7), {}}},
		{"now-1d12h", "-90m", [2]time.Time{now.Add(-36 * time.Hour), now.Add(-90 * time.Minute)}},
		{"-2w", "2026-06-29", [2]time.Time{now.AddDate(0, 0, -14), time.Date(2026, 6, 29, 0, 0, 0, 0, time.UTC)}},
	} {
		vals := url.Values{"since": {tc.since}, "order": {"asc"}}
		if tc.until != "" {
			vals.Set("until", tc.until)
		}
		q, err := veritrail.ParseQueryAt(vals, false, now)
		if err != nil || !q.Since.Equal(tc.want[0]) || !q.Until.Equal(tc.want[1]) || !q.Anchor.Equal(now) {
			t.Errorf("since=%s until=%s: %v – %v (anchor %v), %v", tc.since, tc.until, q.Since, q.Until, q.Anchor, err)
			continue
		}
		page := &veritrail.Page{Next: &veritrail.Cursor{Order: q.Order, TimeNS: 5, Seq: 7, Fingerprint: q.Fingerprint()}}
		vals.Set("cursor", q.NextCursor(page))
		later, err := veritrail.ParseQueryAt(vals, false, now.Add(time.Hour))
		if err != nil || !later.Since.Equal(q.Since) || !later.Until.Equal(q.Until) || later.After == nil || later.After.Seq != 7 {
			t.Errorf("since=%s until=%s, next page: %+v, %v", tc.since, tc.until, later, err)
		}
	}
	// An anchored cursor is not valid for the same query in absolute
	// times, nor the other way round.
	abs := url.Values{"since": {"2026-06-29T12:00:00Z"}, "order": {"asc"}}
	q, _ := veritrail.ParseQueryAt(abs, false, now)
	if !q.Anchor.IsZero() {
		t.Fatalf("anchor without relative times: %v", q.Anchor)
	}
	absCursor := q.NextCursor(&veritrail.Page{Next: &veritrail.Cursor{Order: q.Order, Fingerprint: q.Fingerprint()}})
	rel := url.Values{"since": {"-24h"}, "order": {"asc"}, "cursor": {absCursor}}
	if _, err := veritrail.ParseQueryAt(rel, false, now); veritrail.ErrorCode(err) != veritrail.EInvalidCursor {
		t.Errorf("an absolute query's cursor on a relative one: %v", err)
	}
}
