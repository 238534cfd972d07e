package export

import (
	"context"
	"fmt"
	"net/url"
	"time"

	veritrail "github.com/veritrail/veritrail"
	"github.com/veritrail/veritrail/internal/admission"
)

// ParseQuery reads the filters of an export: every filter of the list API,
// in the order given (default asc, oldest first), without limit or cursor
// (an export holds every matching event). withContent is whether the
// reader may see content; relative times ("-24h") are read against now,
// the time the export was asked for.
func ParseQuery(vals url.Values, withContent bool, now time.Time) (*veritrail.Query, error) {
	for _, k := range []string{"limit", "cursor"} {
		if vals.Has(k) {
			return nil, veritrail.Errorf(veritrail.EInvalid, "parameter %s: an export holds every matching event; leave it out", k)
		}
	}
	q, err := veritrail.ParseQueryAt(vals, withContent, now)
	if err == nil && !vals.Has("order") {
		q.Order = veritrail.OrderAsc
	}
	return q, err
}

// Source is what an export reads events from: a store.
type Source interface {
	Query(ctx context.Context, org int64, q *veritrail.Query) (*veritrail.Page, error)
	LogHead(ctx context.Context, org int64) (size int64, root []byte, err error)
}

// WriteEvents writes every event of org matching q into w, a page at a
// time (memory stays flat), and reports the count so far after each page
// to progress (nil: not reported). A polling-order export stops at the
// log's size when it began, so it ends while appends go on. It does not
// close w.
//
// Each page is read and written in a bulk turn of turns (nil: no
// scheduling), given back before progress is reported: while ingest is
// busy the export slows down to the readers' share, and goes on.
func WriteEvents(ctx context.Context, src Source, org int64, q *veritrail.Query, w Writer, turns *admission.Scheduler, progress func(n int64)) error {
	q.Limit = veritrail.MaxLimit
	stopAt := int64(-1)
	if q.Order == veritrail.OrderSeq {
		size, _, err := src.LogHead(ctx, org)
		if err != nil {
			return err
		}
		stopAt = size
	}
	for {
		page, done, err := writePage(ctx, src, org, q, w, turns, stopAt)
		if err != nil || done {
			return err
		}
		if progress != nil {
			progress(w.Count())
		}
		if page.Next == nil || len(page.Events) == 0 {
			return nil
		}
		q.After = page.Next
	}
}

// writePage reads the next page of q and writes it into w, in one turn;
// done is set once stopAt is reached.
func writePage(ctx context.Context, src Source, org int64, q *veritrail.Query, w Writer, turns *admission.Scheduler, stopAt int64) (page *veritrail.Page, done bool, err error) {
	turn, err := turns.Acquire(ctx, admission.Bulk)
	if err != nil {
		return nil, false, err
	}
	defer turn.Release()
	if page, err = src.Query(ctx, org, q); err != nil {
		return nil, false, err
	}
	for i := range page.Events {
		if stopAt >= 0 && page.Events[i].Seq >= stopAt {
			return page, true, nil
		}
		if err := w.Write(&page.Events[i]); err != nil {
			return nil, false, err
		}
	}
	return page, false, nil
}

// FileName is the name an export's file is offered under: the
// organization, the time of the export, the format's extension.
func FileName(org, format string, at time.Time) string {
	return fmt.Sprintf("veritrail-%s-events-%s.%s", org, at.UTC().Format("20060102-150405"), Extension(format))
}
