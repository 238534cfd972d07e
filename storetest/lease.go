package storetest

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	veritrail "github.com/veritrail/veritrail"
)

// testLease checks Leaser, on the stores that implement it: a lease has
// one holder at a time, its holder renews it, and it passes to another
// holder once it expires, to exactly one of several asking at once.
//
// Leases run on the clock of the database that every node shares, not on
// a node's (or the store's Now), so expiry is tested with a lease of a
// millisecond, asked for until it passes; nothing asserts how long
// anything took.
func testLease(t *testing.T, open Opener) {
	ctx := context.Background()
	s := openStore(t, open)
	l, ok := s.(veritrail.Leaser)
	if !ok {
		t.Skip("this store is owned by one process: it has no leases")
	}
	const long, short = time.Hour, time.Millisecond
	take := func(name, holder string, ttl time.Duration) bool {
		t.Helper()
		ok, err := l.Lease(ctx, name, holder, ttl)
		if err != nil {
			t.Fatalf("Lease(%s, %s): %v", name, holder, err)
		}
		return ok
	}
	// takeOnceExpired asks for the lease until holder gets it.
	takeOnceExpired := func(name, holder string, ttl time.Duration) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for !take(name, holder, ttl) {
			if time.Now().After(deadline) {
				t.Fatalf("lease %s never passed to %s: it does not expire", name, holder)
			}
			time.Sleep(time.Millisecond)
		}
	}

	if !take("checkpoints", "node-a", long) {
		t.Fatal("a lease nobody holds was refused")
	}
	if !take("checkpoints", "node-a", long) {
		t.Fatal("the holder could not renew its lease")
	}
	if take("checkpoints", "node-b", long) {
		t.Fatal("another holder took a lease before it expired")
	}
	// Leases of different names are independent.
	if !take("retention", "node-b", long) {
		t.Fatal("a lease of another name was refused")
	}
	if take("retention", "node-a", long) || !take("checkpoints", "node-a", long) {
		t.Fatal("leases of different names interfere")
	}

	// Expiry: the holder renews for a millisecond and stops; the lease
	// passes to the next holder that asks, and the old holder is refused.
	if !take("checkpoints", "node-a", short) {
		t.Fatal("the holder could not renew its lease")
	}
	takeOnceExpired("checkpoints", "node-b", long)
	if take("checkpoints", "node-a", long) {
		t.Fatal("the old holder took back a lease another holds")
	}

	// Renewal sets a new expiry: a holder whose short lease ran out (shown
	// by a probe lease taken after it running out too) renews it for long,
	// and another holder is refused from then on.
	if !take("sink/snk_1", "node-a", short) || !take("probe", "node-x", short) {
		t.Fatal("a lease nobody holds was refused")
	}
	takeOnceExpired("probe", "node-y", long)
	if !take("sink/snk_1", "node-a", long) {
		t.Fatal("the holder could not renew its expired lease nobody took")
	}
	if take("sink/snk_1", "node-b", long) {
		t.Fatal("renewing did not extend the lease: another holder took it")
	}

	// Of several nodes asking at once, exactly one gets the lease: when it
	// is new, and when it has expired.
	race := func(name string) []string {
		var mu sync.Mutex
		var winners []string
		var wg sync.WaitGroup
		for i := range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				holder := fmt.Sprintf("racer-%d", i)
				ok, err := l.Lease(ctx, name, holder, long)
				if err != nil {
					t.Errorf("Lease(%s, %s): %v", name, holder, err)
					return
				}
				if ok {
					mu.Lock()
					winners = append(winners, holder)
					mu.Unlock()
				}
			}()
		}
		wg.Wait()
		return winners
	}
	if w := race("exports"); len(w) != 1 {
		t.Fatalf("a new lease went to %d holders at once: %v", len(w), w)
	}
	if !take("sweeper", "node-a", short) {
		t.Fatal("a lease nobody holds was refused")
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		w := race("sweeper")
		if len(w) > 1 {
			t.Fatalf("an expired lease went to %d holders at once: %v", len(w), w)
		}
		if len(w) == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("lease sweeper never passed on: it does not expire")
		}
		time.Sleep(time.Millisecond)
	}
}
