package cache

import (
	"bufio"
	"bytes"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"

	"github.com/stratametrics/strata/internal/memcachedtest"
	"github.com/stratametrics/strata/internal/syncbuf"
)

func newTestMemcached(t *testing.T, cfg MemcachedConfig, reg prometheus.Registerer) *Memcached {
	t.Helper()
	m, err := NewMemcached("test", cfg, reg, nil)
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, m.Close()) })
	return m
}

func TestMemcached_SetGet(t *testing.T) {
	srv := memcachedtest.Start(t, 0)
	reg := prometheus.NewPedanticRegistry()
	m := newTestMemcached(t, MemcachedConfig{Addresses: []string{srv.Addr}}, reg)

	_, ok := m.Get("k")
	require.False(t, ok)
	m.Set("k", []byte("v1"))
	v, ok := m.Get("k")
	require.True(t, ok)
	require.Equal(t, "v1", string(v))
	m.Set("k", []byte("v2"))
	v, ok = m.Get("k")
	require.True(t, ok)
	require.Equal(t, "v2", string(v))
	m.Set("empty", []byte{})
	v, ok = m.Get("empty")
	require.True(t, ok)
	require.Empty(t, v)
	require.NoError(t, m.LastError())

	require.NoError(t, testutil.GatherAndCompare(reg, strings.NewReader(`
# HELP strata_storegw_cache_hits_total Lookups that found their key in the cache.
# TYPE strata_storegw_cache_hits_total counter
strata_storegw_cache_hits_total{cache="test"} 3
# HELP strata_storegw_cache_requests_total Lookups in the cache, counting each key of a multi-get.
# TYPE strata_storegw_cache_requests_total counter
strata_storegw_cache_requests_total{cache="test"} 4
`), "strata_storegw_cache_hits_total", "strata_storegw_cache_requests_total"))
	require.Equal(t, 0.0, testutil.ToFloat64(m.failures.WithLabelValues("get")))
	require.Equal(t, 0.0, testutil.ToFloat64(m.failures.WithLabelValues("set")))
}

func TestMemcached_GetMultiTwoServers(t *testing.T) {
	a, b := memcachedtest.Start(t, 0), memcachedtest.Start(t, 0)
	m := newTestMemcached(t, MemcachedConfig{Addresses: []string{a.Addr, b.Addr}}, nil)

	const n = 300 // more than getBatch, so that a server's keys take several gets
	var keys []string
	for i := range n {
		k := fmt.Sprintf("key-%d", i)
		if i%2 == 0 {
			m.Set(k, []byte("v"+k))
		}
		keys = append(keys, k)
	}
	keys = append(keys, "key-0") // a duplicate is a hit twice over
	hits, misses := m.GetMulti(keys)
	require.Len(t, hits, n/2)
	for k, v := range hits {
		require.Equal(t, "v"+k, string(v))
	}
	var wantMisses []string
	for i := 1; i < n; i += 2 {
		wantMisses = append(wantMisses, fmt.Sprintf("key-%d", i))
	}
	require.Equal(t, wantMisses, misses, "misses in the order asked")

	ia, ib := a.Stat(t, "curr_items"), b.Stat(t, "curr_items")
	require.Equal(t, n/2, ia+ib)
	require.Greater(t, ia, n/10, "keys spread over both servers")
	require.Greater(t, ib, n/10, "keys spread over both servers")

	hits, misses = m.GetMulti(nil)
	require.NotNil(t, hits)
	require.Empty(t, hits)
	require.Empty(t, misses)
}

func TestMemcached_OddKeys(t *testing.T) {
	srv := memcachedtest.Start(t, 0)
	m := newTestMemcached(t, MemcachedConfig{Addresses: []string{srv.Addr}}, nil)

	keys := []string{
		strings.Repeat("x", 250),
		strings.Repeat("x", 251),
		strings.Repeat("y", 10_000),
		"with space",
		"with\r\nget evil\r\n",
		"ctl\x00\x01\x7f",
		"",
		"P:01J5:__name__:ünïcode",
		"H:prefix",
		wireKey("with space"), // the hash of another key, as a key of its own
	}
	for i, k := range keys {
		m.Set(k, []byte(strconv.Itoa(i)))
	}
	for i, k := range keys {
		v, ok := m.Get(k)
		require.True(t, ok, "key %q", k)
		require.Equal(t, strconv.Itoa(i), string(v), "key %q", k)
	}
	hits, misses := m.GetMulti(keys)
	require.Empty(t, misses)
	require.Len(t, hits, len(keys))
	require.NoError(t, m.LastError())
	require.Equal(t, 0.0, testutil.ToFloat64(m.failures.WithLabelValues("set")))
}

func TestMemcached_TooLarge(t *testing.T) {
	srv := memcachedtest.Start(t, 0)
	m := newTestMemcached(t, MemcachedConfig{Addresses: []string{srv.Addr}, MaxItemSize: 1024}, nil)
	m.Set("small", make([]byte, 1024))
	m.Set("large", make([]byte, 1025))
	_, ok := m.Get("small")
	require.True(t, ok)
	_, ok = m.Get("large")
	require.False(t, ok)
	require.Equal(t, 1.0, testutil.ToFloat64(m.metrics.itemsTooLarge))
	require.NoError(t, m.LastError(), "a skipped item is not a failure")
}

func TestMemcached_TTL(t *testing.T) {
	srv := memcachedtest.Start(t, 0)
	m := newTestMemcached(t, MemcachedConfig{Addresses: []string{srv.Addr}, TTL: time.Second}, nil)
	m.Set("k", []byte("v"))
	_, ok := m.Get("k")
	require.True(t, ok)
	require.Eventually(t, func() bool {
		_, ok := m.Get("k")
		return !ok
	}, 10*time.Second, 100*time.Millisecond, "item outlived its TTL")
}

func TestExptime(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	for _, tc := range []struct {
		ttl  time.Duration
		want string
	}{
		{time.Second, "1"},
		{time.Millisecond, "1"},
		{1500 * time.Millisecond, "2"},
		{24 * time.Hour, "86400"},
		{maxRelativeTTL, "2592000"},
		{maxRelativeTTL + time.Second, strconv.FormatInt(now.Unix()+2592001, 10)},
	} {
		require.Equal(t, tc.want, exptime(tc.ttl, now), "ttl %v", tc.ttl)
	}
}

func TestMemcached_Outage(t *testing.T) {
	srv := memcachedtest.Start(t, 0)
	var logs syncbuf.Buffer
	m, err := NewMemcached("test", MemcachedConfig{Addresses: []string{srv.Addr}, Timeout: 200 * time.Millisecond},
		nil, slog.New(slog.NewTextHandler(&logs, nil)))
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, m.Close()) })
	m.Set("k", []byte("v"))
	_, ok := m.Get("k")
	require.True(t, ok)

	srv.Stop()
	_, ok = m.Get("k")
	require.False(t, ok, "a dead server is a miss")
	m.Set("k2", []byte("v2"))
	hits, misses := m.GetMulti([]string{"k", "k2"})
	require.Empty(t, hits)
	require.Equal(t, []string{"k", "k2"}, misses)
	require.Error(t, m.LastError())
	require.Contains(t, m.LastError().Error(), srv.Addr)
	require.GreaterOrEqual(t, testutil.ToFloat64(m.failures.WithLabelValues("get")), 2.0)
	require.GreaterOrEqual(t, testutil.ToFloat64(m.failures.WithLabelValues("set")), 1.0)
	require.Equal(t, 1, strings.Count(logs.String(), "memcached unavailable"), "warnings are rate-limited: %s", logs.String())

	port := srv.Port()
	require.NoError(t, err)
	memcachedtest.Start(t, port)
	require.Eventually(t, func() bool {
		m.Set("k", []byte("again"))
		v, ok := m.Get("k")
		return ok && string(v) == "again"
	}, 10*time.Second, 50*time.Millisecond, "no reconnect after the server came back")
	require.NoError(t, m.LastError())
}

func TestMemcachedConfig_Validate(t *testing.T) {
	for _, tc := range []struct {
		cfg     MemcachedConfig
		wantErr string
	}{
		{MemcachedConfig{Addresses: []string{"localhost:11211"}}, ""},
		{MemcachedConfig{}, "no addresses"},
		{MemcachedConfig{Addresses: []string{"localhost"}}, "missing port"},
		{MemcachedConfig{Addresses: []string{"a:1"}, Timeout: -time.Second}, "negative"},
	} {
		_, err := NewMemcached("v", tc.cfg, nil, nil)
		if tc.wantErr == "" {
			require.NoError(t, err)
		} else {
			require.ErrorContains(t, err, tc.wantErr)
		}
	}
}

func TestJumpHashSpread(t *testing.T) {
	m := &Memcached{servers: make([]*mcServer, 3)}
	for i := range m.servers {
		m.servers[i] = &mcServer{addr: strconv.Itoa(i)}
	}
	counts := map[string]int{}
	for i := range 3000 {
		counts[m.server(fmt.Sprintf("k%d", i)).addr]++
	}
	for _, s := range m.servers {
		require.Greater(t, counts[s.addr], 800, "server %s", s.addr)
	}
}

func FuzzMemcachedResponse(f *testing.F) {
	for _, s := range []string{
		"END\r\n",
		"VALUE a 0 1\r\nx\r\nEND\r\n",
		"VALUE a 0 3\r\nabc\r\nVALUE b 5 0\r\n\r\nEND\r\n",
		"VALUE c 0 1\r\nx\r\nEND\r\n",
		"VALUE a 0 99999999\r\n",
		"VALUE a 0 -1\r\n\r\nEND\r\n",
		"VALUE a 0 1 77\r\nx\r\nEND\r\n",
		"SERVER_ERROR out of memory\r\n",
		"ERROR\r\n",
		"VALUE a 0 2\r\nx\r\n",
		"END\n",
	} {
		f.Add([]byte(s))
	}
	asked := []string{"a", "b"}
	f.Fuzz(func(t *testing.T, data []byte) {
		vals, err := readValues(bufio.NewReader(bytes.NewReader(data)), asked, 64)
		for k, v := range vals {
			if k != "a" && k != "b" {
				t.Fatalf("value for key %q not asked for", k)
			}
			if len(v) > 64 {
				t.Fatalf("value of %d bytes above the limit", len(v))
			}
		}
		if err == nil && !bytes.Contains(data, []byte("END\r\n")) {
			t.Fatalf("answer without END accepted")
		}
	})
}

func TestNewMemcachedGateway(t *testing.T) {
	srv := memcachedtest.Start(t, 0)
	reg := prometheus.NewPedanticRegistry()
	g, err := NewMemcachedGateway(MemcachedConfig{Addresses: []string{srv.Addr}}, reg, nil)
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, g.Close()) })

	g.Postings.Set("P:k", []byte("p"))
	g.Chunks.Set("C:k", []byte("c"))
	v, ok := g.Postings.Get("P:k")
	require.True(t, ok)
	require.Equal(t, "p", string(v))
	_, ok = g.Series.Get("S:k")
	require.False(t, ok)
	require.Equal(t, 2, srv.Stat(t, "curr_items"), "the caches share the server")

	require.NoError(t, testutil.GatherAndCompare(reg, strings.NewReader(`
# HELP strata_storegw_cache_hits_total Lookups that found their key in the cache.
# TYPE strata_storegw_cache_hits_total counter
strata_storegw_cache_hits_total{cache="chunks"} 0
strata_storegw_cache_hits_total{cache="postings"} 1
strata_storegw_cache_hits_total{cache="series"} 0
# HELP strata_storegw_cache_memcached_operation_failures_total Memcached operations that failed (network error, timeout, unexpected answer) or were skipped because their server failed less than a second ago; they count as misses or unstored items.
# TYPE strata_storegw_cache_memcached_operation_failures_total counter
strata_storegw_cache_memcached_operation_failures_total{cache="chunks",operation="get"} 0
strata_storegw_cache_memcached_operation_failures_total{cache="chunks",operation="set"} 0
strata_storegw_cache_memcached_operation_failures_total{cache="postings",operation="get"} 0
strata_storegw_cache_memcached_operation_failures_total{cache="postings",operation="set"} 0
strata_storegw_cache_memcached_operation_failures_total{cache="series",operation="get"} 0
strata_storegw_cache_memcached_operation_failures_total{cache="series",operation="set"} 0
`), "strata_storegw_cache_hits_total", "strata_storegw_cache_memcached_operation_failures_total"))

	_, err = NewMemcachedGateway(MemcachedConfig{}, nil, nil)
	require.ErrorContains(t, err, "no addresses")
}

func TestMemcached_Concurrent(t *testing.T) {
	a, b := memcachedtest.Start(t, 0), memcachedtest.Start(t, 0)
	m := newTestMemcached(t, MemcachedConfig{Addresses: []string{a.Addr, b.Addr}, MaxIdleConnections: 2}, nil)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 200 {
				k := fmt.Sprintf("k%d", (g*7+i)%50)
				m.Set(k, []byte(k))
				if v, ok := m.Get(k); ok && string(v) != k {
					t.Errorf("key %s has value %q", k, v)
				}
				hits, _ := m.GetMulti([]string{k, "k1", "k2"})
				for hk, hv := range hits {
					if string(hv) != hk {
						t.Errorf("key %s has value %q", hk, hv)
					}
				}
			}
		})
	}
	wg.Wait()
	require.NoError(t, m.LastError())
}
