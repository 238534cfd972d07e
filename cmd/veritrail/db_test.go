package main

import (
	"context"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/veritrail/veritrail/postgres/pgtest"
)

// TestDBDistributeRefusesWithoutCitus: on PostgreSQL without Citus, db
// distribute says so and changes nothing (not even the schema); without a
// database it says what it needs.
func TestDBDistributeRefusesWithoutCitus(t *testing.T) {
	db := pgtest.New(t)
	out, errOut, code := runBin(t, "db", "distribute", "--db", db)
	if code != 1 || !strings.Contains(errOut, "veritrail db: distribute: no Citus: ") {
		t.Fatalf("db distribute on plain PostgreSQL: exit %d\n%s%s", code, out, errOut)
	}
	conn, err := pgx.Connect(context.Background(), db)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	var tables int
	if err := conn.QueryRow(context.Background(), `SELECT count(*) FROM pg_tables WHERE schemaname = 'public'`).Scan(&tables); err != nil || tables != 0 {
		t.Fatalf("a refused distribute left %d tables (%v)", tables, err)
	}
	for _, args := range [][]string{{"db"}, {"db", "spread"}, {"db", "distribute"}} {
		if _, errOut, code := runBin(t, args...); code != 1 || !strings.Contains(errOut, "usage: veritrail db distribute --db URL") {
			t.Errorf("%v: exit %d %s", args, code, errOut)
		}
	}
}
