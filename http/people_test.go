package http_test

import (
	"encoding/json"
	"strings"
	"testing"

	veritrail "github.com/veritrail/veritrail"
)

// TestUserRole: a role changes through PATCH, only to and from roles the
// caller may grant, and the change is recorded with before and after.
func TestUserRole(t *testing.T) {
	e := newEnv(t, veritrail.Limits{})
	r := e.do("POST", "/api/v1/users", e.owner, strings.NewReader(`{"email":"dana@acme.example","role":"auditor"}`))
	var u struct{ ID string }
	if r.status != 201 || json.Unmarshal(r.body, &u) != nil {
		t.Fatalf("create: %d %s", r.status, r.body)
	}
	admin := e.token(e.org, veritrail.RoleAdmin, nil, nil)
	for _, c := range []struct {
		token, body string
		status      int
	}{
		{e.owner, `{"role":"king"}`, 400},
		{e.owner, `{"role":"security","x":1}`, 400},
		{admin, `{"role":"owner"}`, 403},
		{admin, `{"role":"security"}`, 403}, // content access the admin lacks
		{e.owner, `{"role":"security"}`, 200},
		{admin, `{"role":"auditor"}`, 403}, // a security user is beyond the admin
	} {
		if r := e.do("PATCH", "/api/v1/users/"+u.ID, c.token, strings.NewReader(c.body)); r.status != c.status {
			t.Errorf("%s: %d %s, want %d", c.body, r.status, r.body, c.status)
		}
	}
	if r := e.do("PATCH", "/api/v1/users/usr_missing", e.owner, strings.NewReader(`{"role":"auditor"}`)); r.status != 404 {
		t.Errorf("missing user: %d", r.status)
	}
	list := e.do("GET", "/api/v1/users", e.owner, nil)
	if !strings.Contains(string(list.body), `"role":"security"`) {
		t.Errorf("users after the change: %s", list.body)
	}
	rec := e.do("GET", "/api/v1/events?type=audit.user_role_changed", e.owner, nil)
	if !strings.Contains(string(rec.body), `"before":"auditor"`) || !strings.Contains(string(rec.body), `"type":"audit.user_role_changed"`) {
		t.Errorf("role change not recorded: %s", rec.body)
	}
}
