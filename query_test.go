package veritrail

import "testing"

func TestCursorRoundTrip(t *testing.T) {
	q := &Query{Order: OrderAsc, Text: "x"}
	c := &Cursor{Order: OrderAsc, TimeNS: -5, Seq: 1 << 40, Fingerprint: q.Fingerprint()}
	back, err := DecodeCursor(c.Encode(), q)
	if err != nil || *back != *c {
		t.Fatalf("%+v %v", back, err)
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
