package rules

import "testing"

// TestPackCompiles: every rule of the built-in pack compiles, and all but
// the DLP rule (any event type can carry a DLP finding) say which event
// types they watch, so the evaluator reads only those.
func TestPackCompiles(t *testing.T) {
	env, err := newEnv()
	if err != nil {
		t.Fatal(err)
	}
	specs, err := PackSpecs()
	if err != nil {
		t.Fatal(err)
	}
	if len(specs) < 10 {
		t.Fatalf("%d pack rules", len(specs))
	}
	for _, s := range specs {
		c, err := compile(env, s, true)
		if err != nil {
			t.Errorf("%s: %v", s.Name, err)
			continue
		}
		if c.types == nil && s.Name != "builtin: repeated DLP violations by one person" {
			t.Errorf("%s: no event type constraint found", s.Name)
		}
	}
}
