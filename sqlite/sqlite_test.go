package sqlite_test

import (
	"context"
	"sync"
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
// by small commits and by the idle lane whenever it can, and never (every query then reads its entries from the
// tail in memory): a reader that forgets the tail fails the second.
func TestConformanceTail(t *testing.T) {
	// Small buckets: many tail writes across bucket boundaries, merges.
	// A commit that brings the tail to 3 events writes it out; the idle
	// lane writes out whatever smaller commits leave, so readers race
	// write-outs of both kinds (one run of the suite for both: it is the
	// longest test of the package under -race).
	t.Run("FlushInCommitsAndWhenIdle", func(t *testing.T) {
		defer sqlite.SetTailTriggers(1, 3, 2*time.Second)()
		var mu sync.Mutex
		var stores []*sqlite.Store
		storetest.Run(t, func(t *testing.T) veritrail.Store {
			s := opener(6)(t).(*sqlite.Store)
			mu.Lock()
			stores = append(stores, s)
			mu.Unlock()
			return s
		})
		var inCommit, idle int64
		for _, s := range stores {
			c, i := s.TailWrites()
			inCommit, idle = inCommit+c, idle+i
		}
		if inCommit == 0 || idle == 0 {
			t.Errorf("tails written out by commits %d times, by the idle lane %d: the run should have both", inCommit, idle)
		}
	})
	t.Run("NeverFlush", func(t *testing.T) {
		defer sqlite.SetTailLimits(1<<40, 1000*time.Hour)()
		t.Run("SmallBuckets", func(t *testing.T) { storetest.Run(t, opener(6)) })
		t.Run("DefaultBuckets", func(t *testing.T) { storetest.Run(t, opener(0)) })
	})
}
