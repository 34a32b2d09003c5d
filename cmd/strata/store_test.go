package main

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/stratametrics/strata/storegw/cache"
)

func TestStoreFlags(t *testing.T) {
	c, err := parseStoreArgs([]string{
		"--objstore.config={type: FILESYSTEM, config: {directory: /tmp/x}}",
		"--min-time=-2w", "--max-time=2026-01-02T03:04:05Z",
		"--store.cache.chunks-size=1GiB", "--store.cache.postings-size=0",
		"--store.limits.request-series=1000",
	})
	require.NoError(t, err)
	now := time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)
	require.Equal(t, now.Add(-14*24*time.Hour), c.minTime.Time(now))
	require.Equal(t, time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), c.maxTime.Time(now).UTC())
	require.EqualValues(t, 1<<30, c.chunksCache)
	require.EqualValues(t, 0, c.postingsCache)
	require.EqualValues(t, 128<<20, c.seriesCache, "default")
	require.EqualValues(t, 1000, c.limitSeries)
	require.Equal(t, 24*time.Hour, time.Duration(c.ignoreDeletionMarksDelay), "default")

	require.Empty(t, c.memcachedAddresses, "in-memory caches by default")
	require.Equal(t, 500*time.Millisecond, c.memcachedTimeout, "default")
	caches, err := c.caches(nil, nil)
	require.NoError(t, err)
	require.IsType(t, &cache.LRU{}, caches.Chunks)

	_, err = parseStoreArgs([]string{"--min-time=yesterday"})
	require.Error(t, err)
	_, err = parseStoreArgs([]string{"--store.cache.series-size=lots"})
	require.Error(t, err)
}

func TestStoreMemcachedFlags(t *testing.T) {
	for _, tc := range []struct {
		name      string
		args      []string
		wantAddrs []string
		wantErr   string // from building the caches
	}{
		{
			name:      "two servers",
			args:      []string{"--store.cache.memcached-addresses=10.0.0.1:11211", "--store.cache.memcached-addresses=mc-2:11211", "--store.cache.memcached-timeout=2s"},
			wantAddrs: []string{"10.0.0.1:11211", "mc-2:11211"},
		},
		{
			name:      "no port",
			args:      []string{"--store.cache.memcached-addresses=mc-1"},
			wantAddrs: []string{"mc-1"},
			wantErr:   "--store.cache.memcached-addresses",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := parseStoreArgs(tc.args)
			require.NoError(t, err)
			require.Equal(t, tc.wantAddrs, c.memcachedAddresses)
			caches, err := c.caches(nil, nil)
			if tc.wantErr != "" {
				require.ErrorContains(t, err, tc.wantErr)
				return
			}
			require.NoError(t, err)
			t.Cleanup(func() { require.NoError(t, caches.Close()) })
			for _, cc := range []cache.Cache{caches.Postings, caches.Series, caches.Chunks} {
				require.IsType(t, &cache.Memcached{}, cc)
			}
		})
	}
	c, err := parseStoreArgs([]string{"--store.cache.memcached-addresses=a:1", "--store.cache.memcached-timeout=2s"})
	require.NoError(t, err)
	require.Equal(t, 2*time.Second, c.memcachedTimeout)
	_, err = parseStoreArgs([]string{"--store.cache.memcached-timeout=soon"})
	require.Error(t, err)
}

func TestGatewayShardFilter(t *testing.T) {
	_, err := gatewayShardFilter([]string{"a", "b"}, "")
	require.ErrorContains(t, err, "--store.ring-self")
	_, err = gatewayShardFilter(nil, "a")
	require.ErrorContains(t, err, "--store.ring-member")
	_, err = gatewayShardFilter([]string{"a", "b"}, "c")
	require.Error(t, err, "a gateway must be one of the members")
	f, err := gatewayShardFilter([]string{"a", "b", "c"}, "b")
	require.NoError(t, err)
	require.NotNil(t, f)
}
