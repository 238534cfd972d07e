package export

import (
	"context"
	"fmt"
	"net/url"
	"time"

	veritrail "github.com/veritrail/veritrail"
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
func WriteEvents(ctx context.Context, src Source, org int64, q *veritrail.Query, w Writer, progress func(n int64)) error {
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
		page, err := src.Query(ctx, org, q)
		if err != nil {
			return err
		}
		for i := range page.Events {
			if stopAt >= 0 && page.Events[i].Seq >= stopAt {
				return nil
			}
			if err := w.Write(&page.Events[i]); err != nil {
				return err
			}
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

// FileName is the name an export's file is offered under: the
// organization, the time of the export, the format's extension.
func FileName(org, format string, at time.Time) string {
	return fmt.Sprintf("veritrail-%s-events-%s.%s", org, at.UTC().Format("20060102-150405"), Extension(format))
}
