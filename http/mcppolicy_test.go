package http_test

import (
	"encoding/json"
	"strings"
	"testing"

	veritrail "github.com/veritrail/veritrail"
)

// TestMCPPolicySetting: an organization's MCP policy is held in its
// settings (checked before it is stored, changes recorded) and served to
// the gateways' ingest tokens at /api/v1/mcp/policy.
func TestMCPPolicySetting(t *testing.T) {
	e := newRetEnv(t)
	ingest := e.token(e.org, veritrail.RoleIngest, nil, nil)
	get := func() string {
		t.Helper()
		r := e.do("GET", "/api/v1/mcp/policy", ingest, nil)
		if r.status != 200 {
			t.Fatalf("GET policy: %d %s", r.status, r.body)
		}
		return strings.TrimSpace(string(r.body))
	}
	if got := get(); got != `{"policy":null}` {
		t.Fatalf("no policy held: %s", got)
	}
	const retention = `"retention":[{"category":"*","content_days":90,"metadata_days":730}]`
	for body, msg := range map[string]string{
		`{` + retention + `,"mcp_policy":{"rules":[{"tool":"x","action":"explode"}]}}`: "mcp_policy: ",
		`{` + retention + `,"mcp_policy":{"rulez":[]}}`:                                "mcp_policy: ",
		`{` + retention + `,"mcp_policy":[1,2]}`:                                       "mcp_policy: ",
	} {
		if r := e.putSettings(body); r.status != 400 || !strings.Contains(string(r.body), msg) || !strings.Contains(string(r.body), `"code":"invalid_request"`) {
			t.Errorf("%s: %d %s (want 400 naming %q)", body, r.status, r.body, msg)
		}
	}
	if got := get(); got != `{"policy":null}` {
		t.Fatalf("a refused policy was stored: %s", got)
	}
	policy := `{"name":"acme-mcp","rules":[{"connector":"*","tool":"get-env","action":"block","reason":"environment may hold secrets"}]}`
	if r := e.putSettings(`{` + retention + `,"mcp_policy":` + policy + `}`); r.status != 200 {
		t.Fatalf("put: %d %s", r.status, r.body)
	}
	var got struct {
		Policy json.RawMessage `json:"policy"`
	}
	json.Unmarshal([]byte(get()), &got)
	var a, b any
	json.Unmarshal(got.Policy, &a)
	json.Unmarshal([]byte(policy), &b)
	if ja, _ := json.Marshal(a); string(ja) != func() string { jb, _ := json.Marshal(b); return string(jb) }() {
		t.Fatalf("served policy %s, stored %s", got.Policy, policy)
	}
	// Readers of the log may not read it (it is the gateways' document).
	if r := e.do("GET", "/api/v1/mcp/policy", e.token(e.org, veritrail.RoleAuditor, nil, nil), nil); r.status != 403 {
		t.Fatalf("auditor: %d %s", r.status, r.body)
	}
	// The change is an audit event with the policy before and after.
	r := e.do("GET", "/api/v1/events?type=settings.changed", e.owner, nil)
	if r.status != 200 || !strings.Contains(string(r.body), `get-env`) {
		t.Fatalf("settings.changed does not show the policy: %s", r.body)
	}
	// null removes it.
	if r := e.putSettings(`{` + retention + `,"mcp_policy":null}`); r.status != 200 {
		t.Fatalf("remove: %d %s", r.status, r.body)
	}
	if got := get(); got != `{"policy":null}` {
		t.Fatalf("after removal: %s", got)
	}
}
