package cache

import (
	"fmt"
	"hash/maphash"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
)

// EntryOverhead is the fixed number of bytes an LRU charges for each entry on
// top of its key and value: an estimate of the entry struct (string and slice
// headers, two list pointers) and its map slot on 64-bit platforms. It keeps a
// cache of many small entries from using far more memory than its budget says.
const EntryOverhead = 96

const (
	// maxShards caps the shard count; 64 mutexes spread the load of well over
	// 64 cores' worth of queries.
	maxShards = 64
	// minShardBytes is the smallest budget a shard is given when there is more
	// than one, so that sharding never makes ordinary items too large.
	minShardBytes = 1 << 20
)

// LRU is a byte-bounded least-recently-used cache, sharded by key hash. It is
// safe for concurrent use; see the package documentation for the accounting and
// the sharding trade-offs.
type LRU struct {
	seed         maphash.Seed
	mask         uint64
	maxItemBytes int64
	shards       []shard
	metrics      *metrics
}

// shard is an exact LRU over a subset of the keys. All fields after mu are
// guarded by it.
type shard struct {
	mu       sync.Mutex
	items    map[string]*entry
	head     *entry // most recently used
	tail     *entry // least recently used
	bytes    int64
	maxBytes int64

	requests, hits, evictions int64

	_ [64]byte // keep neighbouring shards' mutexes off one cache line
}

type entry struct {
	key        string
	value      []byte
	prev, next *entry
}

func entrySize(key string, value []byte) int64 {
	return int64(len(key)) + int64(len(value)) + EntryOverhead
}

// NewLRU returns an LRU called name that holds at most maxBytes, counting each
// entry as len(key)+len(value)+EntryOverhead. Items costing more than
// maxItemBytes are not stored; maxItemBytes <= 0 means no limit other than the
// budget of a shard, maxBytes divided by the shard count. An LRU with
// maxBytes <= 0 stores nothing; use New for a disabled cache. Metrics are
// registered with reg, which may be nil.
func NewLRU(name string, maxBytes, maxItemBytes int64, reg prometheus.Registerer) *LRU {
	return newLRU(name, maxBytes, maxItemBytes, shardCount(maxBytes), reg)
}

// shardCount returns the largest power of two up to maxShards that still gives
// every shard at least minShardBytes, and at least 1.
func shardCount(maxBytes int64) int {
	n := 1
	for n < maxShards && maxBytes/int64(2*n) >= minShardBytes {
		n *= 2
	}
	return n
}

// newLRU is NewLRU with an explicit shard count, which must be a power of two.
func newLRU(name string, maxBytes, maxItemBytes int64, shards int, reg prometheus.Registerer) *LRU {
	if shards < 1 || shards&(shards-1) != 0 {
		panic(fmt.Sprintf("cache: shard count %d is not a power of two", shards))
	}
	c := &LRU{
		seed:         maphash.MakeSeed(),
		mask:         uint64(shards - 1),
		maxItemBytes: maxItemBytes,
		shards:       make([]shard, shards),
	}
	per := max(maxBytes, 0) / int64(shards)
	for i := range c.shards {
		c.shards[i].items = map[string]*entry{}
		c.shards[i].maxBytes = per
	}
	c.metrics = newMetrics(reg, name, per*int64(shards), c.stats)
	return c
}

func (c *LRU) shardFor(key string) *shard {
	return &c.shards[maphash.String(c.seed, key)&c.mask]
}

// Get returns the value stored under key and marks it most recently used.
func (c *LRU) Get(key string) ([]byte, bool) {
	s := c.shardFor(key)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.requests++
	e, ok := s.items[key]
	if !ok {
		return nil, false
	}
	s.hits++
	s.moveToFront(e)
	return e.value, true
}

// GetMulti looks up every key as Get does. Each key takes its shard's lock on
// its own, so a large multi-get does not hold up other readers.
func (c *LRU) GetMulti(keys []string) (map[string][]byte, []string) {
	hits := make(map[string][]byte, len(keys))
	var misses []string
	for _, k := range keys {
		if v, ok := c.Get(k); ok {
			hits[k] = v
		} else {
			misses = append(misses, k)
		}
	}
	return hits, misses
}

// Set stores value under key as the most recently used entry, evicting least
// recently used entries of the key's shard until it fits. An item that is too
// large is counted and not stored, and an older value under the same key is
// dropped so that it cannot be served stale.
func (c *LRU) Set(key string, value []byte) {
	size := entrySize(key, value)
	s := c.shardFor(key)
	if (c.maxItemBytes > 0 && size > c.maxItemBytes) || size > s.maxBytes {
		c.metrics.itemsTooLarge.Inc()
		s.mu.Lock()
		if e, ok := s.items[key]; ok {
			s.remove(e)
		}
		s.mu.Unlock()
		return
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	if e, ok := s.items[key]; ok {
		s.bytes += size - entrySize(e.key, e.value)
		e.value = value
		s.moveToFront(e)
	} else {
		e = &entry{key: key, value: value}
		s.items[key] = e
		s.pushFront(e)
		s.bytes += size
	}
	// The new entry is at the front and fits on its own, so eviction stops
	// before reaching it.
	for s.bytes > s.maxBytes {
		s.remove(s.tail)
		s.evictions++
	}
}

func (c *LRU) stats() stats {
	var st stats
	for i := range c.shards {
		s := &c.shards[i]
		s.mu.Lock()
		st.requests += s.requests
		st.hits += s.hits
		st.evictions += s.evictions
		st.items += int64(len(s.items))
		st.bytes += s.bytes
		s.mu.Unlock()
	}
	return st
}

func (s *shard) pushFront(e *entry) {
	e.prev = nil
	e.next = s.head
	if s.head != nil {
		s.head.prev = e
	}
	s.head = e
	if s.tail == nil {
		s.tail = e
	}
}

func (s *shard) unlink(e *entry) {
	if e.prev != nil {
		e.prev.next = e.next
	} else {
		s.head = e.next
	}
	if e.next != nil {
		e.next.prev = e.prev
	} else {
		s.tail = e.prev
	}
	e.prev, e.next = nil, nil
}

func (s *shard) moveToFront(e *entry) {
	if s.head == e {
		return
	}
	s.unlink(e)
	s.pushFront(e)
}

func (s *shard) remove(e *entry) {
	s.unlink(e)
	delete(s.items, e.key)
	s.bytes -= entrySize(e.key, e.value)
}
