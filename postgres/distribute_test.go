package postgres_test

import (
	"os"
	"regexp"
	"testing"

	"github.com/veritrail/veritrail/postgres"
)

// TestScalingDocPlacements: docs/SCALING.md's table of placements says
// what postgres.Placements says, table by table.
func TestScalingDocPlacements(t *testing.T) {
	b, err := os.ReadFile("../docs/SCALING.md")
	if err != nil {
		t.Fatal(err)
	}
	row := regexp.MustCompile("(?m)^\\| ((?:`[a-z_]+`(?:, )?)+) \\| (distributed|reference|local) \\|")
	names := regexp.MustCompile("`([a-z_]+)`")
	doc := map[string]string{}
	for _, m := range row.FindAllStringSubmatch(string(b), -1) {
		for _, n := range names.FindAllStringSubmatch(m[1], -1) {
			doc[n[1]] = m[2]
		}
	}
	for _, p := range postgres.Placements {
		if got := doc[p.Table]; got != string(p.Placement) {
			t.Errorf("SCALING.md places %s as %q, the code as %q", p.Table, got, p.Placement)
		}
		delete(doc, p.Table)
	}
	for table := range doc {
		t.Errorf("SCALING.md places %s, which postgres.Placements does not have", table)
	}
}
