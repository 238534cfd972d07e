package sqlite

import "time"

// SetTailLimits sets the postings tail's limits (tail.go) for the stores
// opened until restore is called: events 1 writes the tail out in every
// commit, a huge one with a huge age never (queries then read every
// event's entries from the tail). The idle lane writes it out at the same
// size (SetTailTriggers sets them apart).
func SetTailLimits(events int, age time.Duration) (restore func()) {
	return SetTailTriggers(events, events, age)
}

// SetTailTriggers sets the tail size the idle lane writes out (idle), the
// size a commit writes out (commit) and the age, until restore is called.
func SetTailTriggers(idle, commit int, age time.Duration) (restore func()) {
	i, e, a := tailIdleEvents, tailFlushEvents, tailMaxAge
	tailIdleEvents, tailFlushEvents, tailMaxAge = idle, commit, age
	return func() { tailIdleEvents, tailFlushEvents, tailMaxAge = i, e, a }
}

// TailWrites returns how many postings tails commits and the idle lane
// have written out since Open.
func (s *Store) TailWrites() (inCommit, idle int64) {
	return s.writer.tailWrites[0].Load(), s.writer.tailWrites[1].Load()
}

// TailLen returns how many events org's postings tail holds in memory
// past its frontier.
func (s *Store) TailLen(org int64) int {
	t := s.tails.get(org)
	if t == nil {
		return 0
	}
	return len(t.unflushed())
}
