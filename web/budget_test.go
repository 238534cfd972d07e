package web

import (
	"strings"
	"testing"
)

// jsBudget is the most gzip-compressed JavaScript the console may load:
// the page must stay quick on a slow link.
const jsBudget = 200 << 10

func TestJavaScriptBudget(t *testing.T) {
	a, err := Load()
	if err != nil {
		t.Fatal(err)
	}
	total := 0
	for _, p := range a.Paths() {
		if !strings.HasSuffix(p, ".js") && !strings.HasSuffix(p, ".mjs") {
			continue
		}
		f := a.File(p)
		n := len(f.Body)
		if f.Gzip != nil {
			n = len(f.Gzip)
		}
		total += n
	}
	t.Logf("JavaScript: %d bytes gzip-compressed", total)
	if total > jsBudget {
		t.Fatalf("the console's JavaScript is %d bytes compressed, over its budget of %d", total, jsBudget)
	}
}
