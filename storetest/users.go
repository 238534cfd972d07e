package storetest

import (
	"context"
	"strings"
	"testing"
	"time"

	veritrail "github.com/veritrail/veritrail"
)

// testUsers checks UserStore: an e-mail address is taken once per
// organization (in any case) and only there, lists are oldest first,
// disabling keeps its first time, and no method reaches another
// organization's users.
func testUsers(t *testing.T, open Opener) {
	ctx := context.Background()
	s := openStore(t, open)
	a, b := newOrg(t, s, "acme"), newOrg(t, s, "globex")
	t0 := time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)
	mk := func(org int64, id, email string, at time.Time) *veritrail.User {
		return &veritrail.User{ID: id, OrgID: org, Email: email, Name: "Name of " + id, Role: veritrail.RoleAuditor, CreatedAt: at}
	}
	// Creation time, creation order, ids and e-mail addresses sort four
	// different ways: lists go by creation time (zoe, priya, sam).
	priya := mk(a.ID, "usr_1", "priya@acme.example", t0)
	priya.Role, priya.OIDCSubject, priya.OIDCIssuer = veritrail.RoleOwner, "00u1abc", "https://login.acme.example"
	zoe := mk(a.ID, "usr_2", "zoe@acme.example", t0.Add(-time.Hour))
	sam := mk(a.ID, "usr_3", "sam@acme.example", t0.Add(time.Second))
	for _, u := range []*veritrail.User{sam, priya, zoe} {
		if err := s.CreateUser(ctx, u); err != nil {
			t.Fatalf("CreateUser %s: %v", u.ID, err)
		}
	}
	for _, email := range []string{"priya@acme.example", "Priya@ACME.example"} {
		if err := s.CreateUser(ctx, mk(a.ID, "usr_again", email, t0)); veritrail.ErrorCode(err) != veritrail.EConflict {
			t.Errorf("second user with e-mail %q in one organization: %v, want conflict", email, err)
		}
	}
	// The same person may be a user of another organization.
	if err := s.CreateUser(ctx, mk(b.ID, "usr_4", "priya@acme.example", t0)); err != nil {
		t.Fatalf("same e-mail in another organization: %v", err)
	}
	if err := s.CreateUser(ctx, mk(a.ID+b.ID+1000, "usr_nowhere", "x@acme.example", t0)); veritrail.ErrorCode(err) != veritrail.ENotFound {
		t.Errorf("user of a missing organization: %v, want not_found", err)
	}

	listed := func(org int64) []*veritrail.User {
		t.Helper()
		us, err := s.ListUsers(ctx, org)
		if err != nil {
			t.Fatalf("ListUsers: %v", err)
		}
		return us
	}
	us := listed(a.ID)
	if ids := userIDs(us); ids != "usr_2,usr_1,usr_3" {
		t.Fatalf("ListUsers(acme) = %s, want usr_2,usr_1,usr_3 (oldest first, refused ones absent)", ids)
	}
	got := us[1]
	if got.OrgID != a.ID || got.Email != "priya@acme.example" || got.Name != priya.Name || got.Role != veritrail.RoleOwner ||
		got.OIDCSubject != priya.OIDCSubject || got.OIDCIssuer != priya.OIDCIssuer || !got.CreatedAt.Equal(t0) || got.DisabledAt != nil {
		t.Errorf("user read back: %+v, want %+v", got, priya)
	}
	if ids := userIDs(listed(b.ID)); ids != "usr_4" {
		t.Errorf("ListUsers(globex) = %s, want usr_4", ids)
	}
	if us := listed(newOrg(t, s, "initech").ID); len(us) != 0 {
		t.Errorf("an organization without users lists %s", userIDs(us))
	}

	// Disabling: scoped to the organization, kept with its first time.
	t1, t2 := t0.Add(time.Hour), t0.Add(2*time.Hour)
	if err := s.DisableUser(ctx, b.ID, "usr_3", t1); veritrail.ErrorCode(err) != veritrail.ENotFound {
		t.Errorf("disable another organization's user: %v, want not_found", err)
	}
	if err := s.DisableUser(ctx, a.ID, "usr_missing", t1); veritrail.ErrorCode(err) != veritrail.ENotFound {
		t.Errorf("disable a missing user: %v, want not_found", err)
	}
	if d := listed(a.ID)[2].DisabledAt; d != nil {
		t.Fatalf("usr_3 disabled at %v by a refused call", d)
	}
	if err := s.DisableUser(ctx, a.ID, "usr_3", t1); err != nil {
		t.Fatal(err)
	}
	if err := s.DisableUser(ctx, a.ID, "usr_3", t2); err != nil {
		t.Errorf("disable a disabled user: %v", err)
	}
	us = listed(a.ID)
	if d := us[2].DisabledAt; d == nil || !d.Equal(t1) {
		t.Errorf("usr_3 disabled at %v, want %v (the first time)", d, t1)
	}
	if us[0].DisabledAt != nil || us[1].DisabledAt != nil {
		t.Error("disabling one user disabled another")
	}
	if d := listed(b.ID)[0].DisabledAt; d != nil {
		t.Error("disabling a user of acme disabled globex's")
	}

	// Roles change within the organization only.
	if err := s.SetUserRole(ctx, b.ID, "usr_1", veritrail.RoleAuditor); veritrail.ErrorCode(err) != veritrail.ENotFound {
		t.Errorf("role of another organization's user: %v, want not_found", err)
	}
	if err := s.SetUserRole(ctx, a.ID, "usr_1", veritrail.RoleSecurity); err != nil {
		t.Fatal(err)
	}
	if r := listed(a.ID)[1].Role; r != veritrail.RoleSecurity { // usr_1
		t.Errorf("role after change: %s", r)
	}
}

func userIDs(us []*veritrail.User) string {
	ids := make([]string, len(us))
	for i, u := range us {
		ids[i] = u.ID
	}
	return strings.Join(ids, ",")
}
