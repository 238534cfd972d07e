// Package storetest is the conformance suite of veritrail.Store: every
// storage engine (sqlite, postgres) runs it and must pass it unchanged.
//
// Each file holds the tests of one store interface (orgs.go for OrgStore,
// users.go for UserStore, lease.go for Leaser, …); the suite below lists
// them. A new interface adds its file and one line to the suite.
package storetest

import (
	"context"
	"testing"

	veritrail "github.com/veritrail/veritrail"
)

// Opener returns a new, empty store for one test; the suite closes it.
type Opener func(t *testing.T) veritrail.Store

// FullTextSyncer is implemented by stores whose full-text index trails the
// commit; the suite calls it before asserting on text queries.
type FullTextSyncer interface {
	SyncFullText(ctx context.Context) error
}

// suite is every conformance test, in the order Run runs them. Each opens
// stores of its own, so they are independent of one another.
var suite = []struct {
	name string
	test func(t *testing.T, open Opener)
}{
	{"Orgs", testOrgs},                                 // orgs.go
	{"Tokens", testTokens},                             // tokens.go
	{"Users", testUsers},                               // users.go
	{"Teams", testTeams},                               // teams.go
	{"AppendAndGet", testAppendAndGet},                 // events.go
	{"GapFreeConcurrent", testGapFreeConcurrent},       // events.go
	{"Idempotency", testIdempotency},                   // events.go
	{"OrgIsolation", testOrgIsolation},                 // events.go
	{"Enqueue", testEnqueue},                           // events.go
	{"FiltersAgainstOracle", testFiltersAgainstOracle}, // query.go
	{"PagingWhileWriting", testPagingWhileWriting},     // query.go
	{"PollingWhileWriting", testPollingWhileWriting},   // query.go
	{"FullText", testFullText},                         // query.go
	{"Cursors", testCursors},                           // query.go
	{"Log", testLog},                                   // log.go
	{"Settings", testSettings},                         // settings.go
	{"Retention", testRetention},                       // retention.go
	{"Holds", testHolds},                               // holds.go
	{"SSO", testSSO},                                   // sso.go
	{"Exports", testExports},                           // exports.go
	{"ExportFiles", testExportFiles},                   // exportfiles.go
	{"Sinks", testSinks},                               // sinks.go
	{"Lease", testLease},                               // lease.go
	{"Rules", testRules},                               // rules.go
	{"Alerts", testAlerts},                             // alerts.go
	{"Lookups", testLookups},                           // sessions.go
	{"Sessions", testSessions},                         // sessions.go
	{"Stats", testStats},                               // stats.go
	{"StatsCounts", testStatsCounts},                   // stats.go
}

// Run runs the whole suite against the stores open returns.
func Run(t *testing.T, open Opener) {
	for _, c := range suite {
		t.Run(c.name, func(t *testing.T) { c.test(t, open) })
	}
}

// openStore opens a store for one test and closes it when the test ends.
func openStore(t *testing.T, open Opener) veritrail.Store {
	s := open(t)
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	return s
}

func newOrg(t *testing.T, s veritrail.Store, name string) *veritrail.Org {
	t.Helper()
	o, err := s.CreateOrg(context.Background(), name)
	if err != nil {
		t.Fatalf("create org %s: %v", name, err)
	}
	return o
}
