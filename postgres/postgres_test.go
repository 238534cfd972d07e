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
