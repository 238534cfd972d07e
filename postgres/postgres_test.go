package postgres_test

import (
	"context"
	"os"
	"testing"

	veritrail "github.com/veritrail/veritrail"
	"github.com/veritrail/veritrail/postgres"
	"github.com/veritrail/veritrail/postgres/pgtest"
	"github.com/veritrail/veritrail/storetest"
)

func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }

func open(t *testing.T) veritrail.Store { return openURL(t, pgtest.New(t)) }

func openURL(t *testing.T, url string) veritrail.Store {
	s, err := postgres.Open(context.Background(), url, postgres.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestConformance runs the store suite every store passes.
func TestConformance(t *testing.T) { storetest.Run(t, open) }

// openOrgs opens a store on a new database with the organizations named;
// it returns the store, the database's URL and the organizations.
func openOrgs(t *testing.T, names ...string) (*postgres.Store, string, []*veritrail.Org) {
	t.Helper()
	url := pgtest.New(t)
	s := openURL(t, url).(*postgres.Store)
	t.Cleanup(func() { s.Close() })
	var orgs []*veritrail.Org
	for _, n := range names {
		o, err := s.CreateOrg(context.Background(), n)
		if err != nil {
			t.Fatal(err)
		}
		orgs = append(orgs, o)
	}
	return s, url, orgs
}
