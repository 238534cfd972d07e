package veritrail

import "testing"

func TestClassKey(t *testing.T) {
	for _, tc := range []struct {
		class int
		want  string
	}{
		{ClassAccountChange, "account_change"},
		{ClassUserAccess, "user_access_management"},
		{ClassAPIActivity, "api_activity"},
		{0, ""},
		{9999, ""},
	} {
		if got := ClassKey(tc.class); got != tc.want {
			t.Errorf("ClassKey(%d) = %q, want %q", tc.class, got, tc.want)
		}
	}
	// A query calls it for every distinct type it meets.
	if n := testing.AllocsPerRun(100, func() { ClassKey(ClassAPIActivity) }); n != 0 {
		t.Errorf("ClassKey allocates %v times per call, want 0", n)
	}
}
