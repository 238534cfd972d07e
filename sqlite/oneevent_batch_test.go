package sqlite

import (
	"context"
	"fmt"
	"testing"
	"time"

	veritrail "github.com/veritrail/veritrail"
	"github.com/veritrail/veritrail/internal/commitq"
	"github.com/veritrail/veritrail/verify"
)

// TestBatchOfOneEventRequests writes crafted group commits of one-event
// requests through the real writer (run on the lane, between batches),
// as a busy server's commit lane gets them: runs of new ids of two
// organizations interleaved, and among them an id stored by an earlier
// batch, an id sent twice in one batch, and a changed event under a
// stored id. Each request must get the verdict it would get alone, the
// seqs must be gap-free in queue order, and the log and index must
// verify. A change to how a commit claims the ids of many one-event
// requests (BENCHMARKS.md, one event per request) must keep this.
func TestBatchOfOneEventRequests(t *testing.T) {
	ctx := context.Background()
	s, err := Open(ctx, t.TempDir(), Options{BucketShift: 6})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	acme, err := s.CreateOrg(ctx, "acme")
	if err != nil {
		t.Fatal(err)
	}
	other, err := s.CreateOrg(ctx, "other")
	if err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)
	mk := func(id, detail string) *veritrail.Event {
		return &veritrail.Event{ID: id, Type: "auth.login", Time: at, Actor: veritrail.Actor{Type: "user", ID: "ann"},
			Content: []byte(`{"detail":"` + detail + `"}`)}
	}
	// want is a request's verdict: its seq, a duplicate, or refused.
	type want struct {
		seq       int64
		duplicate bool
		conflict  bool
	}
	type req struct {
		org  int64
		id   string
		body string
		want want
	}
	write := func(t *testing.T, reqs []req) {
		t.Helper()
		batch := make([]*commitq.Request, len(reqs))
		for i, r := range reqs {
			batch[i] = &commitq.Request{Org: r.org, Events: []*veritrail.Event{mk(r.id, r.body)}}
		}
		err := s.queue.Do(ctx, acme.ID, func(ctx context.Context) error {
			_, err := s.writer.WriteBatch(ctx, batch)
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		for i, r := range reqs {
			got := batch[i]
			if r.want.conflict {
				if veritrail.ErrorCode(got.Err) != veritrail.EConflict {
					t.Errorf("request %d (%s): %v, want a conflict", i, r.id, got.Err)
				}
				continue
			}
			if got.Err != nil || len(got.Results) != 1 {
				t.Errorf("request %d (%s): %v %v", i, r.id, got.Results, got.Err)
				continue
			}
			if res := got.Results[0]; res.Seq != r.want.seq || res.Duplicate != r.want.duplicate {
				t.Errorf("request %d (%s): %+v, want %+v", i, r.id, res, r.want)
			}
		}
	}
	run := func(org int64, prefix string, first int64, n int) []req {
		var out []req
		for i := range n {
			out = append(out, req{org, fmt.Sprintf("%s%d", prefix, i), "x", want{seq: first + int64(i)}})
		}
		return out
	}
	cat := func(parts ...[]req) []req {
		var out []req
		for _, p := range parts {
			out = append(out, p...)
		}
		return out
	}
	// All new: one run per organization, the organizations interleaved
	// in runs, over several buckets of 64.
	write(t, cat(run(acme.ID, "a", 0, 100), run(other.ID, "o", 0, 30), run(acme.ID, "b", 100, 50)))
	// An id stored by an earlier batch in the middle of a run: the run
	// is resolved request by request; the resend is a duplicate.
	write(t, cat(run(acme.ID, "c", 150, 10),
		[]req{{acme.ID, "a7", "x", want{seq: 7, duplicate: true}}},
		run(acme.ID, "d", 160, 10)))
	// An id sent twice in one batch, and a changed event under a stored id.
	write(t, cat(run(acme.ID, "e", 170, 5),
		[]req{{acme.ID, "e2", "x", want{seq: 172, duplicate: true}}},
		run(acme.ID, "f", 175, 5),
		[]req{{acme.ID, "b3", "changed", want{conflict: true}}},
		run(acme.ID, "g", 180, 5),
		[]req{{other.ID, "o1", "changed", want{conflict: true}}},
		run(other.ID, "p", 30, 3)))
	// The last run's claims are in: a further batch sees them stored.
	write(t, []req{{acme.ID, "g4", "x", want{seq: 184, duplicate: true}}, {acme.ID, "h0", "x", want{seq: 185}}})
	if t.Failed() {
		return
	}
	for org, n := range map[int64]int64{acme.ID: 186, other.ID: 33} {
		p, err := s.Query(ctx, org, &veritrail.Query{Order: veritrail.OrderSeq, Limit: 1000})
		if err != nil {
			t.Fatal(err)
		}
		if int64(len(p.Events)) != n {
			t.Fatalf("org %d: a query finds %d events, want %d", org, len(p.Events), n)
		}
		for i, e := range p.Events {
			if e.Seq != int64(i) {
				t.Fatalf("org %d: event %d of the log has seq %d", org, i, e.Seq)
			}
		}
	}
	e, err := s.EventByID(ctx, acme.ID, "d3", false)
	if err != nil || e.Seq != 163 {
		t.Fatalf("d3: %+v %v", e, err)
	}
	rep := &verify.Report{Max: 10}
	if _, err := verify.Check(ctx, s.VerifySource(), verify.Options{Index: true}, rep); err != nil || !rep.OK() {
		t.Fatalf("verify: %v %v", err, rep.Failures)
	}
}
