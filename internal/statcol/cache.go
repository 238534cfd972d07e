package statcol

import (
	"container/list"
	"sync"

	veritrail "github.com/veritrail/veritrail"
)

// Cache keeps what stores decode of their buckets, bounded in bytes and
// least recently used first out, so that queries revisiting buckets
// (every page of a paging client, every stats of the console) do not
// decode them again. An entry is valid for one version of its bucket,
// which the store reads in the snapshot of every query that uses the
// entry: the embedded store's version is the bucket's event count (its
// open bucket only grows; removals forget the organization's entries),
// PostgreSQL's a count of the changes to an hour of events that every
// transaction adding or removing events there bumps. A query reading
// another version than cached builds the entry anew.
type Cache struct {
	mu    sync.Mutex
	max   int // total size held, in bytes
	held  int
	order *list.List // front: most recent
	items map[Key]*list.Element
	gen   uint64 // moves at every Forget
}

// Key names an entry: a bucket of an organization and what of it is
// kept (a field's column, or whatever the store numbers Field with; What
// tells apart entries of the same field, such as the matches of
// different queries).
type Key struct {
	Org, Bucket int64
	Field       veritrail.Field
	What        string
}

type cacheEntry struct {
	key     Key
	version int64
	data    any
	size    int
}

// NewCache returns a cache holding at most maxBytes (as Put is told).
func NewCache(maxBytes int) *Cache {
	return &Cache{max: maxBytes, order: list.New(), items: map[Key]*list.Element{}}
}

// Get returns the cached entry of a bucket at version, nil when there is
// none for that version. It is shared: callers must not modify it.
func (c *Cache) Get(k Key, version int64) any {
	c.mu.Lock()
	defer c.mu.Unlock()
	el := c.items[k]
	if el == nil {
		return nil
	}
	e := el.Value.(*cacheEntry)
	if e.version != version {
		return nil
	}
	c.order.MoveToFront(el)
	return e.data
}

// Generation is to be read before the snapshot that data is loaded from
// begins, and handed to Put.
func (c *Cache) Generation() uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.gen
}

// Put caches data (of size bytes) of a bucket at version, unless a Forget
// came since gen was read: data may then be from a snapshot older than
// the removal.
func (c *Cache) Put(k Key, version int64, data any, size int, gen uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if gen != c.gen {
		return
	}
	if el := c.items[k]; el != nil {
		e := el.Value.(*cacheEntry)
		c.held += size - e.size
		e.version, e.data, e.size = version, data, size
		c.order.MoveToFront(el)
	} else {
		c.items[k] = c.order.PushFront(&cacheEntry{key: k, version: version, data: data, size: size})
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

// Forget drops an organization's entries (after a removal rewrote them).
func (c *Cache) Forget(org int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
	for k, el := range c.items {
		if k.Org == org {
			c.held -= el.Value.(*cacheEntry).size
			c.order.Remove(el)
			delete(c.items, k)
		}
	}
}
