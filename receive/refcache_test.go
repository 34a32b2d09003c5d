package receive

import (
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/prompb"
	"github.com/prometheus/prometheus/storage"
	"github.com/stretchr/testify/require"
)

func wire(pairs ...string) []wireLabel {
	var ls []wireLabel
	for i := 0; i < len(pairs); i += 2 {
		ls = append(ls, wireLabel{name: pairs[i], value: pairs[i+1]})
	}
	return ls
}

func pushSeries(t *testing.T, h *Handler, ts int64, v float64, pairs ...string) *http.Response {
	t.Helper()
	body := encodeV1(t, &prompb.WriteRequest{Timeseries: []prompb.TimeSeries{{
		Labels: lbls(pairs...), Samples: []prompb.Sample{{Value: v, Timestamp: ts}},
	}}})
	return post(h, body, nil).Result()
}

func TestSeriesCacheKnownSeriesAreFoundAndChecked(t *testing.T) {
	store := newTestStorage(t, nil)
	h := NewHandler(Options{}, store, nil, nil)
	now := time.Now().UnixMilli()

	require.Equal(t, http.StatusNoContent, pushSeries(t, h, now, 1, "__name__", "a", "job", "x").StatusCode)
	c := store.cache(DefaultTenant)
	require.NotNil(t, c, "the handler keeps a cache in the storage's slot")
	require.Equal(t, 1, c.len())
	keyA, ok := hashWireLabels(wire("__name__", "a", "job", "x"))
	require.True(t, ok)
	entryA, ok := c.get(keyA, wire("__name__", "a", "job", "x"))
	require.True(t, ok)

	// The same series again is found in the cache and lands in the same series.
	require.Equal(t, http.StatusNoContent, pushSeries(t, h, now+1000, 2, "__name__", "a", "job", "x").StatusCode)
	require.Equal(t, 1, c.len())

	// A series whose hash collides with a cached one is told apart by its labels:
	// plant a's entry under b's key.
	keyB, ok := hashWireLabels(wire("__name__", "b", "job", "x"))
	require.True(t, ok)
	c.put(keyB, entryA)
	require.Equal(t, http.StatusNoContent, pushSeries(t, h, now, 3, "__name__", "b", "job", "x").StatusCode)

	// A reference storage does not know (garbage-collected) still lands in the
	// series its labels name.
	c.put(keyA, cachedSeries{ref: 1 << 40, ls: entryA.ls})
	require.Equal(t, http.StatusNoContent, pushSeries(t, h, now+2000, 4, "__name__", "a", "job", "x").StatusCode)
	got, ok := c.get(keyA, wire("__name__", "a", "job", "x"))
	require.True(t, ok)
	require.Equal(t, entryA.ref, got.ref, "the entry is corrected to the reference storage used")

	// Labels that only differ by bytes the cache must not gloss over are validated:
	// invalid UTF-8 is never found in the cache.
	resp := pushSeries(t, h, now+3000, 5, "__name__", "a", "job", "x\xff")
	require.Equal(t, http.StatusBadRequest, resp.StatusCode)

	// An empty label value is dropped before storage; such series bypass the cache.
	require.Equal(t, http.StatusNoContent, pushSeries(t, h, now+3000, 6, "__name__", "a", "env", "", "job", "x").StatusCode)
	resp = pushSeries(t, h, now+4000, 7, "__name__", "a", "job", "", "job", "x")
	require.Equal(t, http.StatusBadRequest, resp.StatusCode, "a duplicate label name is caught even when it hides behind an empty value")

	require.Equal(t, dump{
		`{__name__="a", job="x"}`: {fmtSample(now, 1), fmtSample(now+1000, 2), fmtSample(now+2000, 4), fmtSample(now+3000, 6)},
		`{__name__="b", job="x"}`: {fmtSample(now, 3)},
	}, store.dump(DefaultTenant))
}

func fmtSample(t int64, v float64) string { return fmt.Sprintf("%d:%s", t, formatFloat(v)) }

func TestSeriesCacheMergesAndAges(t *testing.T) {
	c := newSeriesCache(time.Now())
	for i := range 5000 {
		sl := wire("__name__", "m", "i", string(rune('a'+i%26))+string(rune('a'+i/26%26))+string(rune('a'+i/676)))
		key, ok := hashWireLabels(sl)
		require.True(t, ok)
		c.put(key, cachedSeries{ref: 1, ls: labels.FromStrings(sl[0].name, sl[0].value, sl[1].name, sl[1].value)})
	}
	require.Equal(t, 5000, c.len())
	read := c.read.Load().n
	require.Less(t, 5000-read, 256+read/4, "most entries were merged into the lock-free map")

	var slot atomic.Value
	app := cachingAppender{slot: &slot}
	start := time.Now()
	first := seriesCacheOf(app, start)
	require.Same(t, first, seriesCacheOf(app, start.Add(seriesCacheMaxAge-time.Second)))
	second := seriesCacheOf(app, start.Add(seriesCacheMaxAge))
	require.NotSame(t, first, second, "an old cache is started afresh")
	require.Same(t, second, slot.Load())

	require.Nil(t, seriesCacheOf(cachingAppender{}, start), "no slot, no cache")
}

func TestHashWireLabels(t *testing.T) {
	a, ok := hashWireLabels(wire("__name__", "a", "job", "x"))
	require.True(t, ok)
	c, ok := hashWireLabels(wire("__name__", "aj", "ob", "x"))
	require.True(t, ok)
	require.NotEqual(t, a, c, "label boundaries count")
	e, ok := hashWireLabels(wire("__name__", "a", "job", "y"))
	require.True(t, ok)
	require.NotEqual(t, a, e, "values count")
	d, ok := hashWireLabels(wire("job", "x", "__name__", "a"))
	require.True(t, ok)
	require.NotEqual(t, a, d, "order counts")
	_, ok = hashWireLabels(wire("__name__", "a", "job", ""))
	require.False(t, ok)

	require.True(t, sameLabels(labels.FromStrings("__name__", "a", "job", "x"), wire("__name__", "a", "job", "x")))
	require.False(t, sameLabels(labels.FromStrings("__name__", "a", "job", "x"), wire("__name__", "a")))
	require.False(t, sameLabels(labels.FromStrings("__name__", "a"), wire("__name__", "a", "job", "x")))
	require.False(t, sameLabels(labels.FromStrings("__name__", "a", "job", "x"), wire("__name__", "a", "job", "y")))
}

func TestCacheTable(t *testing.T) {
	for _, n := range []int{0, 1, 7, 1000} {
		tb := newCacheTable(n)
		require.GreaterOrEqual(t, len(tb.slots)*7, n*8, "at most 7/8 full")
		// Keys whose high bits collide probe past the end of the table and wrap.
		keys := make([]uint64, 0, n)
		for i := range n {
			keys = append(keys, ^uint64(0)-uint64(i%3)<<8-uint64(i))
		}
		for i, k := range keys {
			tb.set(k, cachedSeries{ref: storage.SeriesRef(i + 1)})
		}
		require.Equal(t, n, tb.n)
		for i, k := range keys {
			e, ok := tb.get(k)
			require.True(t, ok, "key %d", i)
			require.Equal(t, storage.SeriesRef(i+1), e.ref)
		}
		for i := range 100 {
			_, ok := tb.get(uint64(i) * 977)
			require.False(t, ok)
		}
		if n > 0 {
			tb.set(keys[0], cachedSeries{ref: 42})
			e, _ := tb.get(keys[0])
			require.Equal(t, storage.SeriesRef(42), e.ref, "set replaces")
			require.Equal(t, n, tb.n)
		}
	}
}

// TestSameLabels checks sameLabels against the Labels API, with values long
// enough to take the long length encoding.
func TestSameLabels(t *testing.T) {
	long := strings.Repeat("v", 300)
	sets := [][]string{
		{"__name__", "a"},
		{"__name__", "a", "job", "x"},
		{"__name__", "a", "job", "y"},
		{"__name__", "a", "jo", "bx"},
		{"__name__", "a", "job", long},
		{"__name__", "a", "job", long + "w"},
		{"__name__", long, "job", "x"},
		{"__name__", "a", "job", "x", "zone", "z"},
	}
	for _, a := range sets {
		for _, b := range sets {
			ls := labels.FromStrings(a...)
			var ref bool
			func() {
				i, same := 0, true
				sl := wire(b...)
				ls.Range(func(l labels.Label) {
					if i >= len(sl) || sl[i].name != l.Name || sl[i].value != l.Value {
						same = false
					}
					i++
				})
				ref = same && i == len(sl)
			}()
			require.Equal(t, ref, sameLabels(ls, wire(b...)), "%v vs %v", a, b)
			require.Equal(t, slices.Equal(a, b), sameLabels(ls, wire(b...)), "%v vs %v", a, b)
		}
	}
	require.True(t, sameLabels(labels.EmptyLabels(), nil))
	require.False(t, sameLabels(labels.EmptyLabels(), wire("a", "b")))
}
