package postgres

import (
	"context"
	"sync"
	"time"
)

// Token revocations must reach every node's token cache at once. Each
// revocation bumps token_generation in its own transaction, and a node
// reads that row before trusting its cache. The read is shared: callers
// that arrive while a read is under way wait for the next one, which
// starts after all of them arrived, so each sees every revocation that
// completed before it asked, and under load one round trip serves many
// requests, as group commit does for writes.

// sharedRead runs one query for every caller waiting on it.
type sharedRead struct {
	mu      sync.Mutex
	next    *readRound // the round callers join; its query has not started
	running sync.Mutex // held while a round's query runs
}

type readRound struct {
	done chan struct{}
	v    uint64
	err  error
}

// get returns a value read by a query that started after get was called.
func (r *sharedRead) get(ctx context.Context, query func(context.Context) (uint64, error)) (uint64, error) {
	r.mu.Lock()
	rd := r.next
	if rd == nil {
		// Lead a new round: wait for the running query (callers arriving
		// meanwhile join this round), close the round, then read.
		rd = &readRound{done: make(chan struct{})}
		r.next = rd
		r.mu.Unlock()
		r.running.Lock()
		r.mu.Lock()
		r.next = nil
		r.mu.Unlock()
		// Not the leader's context alone: the round's other callers
		// wait on this query too.
		qctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		rd.v, rd.err = query(qctx)
		cancel()
		r.running.Unlock()
		close(rd.done)
	} else {
		r.mu.Unlock()
	}
	select {
	case <-rd.done:
		return rd.v, rd.err
	case <-ctx.Done():
		return 0, ctx.Err()
	}
}

// RevocationGeneration implements veritrail.TokenStore.
func (s *Store) RevocationGeneration(ctx context.Context) (uint64, error) {
	return s.generation.get(ctx, func(ctx context.Context) (uint64, error) {
		var g int64
		err := s.pool.QueryRow(ctx, `SELECT generation FROM token_generation`).Scan(&g)
		return uint64(g), err
	})
}
