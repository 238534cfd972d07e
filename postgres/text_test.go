package postgres_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	veritrail "github.com/veritrail/veritrail"
)

// TestLongWords: words PostgreSQL cannot hold as one lexeme (over 2046
// bytes once lower-cased) are left out of the index instead of failing the
// group commit, and a query word that long matches nothing instead of a
// truncated word or an encoding error.
func TestLongWords(t *testing.T) {
	ctx := context.Background()
	s := open(t)
	defer s.Close()
	org, err := s.CreateOrg(ctx, "acme")
	if err != nil {
		t.Fatal(err)
	}
	at := time.Now().UTC().Add(-time.Minute)
	ev := func(id, content string) *veritrail.Event {
		return &veritrail.Event{ID: id, Type: "ai.interaction", Time: at, Actor: veritrail.Actor{Type: "user", ID: "u1"},
			Content: []byte(`{"p":"` + content + `"}`)}
	}
	// Ⱥ is 2 bytes and lower-cases to ⱥ, 3 bytes: 2046 bytes as sent,
	// 3069 as a lexeme.
	grows := ev("grows", strings.Repeat("Ⱥ", 1023)+" findme")
	edge := ev("edge", strings.Repeat("a", 2046))
	// More than PostgreSQL's 1 MiB of lexemes in one tsvector.
	var many strings.Builder
	for i := range 140000 {
		fmt.Fprintf(&many, "w%07d ", i)
	}
	big := ev("big", many.String()+"lastword")
	if _, err := s.Append(ctx, org.ID, []*veritrail.Event{grows, edge, big}); err != nil {
		t.Fatalf("append: %v", err)
	}
	for _, tc := range []struct{ q, want string }{
		{"findme", "grows"},
		{strings.Repeat("a", 2046), "edge"},
		{strings.Repeat("a", 2047), ""},       // longer than any lexeme: no match, not "edge"
		{"a" + strings.Repeat("я", 1023), ""}, // 2047 bytes; cut to 2046 it split a rune (invalid UTF-8)
		{strings.Repeat("ⱥ", 1023), ""},       // not indexed: too long as a lexeme
		{"w0000001", "big"},
	} {
		page, err := s.Query(ctx, org.ID, &veritrail.Query{Text: tc.q, TextInContent: true})
		if err != nil {
			t.Errorf("q=%.20q…: %v", tc.q, err)
			continue
		}
		var ids []string
		for _, e := range page.Events {
			env, err := veritrail.ParseEnvelope(e.Envelope)
			if err != nil {
				t.Fatal(err)
			}
			ids = append(ids, env.ID)
		}
		if got := strings.Join(ids, ","); got != tc.want {
			t.Errorf("q=%.20q…: got %q, want %q", tc.q, got, tc.want)
		}
	}
}
