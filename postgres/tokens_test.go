package postgres_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	veritrail "github.com/veritrail/veritrail"
)

// TestTokenRoutes: a token that names its organization is found in that
// organization alone (no route row: on Citus, one shard is read); one
// that names none is found through its route; a token whose secret names
// another organization than its own is refused, since it could never be
// found.
func TestTokenRoutes(t *testing.T) {
	ctx := context.Background()
	s, url, orgs := openOrgs(t, "acme", "globex")
	a, b := orgs[0], orgs[1]
	create := func(org int64, secret string) (string, error) {
		lookup, hash := veritrail.HashToken(secret)
		return lookup, s.CreateToken(ctx, &veritrail.Token{ID: veritrail.NewTokenID(), OrgID: org, Role: veritrail.RoleAuditor, Lookup: lookup, Hash: hash})
	}
	named, err := create(b.ID, veritrail.NewOrgTokenSecret(b.ID))
	if err != nil {
		t.Fatal(err)
	}
	older, err := create(a.ID, veritrail.NewTokenSecret())
	if err != nil {
		t.Fatal(err)
	}
	for lookup, org := range map[string]int64{named: b.ID, older: a.ID} {
		if tok, err := s.TokenByLookup(ctx, lookup); err != nil || tok.OrgID != org {
			t.Errorf("TokenByLookup(%s): %+v %v, want a token of %d", lookup, tok, err, org)
		}
	}
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var routes int
	if err := conn.QueryRow(ctx, `SELECT count(*) FROM token_routes`).Scan(&routes); err != nil || routes != 1 {
		t.Errorf("%d token routes (%v), want 1: the token that names no organization", routes, err)
	}
	if _, err := create(a.ID, veritrail.NewOrgTokenSecret(b.ID)); veritrail.ErrorCode(err) != veritrail.EInvalid {
		t.Errorf("a token of acme whose secret names globex: %v, want invalid", err)
	}
	// The right shard is asked: a lookup key naming another organization
	// finds nothing there.
	_, key, _ := strings.Cut(named, "/")
	if _, err := s.TokenByLookup(ctx, fmt.Sprintf("%d/%s", a.ID, key)); veritrail.ErrorCode(err) != veritrail.ENotFound {
		t.Errorf("globex's token looked up in acme: %v, want not found", err)
	}
}
