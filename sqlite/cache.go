package sqlite

import (
	"container/list"
	"sync"
)

// timesCache keeps decoded bucket times, so queries that revisit buckets
// (every page of a paging client) do not decode them again. An entry is
// valid for one event count: the open bucket grows, and a query reading a
// different count than cached reloads it.
type timesCache struct {
	mu    sync.Mutex
	max   int // total times held
	held  int
	order *list.List // front: most recent
	items map[timesCacheKey]*list.Element
	gen   uint64 // moves at every forget
}

type timesCacheKey struct{ org, bucket int64 }

type timesEntry struct {
	key   timesCacheKey
	count int64
	data  *bucketData
}

func newTimesCache(max int) *timesCache {
	return &timesCache{max: max, order: list.New(), items: map[timesCacheKey]*list.Element{}}
}

// get returns the cached data of a bucket holding count events. It is
// shared: callers must not modify it.
func (c *timesCache) get(org, bucket, count int64) *bucketData {
	c.mu.Lock()
	defer c.mu.Unlock()
	el := c.items[timesCacheKey{org, bucket}]
	if el == nil {
		return nil
	}
	e := el.Value.(*timesEntry)
	if e.count != count {
		return nil
	}
	c.order.MoveToFront(el)
	return e.data
}

// generation is to be read before the snapshot that data is loaded from
// begins, and handed to put.
func (c *timesCache) generation() uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.gen
}

// put caches d, unless a forget came since gen was read: d may then be
// from a snapshot older than the removal, without its tombstones.
func (c *timesCache) put(org, bucket int64, d *bucketData, gen uint64) {
	times := d.times
	c.mu.Lock()
	defer c.mu.Unlock()
	if gen != c.gen {
		return
	}
	k := timesCacheKey{org, bucket}
	if el := c.items[k]; el != nil {
		e := el.Value.(*timesEntry)
		c.held -= len(e.data.times)
		e.count, e.data = int64(len(times)), d
		c.held += len(times)
		c.order.MoveToFront(el)
	} else {
		c.items[k] = c.order.PushFront(&timesEntry{key: k, count: int64(len(times)), data: d})
		c.held += len(times)
	}
	for c.held > c.max && c.order.Len() > 1 {
		el := c.order.Back()
		e := el.Value.(*timesEntry)
		c.order.Remove(el)
		delete(c.items, e.key)
		c.held -= len(e.data.times)
	}
}

// forget drops an organization's entries (after retention rewrites them).
func (c *timesCache) forget(org int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
	for k, el := range c.items {
		if k.org == org {
			c.held -= len(el.Value.(*timesEntry).data.times)
			c.order.Remove(el)
			delete(c.items, k)
		}
	}
}
