package veritrail

import (
	"strings"
	"testing"
)

// TestHoldValidate: a hold whose actors or filter no event can match is
// refused with the member named, not stored to keep nothing.
func TestHoldValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		hold Hold
		want string // "" for valid
	}{
		{"actor id", Hold{ActorIDs: []string{"usr_1"}}, ""},
		{"e-mail", Hold{ActorEmails: []string{"Ann@Example.com"}}, ""},
		{"empty actor id", Hold{ActorIDs: []string{"usr_1", ""}}, "actor_ids[1]"},
		{"actor id longer than events carry", Hold{ActorIDs: []string{strings.Repeat("a", maxIDLen+1)}}, "actor_ids[0]"},
		{"actor id not UTF-8", Hold{ActorIDs: []string{"usr\xff"}}, "actor_ids[0]"},
		{"not an e-mail", Hold{ActorEmails: []string{"ann.example.com"}}, "actor_emails[0]"},
		{"e-mail too long", Hold{ActorEmails: []string{strings.Repeat("a", maxEmailLen) + "@x"}}, "actor_emails[0]"},
		{"filter too long", Hold{Filter: "type=" + strings.Repeat("a", maxHoldFilter)}, "filter"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := tc.hold
			h.Name, h.Reason = "case 42", "litigation"
			err := h.Validate()
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("refused: %v", err)
			case tc.want != "" && (err == nil || ErrorCode(err) != EInvalid || !strings.HasPrefix(ErrorMessage(err), tc.want+":")):
				t.Fatalf("got %v, want an invalid-request error naming %s", err, tc.want)
			}
		})
	}
}
