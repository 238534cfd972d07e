package web

import (
	"regexp"
	"slices"
	"testing"

	veritrail "github.com/veritrail/veritrail"
)

// TestEveryFilterOfTheAPI fails when the filter bar (static/lib/query.js,
// FILTERS) and the API's filter parameters (veritrail.Fields) differ: a
// filter the API gains must be offered by the console too.
func TestEveryFilterOfTheAPI(t *testing.T) {
	src, err := static.ReadFile("static/lib/query.js")
	if err != nil {
		t.Fatal(err)
	}
	block := regexp.MustCompile(`(?s)export const FILTERS = \[(.*?)\n\];`).FindSubmatch(src)
	if block == nil {
		t.Fatal("no FILTERS in static/lib/query.js")
	}
	var console []string
	for _, m := range regexp.MustCompile(`name: '([a-z_]+)'`).FindAllSubmatch(block[1], -1) {
		console = append(console, string(m[1]))
	}
	var api []string
	for _, f := range veritrail.Fields {
		api = append(api, f.String())
	}
	slices.Sort(console)
	slices.Sort(api)
	if !slices.Equal(console, api) {
		t.Errorf("the filter bar offers %v; the API filters by %v", console, api)
	}
}
