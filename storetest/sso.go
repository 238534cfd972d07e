package storetest

import (
	"context"
	"testing"

	veritrail "github.com/veritrail/veritrail"
)

// testSSO checks single sign-on settings per organization and users found
// and linked by their provider's issuer and subject.
func testSSO(t *testing.T, open Opener) {
	s := openStore(t, open)
	ctx := context.Background()
	org, other := newOrg(t, s, "sso-a"), newOrg(t, s, "sso-b")
	if _, err := s.SSOConfig(ctx, org.ID); veritrail.ErrorCode(err) != veritrail.ENotFound {
		t.Fatalf("settings before any: %v, want not found", err)
	}
	c := &veritrail.SSOConfig{OrgID: org.ID, Enabled: true, Issuer: "https://idp.example", ClientID: "veritrail",
		ClientSecretSealed: "sealed:x", AllowedDomains: []string{"example.com"}, GroupsClaim: "groups",
		GroupRoles: []veritrail.GroupRole{{Group: "sec", Role: veritrail.RoleSecurity}}, DefaultRole: veritrail.RoleAuditor, CreateUsers: true}
	if err := s.PutSSOConfig(ctx, c); err != nil {
		t.Fatal(err)
	}
	c.ClientID = "veritrail-2"
	if err := s.PutSSOConfig(ctx, c); err != nil {
		t.Fatal(err)
	}
	got, err := s.SSOConfig(ctx, org.ID)
	if err != nil || got.ClientID != "veritrail-2" || got.ClientSecretSealed != "sealed:x" || got.GroupRoles[0].Role != veritrail.RoleSecurity || !got.CreateUsers || got.OrgID != org.ID {
		t.Fatalf("settings read back: %+v %v", got, err)
	}
	if _, err := s.SSOConfig(ctx, other.ID); veritrail.ErrorCode(err) != veritrail.ENotFound {
		t.Errorf("another organization's settings: %v", err)
	}

	u := &veritrail.User{ID: "usr_1", OrgID: org.ID, Email: "dana@example.com", Role: veritrail.RoleAuditor}
	v := &veritrail.User{ID: "usr_2", OrgID: org.ID, Email: "eli@example.com", Role: veritrail.RoleAuditor}
	w := &veritrail.User{ID: "usr_3", OrgID: other.ID, Email: "dana@example.com", Role: veritrail.RoleAuditor}
	for _, x := range []*veritrail.User{u, v, w} {
		if err := s.CreateUser(ctx, x); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.UserByOIDC(ctx, org.ID, "https://idp.example", "sub-1"); veritrail.ErrorCode(err) != veritrail.ENotFound {
		t.Errorf("unlinked identity: %v", err)
	}
	if err := s.LinkUserOIDC(ctx, org.ID, "usr_1", "https://idp.example", "sub-1"); err != nil {
		t.Fatal(err)
	}
	if err := s.LinkUserOIDC(ctx, org.ID, "usr_1", "https://idp.example", "sub-1"); err != nil {
		t.Errorf("linking the same identity again: %v", err)
	}
	if err := s.LinkUserOIDC(ctx, org.ID, "usr_1", "https://idp.example", "sub-9"); veritrail.ErrorCode(err) != veritrail.EConflict {
		t.Errorf("relinking to another identity: %v, want conflict", err)
	}
	if err := s.LinkUserOIDC(ctx, org.ID, "usr_2", "https://idp.example", "sub-1"); veritrail.ErrorCode(err) != veritrail.EConflict {
		t.Errorf("a second user with one identity: %v, want conflict", err)
	}
	if err := s.LinkUserOIDC(ctx, org.ID, "usr_3", "https://idp.example", "sub-2"); veritrail.ErrorCode(err) != veritrail.ENotFound {
		t.Errorf("linking a user of another organization: %v, want not found", err)
	}
	if err := s.LinkUserOIDC(ctx, other.ID, "usr_3", "https://idp.example", "sub-1"); err != nil {
		t.Errorf("the same identity in another organization: %v", err)
	}
	got1, err := s.UserByOIDC(ctx, org.ID, "https://idp.example", "sub-1")
	if err != nil || got1.ID != "usr_1" || got1.OIDCSubject != "sub-1" || got1.OIDCIssuer != "https://idp.example" {
		t.Fatalf("user by identity: %+v %v", got1, err)
	}
	if x, err := s.UserByOIDC(ctx, other.ID, "https://idp.example", "sub-1"); err != nil || x.ID != "usr_3" {
		t.Errorf("user by identity in the other organization: %+v %v", x, err)
	}
	if _, err := s.UserByOIDC(ctx, org.ID, "https://other.example", "sub-1"); veritrail.ErrorCode(err) != veritrail.ENotFound {
		t.Errorf("same subject of another issuer: %v", err)
	}
}
