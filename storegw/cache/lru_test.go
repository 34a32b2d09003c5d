package cache

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"
)

// val returns a value of n bytes; entries of key length k and value length n
// cost k+n+EntryOverhead.
func val(n int) []byte { return []byte(strings.Repeat("v", n)) }

func TestLRU_GetSet(t *testing.T) {
	c := NewLRU("test", 1<<20, 0, nil)

	_, ok := c.Get("P:a")
	require.False(t, ok)

	c.Set("P:a", []byte("one"))
	c.Set("P:b", []byte("two"))
	got, ok := c.Get("P:a")
	require.True(t, ok)
	require.Equal(t, []byte("one"), got)

	c.Set("P:a", []byte("three"))
	got, ok = c.Get("P:a")
	require.True(t, ok)
	require.Equal(t, []byte("three"), got)

	hits, misses := c.GetMulti([]string{"P:a", "P:x", "P:b", "P:y"})
	require.Equal(t, map[string][]byte{"P:a": []byte("three"), "P:b": []byte("two")}, hits)
	require.Equal(t, []string{"P:x", "P:y"}, misses)

	hits, misses = c.GetMulti(nil)
	require.NotNil(t, hits)
	require.Empty(t, hits)
	require.Empty(t, misses)

	require.NoError(t, c.check())
}

func TestLRU_EvictionOrder(t *testing.T) {
	const size = 10 + 1 + EntryOverhead // one-byte keys, ten-byte values
	c := newLRU("test", 3*size, 0, 1, nil)

	c.Set("a", val(10))
	c.Set("b", val(10))
	c.Set("c", val(10))
	_, ok := c.Get("a") // a is now more recent than b and c
	require.True(t, ok)

	c.Set("d", val(10))
	requireKeys(t, c, "a", "c", "d")

	c.Set("c", val(10)) // overwriting counts as a use
	c.Set("e", val(10))
	requireKeys(t, c, "c", "d", "e")

	// A value that needs two slots evicts the two least recently used entries.
	c.Set("f", val(10+size))
	requireKeys(t, c, "e", "f")
	require.Equal(t, int64(4), c.stats().evictions)
	require.NoError(t, c.check())
}

// requireKeys asserts that c holds exactly keys, without touching recency.
func requireKeys(t *testing.T, c *LRU, keys ...string) {
	t.Helper()
	var got []string
	for i := range c.shards {
		for k := range c.shards[i].items {
			got = append(got, k)
		}
	}
	slices.Sort(got)
	require.Equal(t, keys, got)
}

func TestLRU_TooLarge(t *testing.T) {
	for _, tc := range []struct {
		name         string
		maxBytes     int64
		maxItemBytes int64
		shards       int
		valueLen     int
		stored       bool
	}{
		{name: "within both limits", maxBytes: 1000, maxItemBytes: 200, shards: 1, valueLen: 200 - 1 - EntryOverhead, stored: true},
		{name: "over item limit", maxBytes: 1000, maxItemBytes: 200, shards: 1, valueLen: 200 - EntryOverhead, stored: false},
		{name: "no item limit, fits cache", maxBytes: 1000, shards: 1, valueLen: 1000 - 1 - EntryOverhead, stored: true},
		{name: "no item limit, over cache", maxBytes: 1000, shards: 1, valueLen: 1000 - EntryOverhead, stored: false},
		{name: "over shard budget", maxBytes: 4000, shards: 4, valueLen: 1000 - EntryOverhead, stored: false},
		{name: "zero budget", maxBytes: 0, shards: 1, valueLen: 0, stored: false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := newLRU("test", tc.maxBytes, tc.maxItemBytes, tc.shards, nil)
			c.Set("k", val(tc.valueLen))
			_, ok := c.Get("k")
			require.Equal(t, tc.stored, ok)
			want := 1.0
			if tc.stored {
				want = 0
			}
			require.Equal(t, want, testutil.ToFloat64(c.metrics.itemsTooLarge))
			require.NoError(t, c.check())
		})
	}

	t.Run("too large overwrite drops old value", func(t *testing.T) {
		c := newLRU("test", 1000, 200, 1, nil)
		c.Set("k", val(10))
		c.Set("k", val(500))
		_, ok := c.Get("k")
		require.False(t, ok)
		require.Equal(t, int64(0), c.stats().bytes)
		require.NoError(t, c.check())
	})
}

// model is an obviously correct single-shard LRU to compare against.
type model struct {
	max, maxItem int64
	keys         []string // most recent first
	sizes        map[string]int64
	bytes        int64
}

func (m *model) get(k string) bool {
	i := slices.Index(m.keys, k)
	if i < 0 {
		return false
	}
	m.keys = slices.Insert(slices.Delete(m.keys, i, i+1), 0, k)
	return true
}

func (m *model) del(k string) {
	if i := slices.Index(m.keys, k); i >= 0 {
		m.keys = slices.Delete(m.keys, i, i+1)
		m.bytes -= m.sizes[k]
		delete(m.sizes, k)
	}
}

func (m *model) set(k string, size int64) {
	m.del(k)
	if (m.maxItem > 0 && size > m.maxItem) || size > m.max {
		return
	}
	m.keys = slices.Insert(m.keys, 0, k)
	m.sizes[k] = size
	m.bytes += size
	for m.bytes > m.max {
		m.del(m.keys[len(m.keys)-1])
	}
}

func TestLRU_ByteBoundProperty(t *testing.T) {
	for _, shards := range []int{1, 8} {
		for seed := range uint64(20) {
			t.Run(fmt.Sprintf("shards=%d/seed=%d", shards, seed), func(t *testing.T) {
				rng := rand.New(rand.NewPCG(seed, uint64(shards)))
				maxBytes := int64(shards) * (500 + rng.Int64N(5000))
				maxItem := rng.Int64N(2000) // 0 sometimes, below the shard budget sometimes
				c := newLRU("test", maxBytes, maxItem, shards, nil)
				m := &model{max: maxBytes, maxItem: maxItem, sizes: map[string]int64{}}

				for range 2000 {
					k := fmt.Sprintf("S:%d", rng.IntN(60))
					if rng.IntN(3) == 0 {
						_, ok := c.Get(k)
						if shards == 1 {
							require.Equal(t, m.get(k), ok, "get %s", k)
						}
						continue
					}
					v := val(rng.IntN(int(maxBytes / int64(shards) * 3 / 4)))
					c.Set(k, v)
					if shards == 1 {
						m.set(k, entrySize(k, v))
					}
					require.NoError(t, c.check())
					st := c.stats()
					require.LessOrEqual(t, st.bytes, maxBytes)
					if shards == 1 {
						require.Equal(t, m.bytes, st.bytes)
						requireKeys(t, c, slices.Sorted(slices.Values(m.keys))...)
					}
				}
			})
		}
	}
}

func TestLRU_Concurrent(t *testing.T) {
	reg := prometheus.NewRegistry()
	c := newLRU("test", 64<<10, 4<<10, 8, reg)

	const (
		workers = 8
		ops     = 5000
	)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(w), 0))
			for range ops {
				k := fmt.Sprintf("C:%d", rng.IntN(500))
				switch rng.IntN(4) {
				case 0:
					c.Set(k, val(rng.IntN(6<<10)))
				case 1:
					c.GetMulti([]string{k, k + "x"})
				default:
					if v, ok := c.Get(k); ok {
						require.Equal(t, val(len(v)), v)
					}
				}
			}
		})
	}
	wg.Go(func() {
		for range 50 {
			_, err := reg.Gather()
			require.NoError(t, err)
		}
	})
	wg.Wait()

	require.NoError(t, c.check())
	st := c.stats()
	require.LessOrEqual(t, st.bytes, int64(64<<10))
	require.LessOrEqual(t, st.hits, st.requests)
	require.Positive(t, st.hits)
	require.Positive(t, st.evictions)
}

func TestLRU_Metrics(t *testing.T) {
	const size = 10 + 1 + EntryOverhead
	reg := prometheus.NewRegistry()
	c := newLRU("postings", 2*size, 1000, 1, reg)

	c.Set("a", val(10))
	c.Set("b", val(10))
	c.Set("c", val(10))                 // evicts a
	c.Set("d", val(2000))               // too large
	c.Get("b")                          // hit
	c.Get("a")                          // miss
	c.GetMulti([]string{"b", "c", "x"}) // two hits, one miss

	require.NoError(t, testutil.GatherAndCompare(reg, strings.NewReader(fmt.Sprintf(`
# HELP strata_storegw_cache_bytes Bytes the cache accounts for: keys, values and a fixed overhead per entry.
# TYPE strata_storegw_cache_bytes gauge
strata_storegw_cache_bytes{cache="postings"} %[1]d
# HELP strata_storegw_cache_evictions_total Entries evicted to make room for new ones.
# TYPE strata_storegw_cache_evictions_total counter
strata_storegw_cache_evictions_total{cache="postings"} 1
# HELP strata_storegw_cache_hits_total Lookups that found their key in the cache.
# TYPE strata_storegw_cache_hits_total counter
strata_storegw_cache_hits_total{cache="postings"} 3
# HELP strata_storegw_cache_items Entries in the cache.
# TYPE strata_storegw_cache_items gauge
strata_storegw_cache_items{cache="postings"} 2
# HELP strata_storegw_cache_items_too_large_total Items not stored because they exceed the item size limit or a shard's budget.
# TYPE strata_storegw_cache_items_too_large_total counter
strata_storegw_cache_items_too_large_total{cache="postings"} 1
# HELP strata_storegw_cache_max_bytes Byte budget of the cache; zero if it is disabled.
# TYPE strata_storegw_cache_max_bytes gauge
strata_storegw_cache_max_bytes{cache="postings"} %[1]d
# HELP strata_storegw_cache_requests_total Lookups in the cache, counting each key of a multi-get.
# TYPE strata_storegw_cache_requests_total counter
strata_storegw_cache_requests_total{cache="postings"} 5
`, 2*size))))
}

func TestShardCount(t *testing.T) {
	for _, tc := range []struct {
		maxBytes int64
		want     int
	}{
		{maxBytes: 0, want: 1},
		{maxBytes: 1 << 20, want: 1},
		{maxBytes: 2<<20 - 1, want: 1},
		{maxBytes: 2 << 20, want: 2},
		{maxBytes: 5 << 20, want: 4},
		{maxBytes: 256 << 20, want: 64},
		{maxBytes: 1 << 40, want: 64},
	} {
		t.Run(fmt.Sprint(tc.maxBytes), func(t *testing.T) {
			require.Equal(t, tc.want, shardCount(tc.maxBytes))
		})
	}
}
