package cache

import (
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"
)

func TestNew_Disabled(t *testing.T) {
	reg := prometheus.NewRegistry()
	c := New("chunks", 0, 0, reg)
	require.IsType(t, &disabled{}, c)

	c.Set("k", []byte("v"))
	_, ok := c.Get("k")
	require.False(t, ok)

	keys := []string{"k", "l"}
	hits, misses := c.GetMulti(keys)
	require.NotNil(t, hits)
	require.Empty(t, hits)
	require.Equal(t, keys, misses)
	misses[0] = "changed"
	require.Equal(t, "k", keys[0], "misses must not alias the caller's keys")

	require.NoError(t, testutil.GatherAndCompare(reg, strings.NewReader(`
# HELP strata_storegw_cache_hits_total Lookups that found their key in the cache.
# TYPE strata_storegw_cache_hits_total counter
strata_storegw_cache_hits_total{cache="chunks"} 0
# HELP strata_storegw_cache_items Entries in the cache.
# TYPE strata_storegw_cache_items gauge
strata_storegw_cache_items{cache="chunks"} 0
# HELP strata_storegw_cache_max_bytes Byte budget of the cache; zero if it is disabled.
# TYPE strata_storegw_cache_max_bytes gauge
strata_storegw_cache_max_bytes{cache="chunks"} 0
# HELP strata_storegw_cache_requests_total Lookups in the cache, counting each key of a multi-get.
# TYPE strata_storegw_cache_requests_total counter
strata_storegw_cache_requests_total{cache="chunks"} 3
`), "strata_storegw_cache_requests_total", "strata_storegw_cache_hits_total",
		"strata_storegw_cache_items", "strata_storegw_cache_max_bytes"))
}

func TestNew_Enabled(t *testing.T) {
	c := New("series", 1<<20, 0, nil)
	require.IsType(t, &LRU{}, c)
	c.Set("k", []byte("v"))
	got, ok := c.Get("k")
	require.True(t, ok)
	require.Equal(t, []byte("v"), got)
}

func TestNewGateway(t *testing.T) {
	reg := prometheus.NewRegistry()
	g := NewGateway(256<<20, 64<<20, 0, reg)

	for name, c := range map[string]Cache{"postings": g.Postings, "series": g.Series} {
		c.Set("k", []byte(name))
		got, ok := c.Get("k")
		require.True(t, ok, name)
		require.Equal(t, []byte(name), got, "caches must be separate")
	}
	g.Chunks.Set("k", []byte("chunks"))
	_, ok := g.Chunks.Get("k")
	require.False(t, ok)

	require.NoError(t, testutil.GatherAndCompare(reg, strings.NewReader(`
# HELP strata_storegw_cache_max_bytes Byte budget of the cache; zero if it is disabled.
# TYPE strata_storegw_cache_max_bytes gauge
strata_storegw_cache_max_bytes{cache="chunks"} 0
strata_storegw_cache_max_bytes{cache="postings"} 2.68435456e+08
strata_storegw_cache_max_bytes{cache="series"} 6.7108864e+07
`), "strata_storegw_cache_max_bytes"))
}
