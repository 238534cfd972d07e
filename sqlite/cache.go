package sqlite

import (
	"container/list"
	"sync"

	veritrail "github.com/veritrail/veritrail"
)

// bucketCache keeps what queries decode of buckets, so queries that
// revisit buckets (every page of a paging client, every stats of the
// console) do not decode them again: a bucket's times (bucketData) or one
// field's column (column). An entry is valid for one event count: the
// open bucket grows, and a query reading a different count than cached
// reloads it. Removals (retention) are the only other change to a
// bucket's postings: they forget the organization's entries.
type bucketCache struct {
	mu    sync.Mutex
	max   int // total size held, in bytes
	held  int
	order *list.List // front: most recent
	items map[bucketCacheKey]*list.Element
	gen   uint64 // moves at every forget
}

// bucketCacheKey names an entry: field is timesField for the bucket's
// times, otherwise the field of a column.
type bucketCacheKey struct {
	org, bucket int64
	field       veritrail.Field
}

type cacheEntry struct {
	key   bucketCacheKey
	count int64
	data  any
	size  int
}

func newBucketCache(maxBytes int) *bucketCache {
	return &bucketCache{max: maxBytes, order: list.New(), items: map[bucketCacheKey]*list.Element{}}
}

// get returns the cached entry of a bucket holding count events. It is
// shared: callers must not modify it.
func (c *bucketCache) get(k bucketCacheKey, count int64) any {
	c.mu.Lock()
	defer c.mu.Unlock()
	el := c.items[k]
	if el == nil {
		return nil
	}
	e := el.Value.(*cacheEntry)
	if e.count != count {
		return nil
	}
	c.order.MoveToFront(el)
	return e.data
}

// generation is to be read before the snapshot that data is loaded from
// begins, and handed to put.
func (c *bucketCache) generation() uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.gen
}

// put caches data (of size bytes) of a bucket holding count events, unless
// a forget came since gen was read: data may then be from a snapshot older
// than the removal.
func (c *bucketCache) put(k bucketCacheKey, count int64, data any, size int, gen uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if gen != c.gen {
		return
	}
	if el := c.items[k]; el != nil {
		e := el.Value.(*cacheEntry)
		c.held += size - e.size
		e.count, e.data, e.size = count, data, size
		c.order.MoveToFront(el)
	} else {
		c.items[k] = c.order.PushFront(&cacheEntry{key: k, count: count, data: data, size: size})
		c.held += size
	}
	for c.held > c.max && c.order.Len() > 1 {
		el := c.order.Back()
		e := el.Value.(*cacheEntry)
		c.order.Remove(el)
		delete(c.items, e.key)
		c.held -= e.size
	}
}

// forget drops an organization's entries (after retention rewrites them).
func (c *bucketCache) forget(org int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
	for k, el := range c.items {
		if k.org == org {
			c.held -= el.Value.(*cacheEntry).size
			c.order.Remove(el)
			delete(c.items, k)
		}
	}
}
