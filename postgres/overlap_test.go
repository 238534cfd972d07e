package postgres_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	veritrail "github.com/veritrail/veritrail"
	"github.com/veritrail/veritrail/postgres"
	"github.com/veritrail/veritrail/postgres/pgtest"
	"github.com/veritrail/veritrail/tlog"
)

// checkLog reads org's events in seq order and checks that their seqs are
// 0…size-1 with no gap and that the stored log head is the Merkle tree of
// their envelopes.
func checkLog(t *testing.T, ctx context.Context, s *postgres.Store, conn *pgx.Conn, org int64) int64 {
	t.Helper()
	rows, err := conn.Query(ctx, `SELECT seq, envelope FROM events WHERE org_id = $1 ORDER BY seq`, org)
	if err != nil {
		t.Fatal(err)
	}
	h := tlog.NewHead()
	var n int64
	for rows.Next() {
		var seq int64
		var env []byte
		if err := rows.Scan(&seq, &env); err != nil {
			t.Fatal(err)
		}
		if seq != n {
			t.Fatalf("org %d: seq %d where %d was due", org, seq, n)
		}
		leaf := sha256.Sum256(append([]byte{0}, env...))
		h.Append(leaf[:])
		n++
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	size, root, err := s.LogHead(ctx, org)
	if err != nil {
		t.Fatal(err)
	}
	if size != n || !bytes.Equal(root, h.Root()) {
		t.Fatalf("org %d: log head size %d root %x; the %d stored events make root %x", org, size, root, n, h.Root())
	}
	return n
}

// oneLaneStore opens a store with one commit lane on a fresh cluster,
// closed when t ends, and creates an organization.
func oneLaneStore(t *testing.T) (string, *postgres.Store, *veritrail.Org) {
	t.Helper()
	ctx := context.Background()
	url := pgtest.New(t)
	s, err := postgres.Open(ctx, url, postgres.Options{CommitLanes: 1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	a, err := s.CreateOrg(ctx, "acme")
	if err != nil {
		t.Fatal(err)
	}
	return url, s, a
}

// TestOverlappedCommitsKeepTheLog: many concurrent appends to one
// organization (one lane, so its batches overlap: the next one is built on
// the heads of the one still committing) store every event once, at
// gap-free seqs, with the log head the tree of what is stored.
func TestOverlappedCommitsKeepTheLog(t *testing.T) {
	ctx := context.Background()
	url, s, a := oneLaneStore(t)
	const senders, requests, perRequest = 8, 15, 40
	var wg sync.WaitGroup
	var mu sync.Mutex
	seqs := map[int64]bool{}
	for g := range senders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range requests {
				res, err := s.Append(ctx, a.ID, laneEvents(fmt.Sprintf("g%d-%d-", g, i), perRequest))
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				for _, r := range res {
					if seqs[r.Seq] || r.Duplicate {
						t.Errorf("seq %d answered twice (duplicate %v)", r.Seq, r.Duplicate)
					}
					seqs[r.Seq] = true
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if n := checkLog(t, ctx, s, conn, a.ID); n != senders*requests*perRequest || len(seqs) != int(n) {
		t.Fatalf("%d events stored, %d seqs answered, want %d", n, len(seqs), senders*requests*perRequest)
	}
}

// TestOverlappedCommitAfterAFailure: a batch starts while the one before
// it is still inserting its rows, and is built on that batch's heads; the
// first batch then fails. The second MUST NOT commit on heads that were
// never committed: it is written again, its events take the seqs the
// failed batch would have used, and the log stays the tree of what is
// stored.
func TestOverlappedCommitAfterAFailure(t *testing.T) {
	ctx := context.Background()
	url, s, a := oneLaneStore(t)
	if _, err := s.Append(ctx, a.ID, laneEvents("before", 5)); err != nil {
		t.Fatal(err)
	}
	// The insert of the event "boom" waits until the test lets it go,
	// then fails its batch.
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	for _, sql := range []string{
		`CREATE FUNCTION test_boom() RETURNS trigger LANGUAGE plpgsql AS $$
		BEGIN
			IF NEW.id = 'boom' THEN
				PERFORM pg_advisory_xact_lock(4242);
				RAISE EXCEPTION 'boom';
			END IF;
			RETURN NEW;
		END $$`,
		`CREATE TRIGGER test_boom BEFORE INSERT ON events FOR EACH ROW EXECUTE FUNCTION test_boom()`,
		`SELECT pg_advisory_lock(4242)`,
	} {
		if _, err := conn.Exec(ctx, sql); err != nil {
			t.Fatal(err)
		}
	}
	type result struct {
		res []veritrail.AppendResult
		err error
	}
	failing, second := make(chan result, 1), make(chan result, 1)
	go func() {
		evs := laneEvents("first", 3)
		evs[2].ID = "boom"
		res, err := s.Append(ctx, a.ID, evs)
		failing <- result{res, err}
	}()
	watcher, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer watcher.Close(ctx)
	waitSQL := func(what, sql string) {
		t.Helper()
		for deadline := time.Now().Add(time.Minute); ; time.Sleep(5 * time.Millisecond) {
			var ok bool
			if err := watcher.QueryRow(ctx, sql).Scan(&ok); err != nil {
				t.Fatal(err)
			}
			if ok {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("never saw %s", what)
			}
		}
	}
	waitSQL("the first batch's insert waiting", `SELECT EXISTS (SELECT 1 FROM pg_stat_activity WHERE wait_event = 'advisory' AND query LIKE 'COPY%')`)
	go func() {
		res, err := s.Append(ctx, a.ID, laneEvents("second", 4))
		second <- result{res, err}
	}()
	// The second batch's rows go in while the first batch's transaction
	// is still open: the overlap.
	waitSQL("the second batch's rows inserted beside the first's", `SELECT count(*) = 2 FROM pg_stat_activity WHERE query LIKE 'COPY%' AND state IN ('active', 'idle in transaction')`)
	select {
	case r := <-second:
		t.Fatalf("the second batch was answered while the first was open: %+v %v", r.res, r.err)
	default:
	}
	if _, err := conn.Exec(ctx, `SELECT pg_advisory_unlock(4242)`); err != nil {
		t.Fatal(err)
	}
	if r := <-failing; r.err == nil {
		t.Fatalf("the batch with the failing insert was answered %+v", r.res)
	}
	r := <-second
	if r.err != nil || len(r.res) != 4 || r.res[0].Seq != 5 || r.res[3].Seq != 8 {
		t.Fatalf("second batch: %+v %v, want seqs 5…8", r.res, r.err)
	}
	if n := s.CommitsRewritten(); n != 1 {
		t.Fatalf("%d batches written again, want 1 (the second)", n)
	}
	if n := checkLog(t, ctx, s, conn, a.ID); n != 9 {
		t.Fatalf("%d events stored, want 9", n)
	}
	// The failed batch's events can be sent again.
	if res, err := s.Append(ctx, a.ID, laneEvents("first", 2)); err != nil || res[0].Seq != 9 || res[0].Duplicate {
		t.Fatalf("the failed batch's events again: %+v %v", res, err)
	}
	checkLog(t, ctx, s, conn, a.ID)
}

// TestOverlappedCommitsTwoNodes: two nodes append to one organization at
// once, each overlapping its own batches; a batch built on its node's
// previous one while the other node appended in between is written again,
// and the log stays gap-free and the tree of what is stored.
func TestOverlappedCommitsTwoNodes(t *testing.T) {
	ctx := context.Background()
	url := pgtest.New(t)
	var nodes [2]*postgres.Store
	for i := range nodes {
		s, err := postgres.Open(ctx, url, postgres.Options{CommitLanes: 1})
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		nodes[i] = s
	}
	a, err := nodes[0].CreateOrg(ctx, "acme")
	if err != nil {
		t.Fatal(err)
	}
	const senders, requests, perRequest = 4, 10, 30
	var wg sync.WaitGroup
	for n, s := range nodes {
		for g := range senders {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range requests {
					if _, err := s.Append(ctx, a.ID, laneEvents(fmt.Sprintf("n%d-g%d-%d-", n, g, i), perRequest)); err != nil {
						t.Error(err)
						return
					}
				}
			}()
		}
	}
	wg.Wait()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if n := checkLog(t, ctx, nodes[0], conn, a.ID); n != 2*senders*requests*perRequest {
		t.Fatalf("%d events stored, want %d", n, 2*senders*requests*perRequest)
	}
	t.Logf("batches written again: %d and %d", nodes[0].CommitsRewritten(), nodes[1].CommitsRewritten())
}
