package http_test

import (
	"context"
	"encoding/json"
	"maps"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	veritrail "github.com/veritrail/veritrail"
	vhttp "github.com/veritrail/veritrail/http"
	spb "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
)

func keys(t *testing.T, body []byte) []string {
	t.Helper()
	var m map[string]json.RawMessage
	if err := json.Unmarshal(body, &m); err != nil {
		t.Fatalf("not a JSON object: %s", body)
	}
	return slices.Sorted(maps.Keys(m))
}

// TestErrorBodies: the native, Miro and OTLP routes answer failures in
// their own body shapes, with the codes of the one table; and an internal
// error met on any of them (here: the store is gone) is logged exactly
// once, without the query string, and answered generically.
func TestErrorBodies(t *testing.T) {
	ctx := context.Background()
	logs := &vhttp.LogBuffer{}
	store := openStore(t, t.TempDir(), storeOptions{})
	api := vhttp.New(vhttp.Config{Store: store, Logger: logs.Logger()})
	srv := httptest.NewServer(api)
	defer srv.Close()
	e := &env{t: t, store: store, srv: srv, api: api}
	e.org, _ = store.CreateOrg(ctx, "acme")
	e.owner = e.token(e.org, veritrail.RoleOwner, nil, nil)
	const window = "createdAfter=2025-12-05T10:15:00Z&createdBefore=2025-12-05T10:20:00Z"

	// Native: {"error": {"code", "message"}}, every status from the table.
	for _, tc := range []struct {
		method, path, token string
		code                string
	}{
		{"GET", "/api/v1/events?limit=0", e.owner, veritrail.EInvalid},
		{"GET", "/api/v1/events", "", veritrail.EUnauthorized},
		{"GET", "/api/v1/events/evt_none", e.owner, veritrail.ENotFound},
		{"DELETE", "/api/v1/events", e.owner, veritrail.EMethodNotAllowed},
		{"GET", "/api/v1/exports/exp_1/download?o=1&expires=1&sig=00", "", veritrail.EForbidden},
		{"GET", "/nowhere", "", veritrail.ENotFound},
	} {
		r := e.do(tc.method, tc.path, tc.token, nil)
		var b struct {
			Error map[string]any `json:"error"`
		}
		json.Unmarshal(r.body, &b)
		if !slices.Equal(keys(t, r.body), []string{"error"}) || b.Error["code"] != tc.code || b.Error["message"] == "" ||
			r.status != vhttp.StatusFor(veritrail.Errorf(tc.code, "")) || r.header.Get("Content-Type") != "application/json" {
			t.Errorf("%s %s: %d %s, want code %s", tc.method, tc.path, r.status, r.body, tc.code)
		}
	}

	// Miro: {"status", "code", "message", "type": "error"}.
	for _, tc := range []struct {
		path, token, code string
		status            int
	}{
		{"/v2/audit/logs?" + window, "", "tokenNotProvided", 401},
		{"/v1/audit/logs?" + window, "vt_nope", "invalidToken", 401},
		{"/v2/audit/logs?" + window + "&limit=0", e.owner, "invalidParameters", 400},
		{"/v2/orgs/globex/ai-interaction-logs", e.owner, "notFound", 404},
	} {
		r := e.do("GET", tc.path, tc.token, nil)
		m := r.json(t)
		if r.status != tc.status || !slices.Equal(keys(t, r.body), []string{"code", "message", "status", "type"}) ||
			m["status"] != float64(tc.status) || m["code"] != tc.code || m["type"] != "error" {
			t.Errorf("Miro %s: %d %s", tc.path, r.status, r.body)
		}
	}

	// OTLP: a google.rpc.Status in the request's encoding, also for
	// failures before the handler (authentication).
	for _, tc := range []struct {
		name, ctype, token string
		status             int
		code               int32
	}{
		{"no token, JSON", "application/json", "", 401, 16},
		{"no token, protobuf", "application/x-protobuf", "", 401, 16},
		{"malformed, protobuf", "application/x-protobuf", e.owner, 400, 3},
		{"content type", "text/plain", e.owner, 415, 3},
	} {
		r := e.do("POST", "/v1/logs", tc.token, strings.NewReader("\xff\xff"), "Content-Type", tc.ctype)
		want := "application/json"
		if tc.ctype == "application/x-protobuf" {
			want = tc.ctype
		}
		st := &spb.Status{}
		var err error
		if want == "application/json" {
			err = protojson.Unmarshal(r.body, st)
		} else {
			err = proto.Unmarshal(r.body, st)
		}
		if err != nil || r.status != tc.status || st.Code != tc.code || st.Message == "" || r.header.Get("Content-Type") != want {
			t.Errorf("OTLP %s: %d %s %q (%v)", tc.name, r.status, r.header.Get("Content-Type"), r.body, err)
		}
	}
	if errs, all := logs.Take(t); len(errs) > 0 {
		t.Errorf("client errors were logged as errors:\n%s", all)
	}

	// The store goes away: every route meets an internal error.
	store.Close()
	for _, tc := range []struct {
		method, path, ctype string
		message             func(r response) string
	}{
		{"GET", "/api/v1/events?q=alice", "", func(r response) string {
			var b struct {
				Error struct{ Code, Message string }
			}
			json.Unmarshal(r.body, &b)
			return b.Error.Code + ": " + b.Error.Message
		}},
		{"GET", "/v2/audit/logs?q=alice&" + window, "", func(r response) string {
			m := r.json(t)
			return m["code"].(string) + ": " + m["message"].(string)
		}},
		{"POST", "/v1/logs?q=alice", "application/json", func(r response) string {
			st := &spb.Status{}
			protojson.Unmarshal(r.body, st)
			return map[int32]string{13: "internal"}[st.Code] + ": " + st.Message
		}},
	} {
		r := e.do(tc.method, tc.path, e.owner, strings.NewReader("{}"), "Content-Type", tc.ctype)
		msg := tc.message(r)
		if r.status != 500 || !strings.HasSuffix(msg, ": internal error; the server log has the details") || !strings.HasPrefix(msg, "internal") {
			t.Errorf("%s with the store gone: %d %s", tc.path, r.status, r.body)
		}
		errs, log := logs.Take(t)
		path, _, _ := strings.Cut(tc.path, "?")
		if len(errs) != 1 || errs[0]["err"] == nil || errs[0]["path"] != path || errs[0]["status"] != float64(500) {
			t.Errorf("%s: want one error record with the error, got:\n%s", tc.path, log)
		}
		if strings.Contains(log, "alice") {
			t.Errorf("%s: the query string was logged:\n%s", tc.path, log)
		}
	}
	api.Shutdown(ctx)
}
