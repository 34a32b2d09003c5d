package receive

import (
	"hash/maphash"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/storage"
)

// SeriesCacheHolder is implemented by appenders whose storage keeps a place for
// the handler's series cache. With it, a series the storage already knows skips
// label validation, label building, hashing and the storage's own lookup by
// labels: the handler finds its reference by a hash of the labels as sent and
// checks them against the series' own labels.
//
// The storage must hand out a new slot each time it opens an instance (for a
// TSDB: each open of the database), and the same slot for the life of that
// instance. Series references are only meaningful to the instance that gave them
// out, so the cache must die with it. Only the handler stores into the slot.
type SeriesCacheHolder interface {
	SeriesCacheSlot() *atomic.Value
}

// seriesCacheMaxAge bounds how long a cache lives before it is started afresh,
// which drops the entries of series that stopped (churn) and the references
// storage has since garbage-collected. A fresh cache costs one lookup by labels
// per series.
const seriesCacheMaxAge = 15 * time.Minute

// seriesCache maps a hash of a series' labels as sent to its storage reference and
// its labels as stored. Lookups take no lock and write no shared memory: they
// read an immutable table. New entries gather in a small locked map and are
// merged into a new immutable table once there are enough of them. An entry
// replaced in the locked map (a reference storage changed) is seen by lookups
// after the next merge or the next fresh start; until then the old reference
// costs storage a lookup by labels, never a wrong series.
//
// An entry never decides on its own which series a sample goes to: its labels
// are compared with the labels of the request first. A reference that storage
// has garbage-collected is harmless too: storage then looks the series up by the
// labels passed with it, which are the series' own.
type seriesCache struct {
	born time.Time
	read atomic.Pointer[cacheTable]

	mtx   sync.Mutex
	dirty map[uint64]cachedSeries // entries not yet in read
}

type cachedSeries struct {
	ref storage.SeriesRef // never 0 in the cache
	ls  labels.Labels     // shares its memory with the series in storage
	// placement is the series' hash on the ring (hashring.Hash), for a router
	// that also stores; 0 means unknown.
	placement uint64
}

// cacheTable is an immutable hash table with open addressing and linear
// probing. A lookup of a known series usually touches one cache line, where a
// Go map touches a control word and a slot in another line: the write path
// makes one lookup per series, and the lines are rarely in the CPU cache.
type cacheTable struct {
	shift uint // 64 - log2(len(slots))
	n     int  // entries
	slots []cacheSlot
}

type cacheSlot struct {
	key uint64
	e   cachedSeries // e.ref == 0: empty
}

func newCacheTable(n int) *cacheTable {
	size, bits := 8, uint(3)
	for size*7 < n*8 { // at most 7/8 full: probe runs stay a few slots long
		size, bits = size*2, bits+1
	}
	return &cacheTable{shift: 64 - bits, slots: make([]cacheSlot, size)}
}

func (t *cacheTable) get(key uint64) (cachedSeries, bool) {
	mask := uint64(len(t.slots) - 1)
	for i := key >> t.shift; ; i = (i + 1) & mask {
		s := &t.slots[i]
		if s.key == key && s.e.ref != 0 {
			return s.e, true
		}
		if s.e.ref == 0 {
			return cachedSeries{}, false
		}
	}
}

// set adds or replaces an entry; the table must have room.
func (t *cacheTable) set(key uint64, e cachedSeries) {
	mask := uint64(len(t.slots) - 1)
	for i := key >> t.shift; ; i = (i + 1) & mask {
		s := &t.slots[i]
		if s.e.ref == 0 {
			t.n++
			*s = cacheSlot{key: key, e: e}
			return
		}
		if s.key == key {
			s.e = e
			return
		}
	}
}

func newSeriesCache(now time.Time) *seriesCache {
	c := &seriesCache{born: now, dirty: map[uint64]cachedSeries{}}
	c.read.Store(newCacheTable(0))
	return c
}

// TenantSeriesCaches is implemented by storage that can give the router the
// series cache of a tenant without an appender: the router then finds the
// ring placement of series it stores in the cache too. The slot is the one the
// tenant's appenders hold (see SeriesCacheHolder), or nil when the tenant is
// not open. The router uses only labels and placements from it, which do not
// depend on which open of the storage the slot belongs to.
type TenantSeriesCaches interface {
	SeriesCacheSlot(tenant string) *atomic.Value
}

// seriesCacheOf returns the cache in the slot of app's storage, or nil if app
// keeps none.
func seriesCacheOf(app storage.AppenderV2, now time.Time) *seriesCache {
	h, ok := app.(SeriesCacheHolder)
	if !ok {
		return nil
	}
	return seriesCacheIn(h.SeriesCacheSlot(), now)
}

// seriesCacheIn returns the cache in slot, making one if there is none yet. A
// cache older than seriesCacheMaxAge is replaced by a new one.
func seriesCacheIn(slot *atomic.Value, now time.Time) *seriesCache {
	if slot == nil {
		return nil
	}
	old, _ := slot.Load().(*seriesCache)
	if old != nil && now.Sub(old.born) < seriesCacheMaxAge {
		return old
	}
	c := newSeriesCache(now)
	if old == nil {
		if slot.CompareAndSwap(nil, c) {
			return c
		}
	} else if slot.CompareAndSwap(old, c) {
		return c
	}
	// Another request replaced it first.
	c, _ = slot.Load().(*seriesCache)
	return c
}

// get returns the entry for hash whose labels equal sl.
func (c *seriesCache) get(hash uint64, sl []wireLabel) (cachedSeries, bool) {
	e, ok := c.read.Load().get(hash)
	if !ok {
		c.mtx.Lock()
		e, ok = c.dirty[hash]
		c.mtx.Unlock()
	}
	if !ok || !sameLabels(e.ls, sl) {
		return cachedSeries{}, false
	}
	return e, true
}

// put records a series' reference (not 0) and stored labels under hash.
func (c *seriesCache) put(hash uint64, e cachedSeries) {
	c.mtx.Lock()
	defer c.mtx.Unlock()
	c.dirty[hash] = e
	read := c.read.Load()
	if len(c.dirty) < 256+read.n/4 {
		return
	}
	// Merging costs a copy of read, paid for by the quarter of its size that
	// was added since the last merge: constant work per new series.
	t := newCacheTable(read.n + len(c.dirty))
	for _, s := range read.slots {
		if s.e.ref != 0 {
			t.set(s.key, s.e)
		}
	}
	for k, v := range c.dirty {
		t.set(k, v)
	}
	c.read.Store(t)
	clear(c.dirty)
}

// len returns the number of entries.
func (c *seriesCache) len() int {
	c.mtx.Lock()
	defer c.mtx.Unlock()
	n := c.read.Load().n
	for k := range c.dirty {
		if _, ok := c.read.Load().get(k); !ok {
			n++
		}
	}
	return n
}

// cacheSeed seeds the hashes of the series cache; they never leave the process.
var cacheSeed = maphash.MakeSeed()

// cacheLookup is the outcome of looking a series up in a cache.
type cacheLookup struct {
	done      bool // the lookup was made
	cacheable bool // key is valid
	hit       bool // e is valid
	key       uint64
	e         cachedSeries
}

// lookup looks the series with labels sl up.
func (c *seriesCache) lookup(sl []wireLabel) cacheLookup {
	lk := cacheLookup{done: true}
	if lk.key, lk.cacheable = hashWireLabels(sl); lk.cacheable {
		lk.e, lk.hit = c.get(lk.key, sl)
	}
	return lk
}

// hashWireLabels hashes a series' labels as sent. ok is false when a label has
// an empty value: such labels are dropped before storage, and the cache only
// holds label sets that are stored exactly as sent. The hash need not be
// collision-proof, since entries are checked label by label, only fast: it
// covers the values and only the lengths of the names, which are few and
// repeat from series to series.
func hashWireLabels(sl []wireLabel) (hash uint64, ok bool) {
	const mul = 0x9e3779b97f4a7c15
	h := uint64(len(sl))
	for _, l := range sl {
		if l.value == "" {
			return 0, false
		}
		h = (h ^ uint64(len(l.name)) ^ maphash.String(cacheSeed, l.value)) * mul
	}
	return h, true
}

// metricNameOf returns the value of the __name__ label in sl, or "".
func metricNameOf(sl []wireLabel) string {
	for _, l := range sl {
		if l.name == model.MetricNameLabel {
			return l.value
		}
	}
	return ""
}
