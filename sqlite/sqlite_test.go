package sqlite_test

import (
	"context"
	"testing"
	"time"

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

// TestConformanceTail runs the suite with the postings tail written out
// in every commit, by the idle lane whenever it can, and never (every query then reads its entries from the
// tail in memory): a reader that forgets the tail fails the second.
func TestConformanceTail(t *testing.T) {
	// Small buckets: many tail writes across bucket boundaries, merges.
	t.Run("FlushEveryCommit", func(t *testing.T) {
		defer sqlite.SetTailLimits(1, 2*time.Second)()
		storetest.Run(t, opener(6))
	})
	// The idle lane writes it out after every commit it can: readers race
	// write-outs that are no commit's.
	t.Run("FlushWhenIdle", func(t *testing.T) {
		defer sqlite.SetTailTriggers(1, 1<<40, 1000*time.Hour)()
		storetest.Run(t, opener(6))
	})
	t.Run("NeverFlush", func(t *testing.T) {
		defer sqlite.SetTailLimits(1<<40, 1000*time.Hour)()
		t.Run("SmallBuckets", func(t *testing.T) { storetest.Run(t, opener(6)) })
		t.Run("DefaultBuckets", func(t *testing.T) { storetest.Run(t, opener(0)) })
	})
}
