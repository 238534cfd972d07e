package veritrail

import (
	"strings"
	"testing"
	"time"
)

func TestTokenRequestCheck(t *testing.T) {
	now := time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)
	cases := []struct {
		req     TokenRequest
		field   string // "" when accepted
		msg     string
		expires time.Duration // 0: never
	}{
		{req: TokenRequest{Role: RoleAuditor}},
		{req: TokenRequest{Role: RoleIngest, Name: "app", Scopes: []string{ScopeEventsWrite}, ExpiresIn: "720h"}, expires: 720 * time.Hour},
		{req: TokenRequest{Role: RoleSecurity, Scopes: []string{ScopeContentRead}, ExpiresIn: "90m"}, expires: 90 * time.Minute},
		{req: TokenRequest{Role: RoleOwner, Name: strings.Repeat("n", 200)}},
		{req: TokenRequest{}, field: "role", msg: "field role: required; one of owner, admin, security, auditor, ingest"},
		{req: TokenRequest{Role: "root"}, field: "role", msg: `field role: "root" is not a role; use one of owner, admin, security, auditor, ingest`},
		{req: TokenRequest{Role: "Owner"}, field: "role", msg: `"Owner" is not a role`},
		{req: TokenRequest{Role: RoleAuditor, Scopes: []string{ScopeContentRead}}, field: "scopes",
			msg: "field scopes: the auditor role does not hold content:read; it holds auditlogs:read, aiinteractionlogs:read, exports (roles that hold content:read: owner, security)"},
		{req: TokenRequest{Role: RoleIngest, Scopes: []string{ScopeAdmin}}, field: "scopes", msg: "(roles that hold admin: owner, admin)"},
		{req: TokenRequest{Role: RoleOwner, Scopes: []string{"events:read"}}, field: "scopes", msg: `field scopes: unknown scope "events:read"; scopes are events:write, `},
		{req: TokenRequest{Role: RoleOwner, Scopes: []string{""}}, field: "scopes", msg: `unknown scope ""`},
		{req: TokenRequest{Role: RoleOwner, Name: strings.Repeat("n", 201)}, field: "name", msg: "field name: at most 200 bytes, got 201"},
		{req: TokenRequest{Role: RoleOwner, ExpiresIn: "-1h"}, field: "expires_in", msg: `field expires_in: a positive duration such as 720h (30 days) or 24h, got "-1h"`},
		{req: TokenRequest{Role: RoleOwner, ExpiresIn: "0s"}, field: "expires_in", msg: `got "0s"`},
		{req: TokenRequest{Role: RoleOwner, ExpiresIn: "30d"}, field: "expires_in", msg: `got "30d"`},
	}
	for _, c := range cases {
		exp, err := c.req.Check(now)
		if c.field == "" {
			if err != nil {
				t.Errorf("%+v: refused: %v", c.req, err)
				continue
			}
			switch {
			case c.expires == 0 && exp != nil:
				t.Errorf("%+v: expires %v, want never", c.req, exp)
			case c.expires != 0 && (exp == nil || !exp.Equal(now.Add(c.expires))):
				t.Errorf("%+v: expires %v, want %v", c.req, exp, now.Add(c.expires))
			}
			continue
		}
		e, ok := err.(*Error)
		if !ok || e.Code != EInvalid || e.Field != c.field || !strings.Contains(e.Message, c.msg) {
			t.Errorf("%+v: error %#v; want %s on field %s containing %q", c.req, err, EInvalid, c.field, c.msg)
		}
	}
}

// TestTokenNamesOrganization: a token made for an organization names it in
// its lookup key, so a store can find it on the server holding the
// organization; older tokens, operator-supplied ones and forged
// look-alikes name none; the hash covers the whole secret.
func TestTokenNamesOrganization(t *testing.T) {
	for _, org := range []int64{1, 42, 1 << 40} {
		secret := NewOrgTokenSecret(org)
		if !strings.HasPrefix(secret, TokenPrefix) || len(secret) != len(TokenPrefix)+54 {
			t.Fatalf("organization token %q: want vt_ and 54 characters", secret)
		}
		lookup, hash := HashToken(secret)
		if got, ok := LookupOrg(lookup); !ok || got != org {
			t.Errorf("lookup %q names %d %v, want %d", lookup, got, ok, org)
		}
		changed := []byte(secret)
		changed[len(changed)-1] ^= 1
		if !TokenMatches(secret, hash) || TokenMatches(string(changed), hash) {
			t.Errorf("hash of %q does not cover the whole secret", secret)
		}
	}
	if NewOrgTokenSecret(7) == NewOrgTokenSecret(7) {
		t.Fatal("two tokens of one organization are the same")
	}
	for _, secret := range []string{
		NewTokenSecret(), // made before tokens named their organization
		"vt_two-node-bench-token-0123456789abcdef", // supplied by an operator
		"vt_" + strings.Repeat("_", 54),            // names organization -1
		"vt_" + strings.Repeat("A", 54),            // names organization 0
		"vt_" + strings.Repeat("!", 54),            // not base64
		"xx_" + NewOrgTokenSecret(5)[3:],           // not a Veritrail token
	} {
		lookup, _ := HashToken(secret)
		if org, ok := LookupOrg(lookup); ok || strings.Contains(lookup, "/") {
			t.Errorf("%q: lookup %q names organization %d", secret, lookup, org)
		}
	}
	for _, lookup := range []string{"0123456789abcdef", "/0123456789abcdef", "x/0123456789abcdef", "0/0123456789abcdef", "-3/0123456789abcdef"} {
		if org, ok := LookupOrg(lookup); ok {
			t.Errorf("LookupOrg(%q) = %d, want none", lookup, org)
		}
	}
}
