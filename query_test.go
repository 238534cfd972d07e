package veritrail

import (
	"testing"
	"time"
)

func TestCursorRoundTrip(t *testing.T) {
	q := &Query{Order: OrderAsc, Text: "x"}
	c := &Cursor{Order: OrderAsc, TimeNS: -5, Seq: 1 << 40, Fingerprint: q.Fingerprint()}
	back, err := DecodeCursor(c.Encode(), q)
	if err != nil || *back != *c {
		t.Fatalf("%+v %v", back, err)
	}
	q.Anchor = time.Unix(0, 1781870400123456789)
	c.Anchor = q.Anchor.UnixNano()
	back, err = DecodeCursor(c.Encode(), q)
	if err != nil || *back != *c {
		t.Fatalf("anchored: %+v %v", back, err)
	}
	// Excluding is not selecting: the cursors differ.
	a := &Query{Filters: []Filter{{Field: FieldType, Ranges: []KeyRange{Exact("a.b")}}}}
	b := &Query{Filters: []Filter{{Field: FieldType, Exclude: []KeyRange{Exact("a.b")}}}}
	if a.Fingerprint() == b.Fingerprint() {
		t.Fatal("a filter and its exclusion share a fingerprint")
	}
}

func TestPrefixRange(t *testing.T) {
	for _, tc := range []struct {
		p    string
		want KeyRange
	}{{"curl/", KeyRange{"curl/", "curl0"}}, {"a\xff\xff", KeyRange{"a\xff\xff", "b"}}, {"\xff", KeyRange{Lo: "\xff"}}, {"", KeyRange{}}} {
		if got := PrefixRange(tc.p); got != tc.want {
			t.Errorf("PrefixRange(%q) = %q", tc.p, got)
		}
	}
	r, _ := ParseFilterValue(FieldUserAgent, "curl/*")
	for ua, want := range map[string]bool{"curl/8.5.0": true, "curl/": true, "curl": false, "Curl/8": false, "wget/1": false} {
		if r.Contains(ua) != want {
			t.Errorf("curl/* contains %q: %v", ua, !want)
		}
	}
}

func TestParseFilterValue(t *testing.T) {
	r, err := ParseFilterValue(FieldIP, "10.1.0.0/16")
	if err != nil {
		t.Fatal(err)
	}
	in := (&Event{Context: &Context{IP: "10.1.255.255"}})
	out := (&Event{Context: &Context{IP: "10.2.0.0"}})
	kin, _ := in.IndexKey(FieldIP)
	kout, _ := out.IndexKey(FieldIP)
	if !r.Contains(kin) || r.Contains(kout) {
		t.Fatal("CIDR range is wrong")
	}
	r, _ = ParseFilterValue(FieldStatus, "4xx")
	for st, want := range map[int64]bool{399: false, 400: true, 499: true, 500: false, -32601: false} {
		if r.Contains(StatusKey(st)) != want {
			t.Errorf("4xx contains %d: %v", st, !want)
		}
	}
	r, _ = ParseFilterValue(FieldType, "auth.*")
	for typ, want := range map[string]bool{"auth.login": true, "auth.x.y": true, "authz.login": false, "auth": false} {
		if r.Contains(typ) != want {
			t.Errorf("auth.* contains %s: %v", typ, !want)
		}
	}
	for _, bad := range []struct {
		f Field
		v string
	}{{FieldType, "Bad Type"}, {FieldOutcome, "maybe"}, {FieldStatus, "abc"}, {FieldIP, "10.0.0.0/99"}, {FieldDecision, "x"}, {FieldActorID, ""}} {
		if _, err := ParseFilterValue(bad.f, bad.v); ErrorCode(err) != EInvalid {
			t.Errorf("%s=%q: %v", bad.f, bad.v, err)
		}
	}
}
