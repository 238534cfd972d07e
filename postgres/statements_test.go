package postgres

import (
	"io/fs"
	"slices"
	"strings"
	"testing"
)

func TestStatements(t *testing.T) {
	for _, tc := range []struct {
		name, sql string
		want      []string
	}{
		{"two", "CREATE TABLE a (x int);\nCREATE INDEX i ON a (x);\n", []string{"CREATE TABLE a (x int)", "CREATE INDEX i ON a (x)"}},
		{"comments dropped", "-- a; b\nSELECT 1; -- c;\n-- end;\n", []string{"-- a; b\nSELECT 1"}},
		{"string", "SELECT 'a;''b'; SELECT 2", []string{"SELECT 'a;''b'", "SELECT 2"}},
		{"dollar body", "CREATE FUNCTION f() RETURNS int AS $$ BEGIN RETURN 1; END $$ LANGUAGE plpgsql; SELECT 3;",
			[]string{"CREATE FUNCTION f() RETURNS int AS $$ BEGIN RETURN 1; END $$ LANGUAGE plpgsql", "SELECT 3"}},
		{"tagged body", "DO $x$ BEGIN PERFORM 1; END $x$; SELECT $1", []string{"DO $x$ BEGIN PERFORM 1; END $x$", "SELECT $1"}},
		{"no final semicolon", "SELECT 1", []string{"SELECT 1"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := statements(tc.sql); !slices.Equal(got, tc.want) {
				t.Errorf("statements(%q) = %q, want %q", tc.sql, got, tc.want)
			}
		})
	}
}

// Every migration splits into statements that each hold one: none ends
// inside a function body or string (it would not parse alone).
func TestMigrationsSplit(t *testing.T) {
	names, err := fs.Glob(migrations, "migrations/*.sql")
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range names {
		body, _ := migrations.ReadFile(name)
		for _, s := range statements(string(body)) {
			if strings.Count(s, "$$")%2 != 0 {
				t.Errorf("%s: a statement cut inside a $$ body: %.80q", name, s)
			}
		}
	}
}
