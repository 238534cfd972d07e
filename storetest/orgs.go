package storetest

import (
	"context"
	"testing"

	veritrail "github.com/veritrail/veritrail"
)

func testOrgs(t *testing.T, open Opener) {
	ctx := context.Background()
	s := openStore(t, open)
	a := newOrg(t, s, "acme")
	if _, err := s.CreateOrg(ctx, "acme"); veritrail.ErrorCode(err) != veritrail.EConflict {
		t.Fatalf("duplicate org: got %v, want conflict", err)
	}
	if _, err := s.CreateOrg(ctx, "Not Valid!"); veritrail.ErrorCode(err) != veritrail.EInvalid {
		t.Fatalf("invalid org name: got %v, want invalid_request", err)
	}
	b := newOrg(t, s, "globex")
	got, err := s.OrgByName(ctx, "globex")
	if err != nil || got.ID != b.ID {
		t.Fatalf("OrgByName: %v %v", got, err)
	}
	if got, err := s.OrgByID(ctx, a.ID); err != nil || got.Name != "acme" {
		t.Fatalf("OrgByID: %v %v", got, err)
	}
	if _, err := s.OrgByName(ctx, "nope"); veritrail.ErrorCode(err) != veritrail.ENotFound {
		t.Fatalf("missing org: %v", err)
	}
	list, err := s.ListOrgs(ctx)
	if err != nil || len(list) != 2 || list[0].Name != "acme" {
		t.Fatalf("ListOrgs: %v %v", list, err)
	}
}
