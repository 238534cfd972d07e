package sqlite

import "time"

// SetTailLimits sets the postings tail's limits (tail.go) for the stores
// opened until restore is called: events 1 writes the tail out in every
// commit, a huge one with a huge age never (queries then read every
// event's entries from the tail).
func SetTailLimits(events int, age time.Duration) (restore func()) {
	e, a := tailFlushEvents, tailMaxAge
	tailFlushEvents, tailMaxAge = events, age
	return func() { tailFlushEvents, tailMaxAge = e, a }
}
