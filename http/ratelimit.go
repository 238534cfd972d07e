package http

import (
	"math"
	"net/http"
	"strconv"
	"sync"
	"time"
)

// rateLimiter gives every token its own bucket of requests, refilled
// continuously, so one greedy poller cannot starve ingest or other readers.
// Limit is the bucket's size and what refills it per minute.
type rateLimiter struct {
	limit   float64 // requests per minute; 0 disables
	now     func() time.Time
	mu      sync.Mutex
	buckets map[string]*bucket
	sweep   time.Time
}

type bucket struct {
	tokens float64
	at     time.Time
}

func newRateLimiter(perMinute int, now func() time.Time) *rateLimiter {
	return &rateLimiter{limit: float64(perMinute), now: now, buckets: map[string]*bucket{}}
}

// allow takes one request from key's bucket and sets the X-RateLimit-*
// headers; it reports false (and sets Retry-After) when the bucket is empty.
func (l *rateLimiter) allow(w http.ResponseWriter, key string) bool {
	if l == nil || l.limit <= 0 {
		return true
	}
	now := l.now()
	rate := l.limit / 60 // per second
	l.mu.Lock()
	if now.Sub(l.sweep) > 10*time.Minute {
		// Forget buckets full long enough to be indistinguishable from new.
		for k, b := range l.buckets {
			if now.Sub(b.at).Seconds()*rate >= l.limit {
				delete(l.buckets, k)
			}
		}
		l.sweep = now
	}
	b := l.buckets[key]
	if b == nil {
		b = &bucket{tokens: l.limit, at: now}
		l.buckets[key] = b
	}
	b.tokens = math.Min(l.limit, b.tokens+now.Sub(b.at).Seconds()*rate)
	b.at = now
	ok := b.tokens >= 1
	if ok {
		b.tokens--
	}
	remaining, deficit := b.tokens, l.limit-b.tokens
	l.mu.Unlock()

	h := w.Header()
	h.Set("X-RateLimit-Limit", strconv.Itoa(int(l.limit)))
	h.Set("X-RateLimit-Remaining", strconv.Itoa(int(math.Floor(remaining))))
	h.Set("X-RateLimit-Reset", strconv.Itoa(int(math.Ceil(deficit/rate))))
	if !ok {
		h.Set("Retry-After", strconv.Itoa(max(1, int(math.Ceil((1-remaining)/rate)))))
	}
	return ok
}
