package postgres

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
)

// Token revocations must reach every node's token cache at once. Each
// revocation bumps its organization's row of token_generations in its own
// transaction, and a node reads that row before trusting a cached token of
// the organization (one row keyed by org_id: on Citus it is on the
// organization's worker, and organizations do not disturb each other's
// caches). The read is shared per organization: callers
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

// generations holds one shared read per organization.
type generations struct {
	mu    sync.Mutex
	reads map[int64]*sharedRead
}

func (g *generations) of(org int64) *sharedRead {
	g.mu.Lock()
	defer g.mu.Unlock()
	r := g.reads[org]
	if r == nil {
		if g.reads == nil {
			g.reads = map[int64]*sharedRead{}
		}
		r = &sharedRead{}
		g.reads[org] = r
	}
	return r
}

// RevocationGeneration implements veritrail.TokenStore.
func (s *Store) RevocationGeneration(ctx context.Context, orgID int64) (uint64, error) {
	return s.generation.of(orgID).get(ctx, func(ctx context.Context) (uint64, error) {
		// A plain one-shard read (Citus routes it to the organization's
		// worker); no row is no revocation yet.
		var g int64
		err := s.pool.QueryRow(ctx, `SELECT generation FROM token_generations WHERE org_id = $1`, orgID).Scan(&g)
		if errors.Is(err, pgx.ErrNoRows) {
			return 0, nil
		}
		return uint64(g), err
	})
}
