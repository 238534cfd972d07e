package veritrail

import (
	"fmt"
	"maps"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Query parameters: how the list API (GET /api/v1/events) and the filters of
// an export are read into a Query. Both take the same parameters, so one
// parser serves the HTTP layer and the export jobs, which run outside it.

// commaFields may carry several values separated by commas: their values
// cannot contain commas.
var commaFields = map[Field]bool{
	FieldType: true, FieldOutcome: true, FieldDecision: true,
	FieldStatus: true, FieldIP: true, FieldActorType: true,
}

// ParseQuery turns list parameters into a query. Unknown parameters are
// refused: a misspelt filter must not silently widen an investigation.
// withContent is whether the reader may see content (content:read): it
// decides both whether content is returned and whether q matches words of
// content. Errors are EInvalid (or EInvalidCursor) and name the parameter.
func ParseQuery(vals url.Values, withContent bool) (*Query, error) {
	q := &Query{WithContent: withContent, TextInContent: withContent}
	one := func(name string) (string, error) {
		vs := vals[name]
		if len(vs) > 1 {
			return "", Errorf(EInvalid, "parameter %s: give it once", name)
		}
		return vs[0], nil
	}
	var cursor string
	for _, name := range slices.Sorted(maps.Keys(vals)) {
		v, err := one(name)
		switch name {
		case "since", "until":
			if err != nil {
				return nil, err
			}
			t, err := ParseTime(v)
			if err != nil {
				return nil, Errorf(EInvalid, "parameter %s: %v", name, err)
			}
			if name == "since" {
				q.Since = t
			} else {
				q.Until = t
			}
		case "q":
			if err != nil {
				return nil, err
			}
			q.Text = strings.TrimSpace(v)
		case "order":
			if err != nil {
				return nil, err
			}
			o, ok := ParseOrder(v)
			if !ok {
				return nil, Errorf(EInvalid, "parameter order: must be desc, asc or seq, got %q", v)
			}
			q.Order = o
		case "limit":
			if err != nil {
				return nil, err
			}
			n, err := strconv.Atoi(v)
			if err != nil || n < 1 || n > MaxLimit {
				return nil, Errorf(EInvalid, "parameter limit: must be 1 to %d, got %q", MaxLimit, v)
			}
			q.Limit = n
		case "cursor":
			if err != nil {
				return nil, err
			}
			cursor = v
		default:
			f, ok := FieldByName(name)
			if !ok {
				return nil, Errorf(EInvalid, "unknown parameter %q; filters are: %s", name, filterNames())
			}
			filter := Filter{Field: f}
			for _, v := range vals[name] {
				parts := []string{v}
				if commaFields[f] {
					parts = strings.Split(v, ",")
				}
				for _, part := range parts {
					kr, err := ParseFilterValue(f, strings.TrimSpace(part))
					if err != nil {
						return nil, err
					}
					filter.Ranges = append(filter.Ranges, kr)
				}
			}
			q.Filters = append(q.Filters, filter)
		}
	}
	if !q.Since.IsZero() && !q.Until.IsZero() && !q.Since.Before(q.Until) {
		return nil, Errorf(EInvalid, "since (%s) must be before until (%s)", q.Since.Format(time.RFC3339Nano), q.Until.Format(time.RFC3339Nano))
	}
	if cursor != "" {
		c, err := DecodeCursor(cursor, q)
		if err != nil {
			return nil, err
		}
		q.After = c
	}
	return q, nil
}

func filterNames() string {
	var names []string
	for _, f := range Fields {
		names = append(names, f.String())
	}
	return strings.Join(names, ", ") + ", since, until, q, order, limit, cursor"
}

// ParseTime accepts RFC 3339 with any number of fractional digits, or a
// date (midnight UTC).
func ParseTime(v string) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339Nano, v); err == nil {
		return t.UTC(), nil
	}
	if t, err := time.Parse("2006-01-02", v); err == nil {
		return t, nil
	}
	return time.Time{}, fmt.Errorf("%q is not an RFC 3339 time (2026-06-20T14:32:01Z) or a date (2026-06-20)", v)
}
