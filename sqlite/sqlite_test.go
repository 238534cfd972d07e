package sqlite_test

import (
	"context"
	"testing"

	veritrail "github.com/veritrail/veritrail"
	"github.com/veritrail/veritrail/sqlite"
	"github.com/veritrail/veritrail/storetest"
)

func opener(shift uint) storetest.Opener {
	return func(t *testing.T) veritrail.Store {
		s, err := sqlite.Open(context.Background(), t.TempDir(), sqlite.Options{BucketShift: shift})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
}

// TestConformance runs the store suite with tiny index buckets (many
// buckets, merges and boundaries) and with the default size.
func TestConformance(t *testing.T) {
	t.Run("SmallBuckets", func(t *testing.T) { storetest.Run(t, opener(6)) })
	t.Run("DefaultBuckets", func(t *testing.T) { storetest.Run(t, opener(0)) })
}
