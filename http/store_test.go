package http_test

import (
	"context"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	veritrail "github.com/veritrail/veritrail"
	"github.com/veritrail/veritrail/postgres"
	"github.com/veritrail/veritrail/postgres/pgtest"
	"github.com/veritrail/veritrail/sqlite"
)

// The API's tests run on both stores: on SQLite, and once more, the whole
// package, on PostgreSQL (TestOnPostgres re-runs this test binary with
// VERITRAIL_TEST_STORE=postgres). Every capability must work on both.

func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }

var onPostgres = os.Getenv("VERITRAIL_TEST_STORE") == "postgres"

// storeOptions are what tests may set on the store they open.
type storeOptions struct {
	Observer    veritrail.Observer
	Now         func() time.Time
	BucketShift uint // SQLite only
}

// openStore opens a fresh store of the kind this run tests, closed at
// cleanup by the caller.
func openStore(t testing.TB, dir string, o storeOptions) veritrail.Store {
	t.Helper()
	ctx := context.Background()
	if onPostgres {
		s, err := postgres.Open(ctx, pgtest.New(t), postgres.Options{Observer: o.Observer, Now: o.Now})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	s, err := sqlite.Open(ctx, dir, sqlite.Options{Observer: o.Observer, Now: o.Now, BucketShift: o.BucketShift})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// syncFullText waits for a store whose full text trails the commit.
func syncFullText(s veritrail.Store) {
	if f, ok := s.(interface{ SyncFullText(context.Context) error }); ok {
		f.SyncFullText(context.Background())
	}
}

// TestOnPostgres runs this package's tests again on PostgreSQL.
func TestOnPostgres(t *testing.T) {
	if onPostgres {
		t.Skip("already on PostgreSQL")
	}
	if testing.Short() {
		t.Skip("-short: the API tests run on SQLite only")
	}
	pgtest.Get(t) // skips loudly (or fails in CI) without PostgreSQL
	args := []string{"-test.skip", "^TestOnPostgres$", "-test.count", "1"}
	for _, a := range os.Args[1:] {
		if strings.HasPrefix(a, "-test.run") || strings.HasPrefix(a, "-test.v") || strings.HasPrefix(a, "-test.timeout") {
			args = append(args, a)
		}
	}
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = append(os.Environ(), "VERITRAIL_TEST_STORE=postgres")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("the API tests failed on PostgreSQL: %v\n%s", err, out)
	}
	if testing.Verbose() {
		t.Logf("%s", out)
	}
}
