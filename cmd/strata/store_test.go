package main

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
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

	_, err = parseStoreArgs([]string{"--min-time=yesterday"})
	require.Error(t, err)
	_, err = parseStoreArgs([]string{"--store.cache.series-size=lots"})
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
