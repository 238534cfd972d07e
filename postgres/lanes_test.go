package postgres_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	veritrail "github.com/veritrail/veritrail"
	"github.com/veritrail/veritrail/postgres"
	"github.com/veritrail/veritrail/postgres/pgtest"
)

func laneEvents(prefix string, n int) []*veritrail.Event {
	evs := make([]*veritrail.Event, n)
	for i := range evs {
		evs[i] = &veritrail.Event{ID: fmt.Sprintf("%s%d", prefix, i), Type: "auth.login",
			Time: time.Now().UTC().Add(-time.Minute), Actor: veritrail.Actor{Type: "user", ID: "u1"}}
		evs[i].Prepare()
	}
	return evs
}

// TestLanesCommitInParallel: while one organization's commit waits (its
// log head row is locked by another session, as another node's commit
// would lock it), an organization of another lane commits and answers.
// With a single commit loop it would wait behind the first.
func TestLanesCommitInParallel(t *testing.T) {
	ctx := context.Background()
	url := pgtest.New(t)
	s, err := postgres.Open(ctx, url, postgres.Options{CommitLanes: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	a, err := s.CreateOrg(ctx, "acme")
	if err != nil {
		t.Fatal(err)
	}
	// Lanes take organizations by the remainder of their id.
	var b *veritrail.Org
	for i := 0; b == nil || b.ID%2 == a.ID%2; i++ {
		if b, err = s.CreateOrg(ctx, fmt.Sprintf("globex%d", i)); err != nil {
			t.Fatal(err)
		}
	}

	holder, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer holder.Close(ctx)
	tx, err := holder.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, `SELECT 1 FROM log_heads WHERE org_id = $1 FOR UPDATE`, a.ID); err != nil {
		t.Fatal(err)
	}
	type result struct {
		res []veritrail.AppendResult
		err error
	}
	doneA := make(chan result, 1)
	go func() {
		res, err := s.Append(ctx, a.ID, laneEvents("a", 3))
		doneA <- result{res, err}
	}()
	// Wait until a's commit is blocked on the row lock.
	watcher, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer watcher.Close(ctx)
	for waiting := false; !waiting; {
		if err := watcher.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_locks WHERE NOT granted AND locktype = 'transactionid')`).Scan(&waiting); err != nil {
			t.Fatal(err)
		}
		select {
		case r := <-doneA:
			t.Fatalf("org a committed while its log head was locked: %+v %v", r.res, r.err)
		case <-time.After(10 * time.Millisecond):
		}
	}

	doneB := make(chan result, 1)
	go func() {
		res, err := s.Append(ctx, b.ID, laneEvents("b", 2))
		doneB <- result{res, err}
	}()
	select {
	case r := <-doneB:
		if r.err != nil || len(r.res) != 2 || r.res[0].Seq != 0 || r.res[1].Seq != 1 {
			t.Fatalf("org b: %+v %v", r.res, r.err)
		}
	case <-time.After(time.Minute):
		// Not a timing assertion: b cannot finish at all while it waits
		// behind a, so this only turns a hang into a failure.
		t.Fatal("org b waited for org a's lock: organizations of two lanes do not commit in parallel")
	}
	select {
	case r := <-doneA:
		t.Fatalf("org a committed while its log head was locked: %+v %v", r.res, r.err)
	default:
	}
	if err := tx.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	r := <-doneA
	if r.err != nil || len(r.res) != 3 || r.res[2].Seq != 2 {
		t.Fatalf("org a after the lock: %+v %v", r.res, r.err)
	}
	for _, org := range []int64{a.ID, b.ID} {
		size, _, err := s.LogHead(ctx, org)
		if err != nil {
			t.Fatal(err)
		}
		if want := map[int64]int64{a.ID: 3, b.ID: 2}[org]; size != want {
			t.Fatalf("org %d log size %d, want %d", org, size, want)
		}
	}
}

// BenchmarkAppendOrgs measures one node appending for one organization
// and for two (8 senders of 100-event requests in all): with commit lanes,
// the second organization commits beside the first. Set
// VERITRAIL_PG_DURABLE=1 for a server that syncs like a production one.
func BenchmarkAppendOrgs(b *testing.B) {
	for _, orgs := range []int{1, 2} {
		b.Run(fmt.Sprintf("orgs=%d", orgs), func(b *testing.B) {
			ctx := context.Background()
			s, err := postgres.Open(ctx, pgtest.New(b), postgres.Options{})
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			var ids []int64
			for i := range orgs {
				o, err := s.CreateOrg(ctx, fmt.Sprintf("org%d", i))
				if err != nil {
					b.Fatal(err)
				}
				ids = append(ids, o.ID)
			}
			const senders, batch = 8, 100
			var next sync.Mutex
			n := 0
			b.ResetTimer()
			var wg sync.WaitGroup
			for w := range senders {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for i := 0; ; i++ {
						next.Lock()
						if n >= b.N {
							next.Unlock()
							return
						}
						n++
						next.Unlock()
						evs := laneEvents(fmt.Sprintf("w%d-%d-", w, i), batch)
						if _, err := s.Append(ctx, ids[w%orgs], evs); err != nil {
							b.Error(err)
							return
						}
					}
				}()
			}
			wg.Wait()
			b.ReportMetric(float64(b.N*batch)/b.Elapsed().Seconds(), "events/s")
		})
	}
}
