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
	FieldStatus: true, FieldIP: true, FieldActorType: true, FieldClass: true,
}

// ParseQuery is ParseQueryAt reading relative times against the clock.
func ParseQuery(vals url.Values, withContent bool) (*Query, error) {
	return ParseQueryAt(vals, withContent, time.Now())
}

// ParseQueryAt turns list parameters into a query. Unknown parameters are
// refused: a misspelt filter must not silently widen an investigation.
// withContent is whether the reader may see content (content:read): it
// decides both whether content is returned and whether q matches words of
// content. Relative times in since and until ("-24h", "-7d", "now") are
// read against now, or against the anchor of the cursor when one is given,
// so every page of a query has the window of its first. A filter value
// starting with "!" excludes instead of selecting ("\!" is a literal "!").
// Errors are EInvalid (or EInvalidCursor) and name the parameter.
func ParseQueryAt(vals url.Values, withContent bool, now time.Time) (*Query, error) {
	q := &Query{WithContent: withContent, TextInContent: withContent}
	one := func(name string) (string, error) {
		vs := vals[name]
		if len(vs) > 1 {
			return "", Errorf(EInvalid, "parameter %s: give it once", name)
		}
		return vs[0], nil
	}
	var cursor string
	// Relative times are read once the anchor is known (the cursor's).
	var relative []func(anchor time.Time)
	for _, name := range slices.Sorted(maps.Keys(vals)) {
		v, err := one(name)
		switch name {
		case "since", "until":
			if err != nil {
				return nil, err
			}
			dst := &q.Since
			if name == "until" {
				dst = &q.Until
			}
			back, isRel, err := parseRelativeTime(v)
			if err != nil {
				return nil, Errorf(EInvalid, "parameter %s: %v", name, err)
			}
			if isRel {
				relative = append(relative, func(anchor time.Time) { *dst = anchor.Add(-back) })
				continue
			}
			t, err := ParseTime(v)
			if err != nil {
				return nil, Errorf(EInvalid, "parameter %s: %v", name, err)
			}
			*dst = t
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
					part = strings.TrimSpace(part)
					exclude := false
					switch {
					case strings.HasPrefix(part, `\!`):
						part = part[1:]
					case strings.HasPrefix(part, "!"):
						exclude, part = true, strings.TrimSpace(part[1:])
						if part == "" {
							return nil, Errorf(EInvalid, "parameter %s: \"!\" excludes the value after it, and there is none", name)
						}
					}
					kr, err := ParseFilterValue(f, part)
					if err != nil {
						return nil, err
					}
					if exclude {
						filter.Exclude = append(filter.Exclude, kr)
					} else {
						filter.Ranges = append(filter.Ranges, kr)
					}
				}
			}
			q.Filters = append(q.Filters, filter)
		}
	}
	if len(relative) > 0 {
		q.Anchor = now.UTC()
		if cursor != "" {
			// The cursor's anchor (checked with the rest of the cursor
			// below: a changed anchor changes the window, so the
			// fingerprint).
			if c, err := decodeCursor(cursor); err == nil && c.Anchor != 0 {
				q.Anchor = time.Unix(0, c.Anchor).UTC()
			}
		}
		for _, set := range relative {
			set(q.Anchor)
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
	for _, f := range FilterFields {
		names = append(names, f.String())
	}
	return strings.Join(names, ", ") + ", since, until, q, order, limit, cursor"
}

// relativeUnits are the units of a relative time: seconds to weeks.
var relativeUnits = map[byte]time.Duration{
	's': time.Second, 'm': time.Minute, 'h': time.Hour, 'd': 24 * time.Hour, 'w': 7 * 24 * time.Hour,
}

// parseRelativeTime reads a time relative to now: "now", or a duration
// back from now, "-24h", "-7d", "-1d12h", "-90m" (also written
// "now-24h"). It returns how far back, and false when v is not relative
// (an error only for a value that is relative but malformed).
func parseRelativeTime(v string) (back time.Duration, ok bool, err error) {
	rest, now := strings.CutPrefix(v, "now")
	if now && rest == "" {
		return 0, true, nil
	}
	if !strings.HasPrefix(rest, "-") || (!now && (len(rest) < 2 || rest[1] < '0' || rest[1] > '9')) {
		if now {
			return 0, false, fmt.Errorf("%q: after now comes a duration back such as -24h", v)
		}
		return 0, false, nil
	}
	bad := fmt.Errorf("%q is not a time back from now such as -24h, -7d or -1d12h (units s, m, h, d, w)", v)
	rest = rest[1:]
	if rest == "" {
		return 0, false, bad
	}
	for rest != "" {
		i := 0
		for i < len(rest) && rest[i] >= '0' && rest[i] <= '9' {
			i++
		}
		unit, known := relativeUnits[rest[min(i, len(rest)-1)]]
		if i == 0 || i == len(rest) || !known {
			return 0, false, bad
		}
		const maxBack = 100 * 365 * 24 * time.Hour
		n, _ := strconv.ParseInt(rest[:i], 10, 64)
		if n > int64(maxBack/unit) || back+time.Duration(n)*unit > maxBack {
			return 0, false, fmt.Errorf("%q reaches back more than 100 years", v)
		}
		back += time.Duration(n) * unit
		rest = rest[i+1:]
	}
	return back, true, nil
}

// ParseTime accepts RFC 3339 with any number of fractional digits, or a
// date (midnight UTC). A "+" sent unescaped in a query string arrives as a
// space: the error then says so, with the time it was likely meant to be.
func ParseTime(v string) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339Nano, v); err == nil {
		return t.UTC(), nil
	}
	if t, err := time.Parse("2006-01-02", v); err == nil {
		return t, nil
	}
	if i := strings.LastIndexByte(v, ' '); i > 0 {
		meant := v[:i] + "+" + v[i+1:]
		if _, err := time.Parse(time.RFC3339Nano, meant); err == nil {
			return time.Time{}, fmt.Errorf("%q is not an RFC 3339 time: did you mean %s? A + in a URL's query must be encoded as %%2B (a bare + reads as a space)", v, meant)
		}
	}
	return time.Time{}, fmt.Errorf("%q is not an RFC 3339 time (2026-06-20T14:32:01Z), a date (2026-06-20), or a time back from now (-24h, -7d, now)", v)
}
