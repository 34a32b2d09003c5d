package queryfrontend

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/stretchr/testify/require"

	"github.com/stratametrics/strata/storegw/cache"
)

// fakeDownstream is a fake querier: it answers any request with data that is a
// function of tenant and time, and records the ranges it was asked for.
type fakeDownstream struct {
	calls    [][2]int64
	err      error
	warnings []string
}

func (d *fakeDownstream) fetch(_ context.Context, r Request) (Response, error) {
	d.calls = append(d.calls, [2]int64{r.Start, r.End})
	if d.err != nil {
		return Response{}, d.err
	}
	resp := answer(r)
	resp.Warnings = d.warnings
	return resp, nil
}

// answer is the correct result of r: job="a" at every point, job="b" at
// every other minute, values depending on the tenant so that a result
// served to the wrong tenant shows.
func answer(r Request) Response {
	off := float64(len(r.Tenant)) * 1e9
	a := Series{Labels: labels.FromStrings("__name__", "up", "job", "a")}
	b := Series{Labels: labels.FromStrings("__name__", "up", "job", "b")}
	for t := r.Start; t <= r.End; t += r.Step.Milliseconds() {
		a.Points = append(a.Points, Point{T: t, V: off + float64(t)/1000})
		if t%120_000 == 0 {
			b.Points = append(b.Points, Point{T: t, V: -float64(t)})
		}
	}
	var out Response
	for _, s := range []Series{a, b} {
		if len(s.Points) > 0 {
			out.Series = append(out.Series, s)
		}
	}
	return out
}

var (
	// now is the test's current time, mid-day so that today's split has
	// both a cacheable and a fresh part.
	now = time.Date(2026, 3, 10, 12, 0, 0, 0, time.UTC)
	day = 24 * time.Hour
)

const freshness = 10 * time.Minute

func at(d, h, m int) int64 { return time.Date(2026, 3, d, h, m, 0, 0, time.UTC).UnixMilli() }

func newTestCache(t *testing.T) (*ResultsCache, cache.Cache) {
	t.Helper()
	c := cache.NewLRU("test", 64<<20, 0, nil)
	rc, err := NewResultsCache(c, day, freshness, nil)
	require.NoError(t, err)
	return rc, c
}

// query runs r through Align, Split and the cache, as the frontend will,
// checks the result against the right answer and returns the downstream
// calls it took.
func query(t *testing.T, rc *ResultsCache, r Request, now time.Time) [][2]int64 {
	t.Helper()
	d := &fakeDownstream{}
	a, err := Align(r)
	require.NoError(t, err)
	subs, err := Split(a, day)
	require.NoError(t, err)
	var parts []Response
	for _, sub := range subs {
		resp, _, err := rc.Fetch(context.Background(), sub, now, d.fetch)
		require.NoError(t, err)
		parts = append(parts, resp)
	}
	require.Equal(t, answer(a), Merge(parts...))
	return d.calls
}

func req(q string, start, end int64) Request {
	return Request{Query: q, Start: start, End: end, Step: time.Minute, Tenant: "team-a"}
}

// cached returns the extent rc holds for the split of r.
func cached(t *testing.T, rc *ResultsCache, c cache.Cache, r Request) (Extent, bool) {
	t.Helper()
	key, ok := rc.key(r, r.Step.Milliseconds(), splitStart(r.Start, rc.interval))
	require.True(t, ok)
	b, ok := c.Get(key)
	if !ok {
		return Extent{}, false
	}
	e, err := DecodeExtent(b)
	require.NoError(t, err)
	return e, true
}

func TestResultsCacheRepeatedQueryIsServedFromCache(t *testing.T) {
	rc, _ := newTestCache(t)
	r := req("up", at(5, 6, 0), at(7, 18, 0))
	require.Equal(t, [][2]int64{
		{at(5, 6, 0), at(5, 23, 59)}, {at(6, 0, 0), at(6, 23, 59)}, {at(7, 0, 0), at(7, 18, 0)},
	}, query(t, rc, r, now))
	require.Empty(t, query(t, rc, r, now))
	// A narrower query inside the cached extents is served from them too.
	require.Empty(t, query(t, rc, req("up", at(6, 1, 0), at(7, 3, 0)), now))
}

func TestResultsCacheFetchesOnlyTheNewDay(t *testing.T) {
	rc, _ := newTestCache(t)
	query(t, rc, req("up", at(5, 0, 0), at(6, 23, 59)), now)
	require.Equal(t, [][2]int64{{at(7, 0, 0), at(7, 23, 59)}}, query(t, rc, req("up", at(5, 0, 0), at(7, 23, 59)), now))
}

func TestResultsCacheExtendsPartialExtent(t *testing.T) {
	rc, _ := newTestCache(t)
	require.Len(t, query(t, rc, req("up", at(8, 10, 0), at(8, 14, 0)), now), 1)
	require.Equal(t, [][2]int64{
		{at(8, 8, 0), at(8, 9, 59)},
		{at(8, 14, 1), at(8, 18, 0)},
	}, query(t, rc, req("up", at(8, 8, 0), at(8, 18, 0)), now))
	require.Empty(t, query(t, rc, req("up", at(8, 8, 0), at(8, 18, 0)), now))
	// Only the head is missing.
	require.Equal(t, [][2]int64{{at(8, 7, 0), at(8, 7, 59)}}, query(t, rc, req("up", at(8, 7, 0), at(8, 12, 0)), now))
}

func TestResultsCacheReplacesDisjointExtent(t *testing.T) {
	rc, c := newTestCache(t)
	query(t, rc, req("up", at(8, 10, 0), at(8, 11, 0)), now)
	r := req("up", at(8, 15, 0), at(8, 16, 0))
	// Not the gap from 11:01: only what was asked for.
	require.Equal(t, [][2]int64{{at(8, 15, 0), at(8, 16, 0)}}, query(t, rc, r, now))
	e, ok := cached(t, rc, c, r)
	require.True(t, ok)
	require.Equal(t, [2]int64{at(8, 15, 0), at(8, 16, 0)}, [2]int64{e.Start, e.End})
}

func TestResultsCacheFreshnessWindow(t *testing.T) {
	rc, c := newTestCache(t)
	r := req("up", at(10, 9, 0), at(10, 12, 0))
	// 11:50 is now-freshness; the last cacheable point is before it.
	require.Equal(t, [][2]int64{{at(10, 9, 0), at(10, 12, 0)}}, query(t, rc, r, now))
	e, ok := cached(t, rc, c, r)
	require.True(t, ok)
	require.Equal(t, at(10, 11, 49), e.End)
	for _, p := range e.Response.Series[0].Points {
		require.Less(t, p.T, now.Add(-freshness).UnixMilli())
	}
	// The fresh part is fetched every time, the rest never again.
	for range 3 {
		require.Equal(t, [][2]int64{{at(10, 11, 50), at(10, 12, 0)}}, query(t, rc, r, now))
	}
	// Five minutes later, five more minutes are cacheable and get cached.
	later := now.Add(5 * time.Minute)
	r.End = at(10, 12, 5)
	require.Equal(t, [][2]int64{{at(10, 11, 50), at(10, 12, 5)}}, query(t, rc, r, later))
	require.Equal(t, [][2]int64{{at(10, 11, 55), at(10, 12, 5)}}, query(t, rc, r, later))
	e, ok = cached(t, rc, c, r)
	require.True(t, ok)
	require.Equal(t, at(10, 11, 54), e.End)
}

func TestResultsCacheBypassesRequestsInsideFreshnessWindow(t *testing.T) {
	rc, c := newTestCache(t)
	r := req("up", at(10, 11, 55), at(10, 12, 0))
	for range 3 {
		require.Equal(t, [][2]int64{{at(10, 11, 55), at(10, 12, 0)}}, query(t, rc, r, now))
	}
	_, ok := cached(t, rc, c, r)
	require.False(t, ok)
}

func TestResultsCacheKeys(t *testing.T) {
	rc, _ := newTestCache(t)
	key := func(tenant, q string, step time.Duration, t0 int64) string {
		k, ok := rc.key(Request{Query: q, Tenant: tenant, Step: step}, step.Milliseconds(), t0)
		require.True(t, ok)
		return k
	}
	base := key("a", `up{job="x"}`, time.Minute, 0)
	require.NotEqual(t, base, key("b", `up{job="x"}`, time.Minute, 0), "tenant")
	require.NotEqual(t, base, key("", `up{job="x"}`, time.Minute, 0), "empty tenant")
	require.NotEqual(t, base, key("a", `up{job="y"}`, time.Minute, 0), "query")
	require.NotEqual(t, base, key("a", `up{job="x"}`, time.Second, 0), "step")
	require.NotEqual(t, base, key("a", `up{job="x"}`, time.Minute, day.Milliseconds()), "split")
	k, ok := rc.key(Request{Query: `up{job="x"}`, Tenant: "a", Step: time.Minute, Options: "dedup=false"}, time.Minute.Milliseconds(), 0)
	require.True(t, ok)
	require.NotEqual(t, base, k, "options")
	// Length prefixes keep fields apart: moving bytes between tenant and
	// options changes the key.
	k2, ok := rc.key(Request{Query: `up{job="x"}`, Tenant: "adedup=false", Step: time.Minute}, time.Minute.Milliseconds(), 0)
	require.True(t, ok)
	require.NotEqual(t, k, k2, "field boundaries")
	// Spelling that the parser normalizes away shares the key.
	require.Equal(t, base, key("a", `up{ job = 'x' }`, time.Minute, 0))
	require.Equal(t, base, key("a", "up{job=\"x\"} # comment", time.Minute, 0))
}

func TestResultsCacheTenantsDoNotShareResults(t *testing.T) {
	rc, _ := newTestCache(t)
	r := req("up", at(5, 0, 0), at(5, 6, 0))
	query(t, rc, r, now)
	// query checks that tenant b gets its own answer, which differs from a's.
	r.Tenant = "b"
	require.Len(t, query(t, rc, r, now), 1)
	require.Empty(t, query(t, rc, r, now))
}

func TestResultsCacheCorruptValueIsAMiss(t *testing.T) {
	rc, c := newTestCache(t)
	r := req("up", at(5, 0, 0), at(5, 6, 0))
	key, ok := rc.key(r, r.Step.Milliseconds(), splitStart(r.Start, rc.interval))
	require.True(t, ok)
	c.Set(key, []byte("not an extent"))
	require.Len(t, query(t, rc, r, now), 1)
	require.Empty(t, query(t, rc, r, now))

	// A valid encoding whose extent lies outside the key's split is a miss too.
	c.Set(key, EncodeExtent(Extent{Start: at(6, 0, 0), End: at(6, 1, 0)}))
	require.Len(t, query(t, rc, r, now), 1)
}

func TestResultsCacheBypassedQueries(t *testing.T) {
	for _, q := range []string{"up @ start()", "rate(up[5m] @ end())", "max_over_time(up[1h:1m] @ start())"} {
		t.Run(q, func(t *testing.T) {
			rc, _ := newTestCache(t)
			r := req(q, at(5, 0, 0), at(5, 6, 0))
			for range 2 {
				require.Len(t, query(t, rc, r, now), 1)
			}
		})
	}
	t.Run("does not parse", func(t *testing.T) {
		rc, _ := newTestCache(t)
		d := &fakeDownstream{err: errors.New("bad query")}
		_, _, err := rc.Fetch(context.Background(), req("up{", at(5, 0, 0), at(5, 6, 0)), now, d.fetch)
		require.ErrorIs(t, err, d.err)
		require.Len(t, d.calls, 1)
	})
}

func TestResultsCacheFetchErrorStoresNothing(t *testing.T) {
	rc, c := newTestCache(t)
	r := req("up", at(5, 0, 0), at(5, 6, 0))
	d := &fakeDownstream{err: errors.New("querier down")}
	_, _, err := rc.Fetch(context.Background(), r, now, d.fetch)
	require.ErrorIs(t, err, d.err)
	_, ok := cached(t, rc, c, r)
	require.False(t, ok)
}

func TestResultsCacheRejects(t *testing.T) {
	rc, _ := newTestCache(t)
	for _, tc := range []struct {
		name string
		r    Request
		err  error
	}{
		{name: "not aligned", r: req("up", at(5, 0, 0)+1, at(5, 6, 0)), err: ErrNotAligned},
		{name: "spans splits", r: req("up", at(5, 0, 0), at(6, 0, 0)), err: ErrSpansSplits},
		{name: "bad step", r: Request{Query: "up", Start: 0, End: 0}, err: ErrInvalidStep},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := &fakeDownstream{}
			_, _, err := rc.Fetch(context.Background(), tc.r, now, d.fetch)
			require.ErrorIs(t, err, tc.err)
			require.Empty(t, d.calls)
		})
	}
	_, err := NewResultsCache(cache.NewLRU("x", 1<<20, 0, nil), 0, freshness, nil)
	require.ErrorIs(t, err, ErrInvalidInterval)
}

func TestResultsCacheOutcomes(t *testing.T) {
	rc, _ := newTestCache(t)
	fetch := func(r Request) CacheOutcome {
		t.Helper()
		d := &fakeDownstream{}
		resp, outcome, err := rc.Fetch(context.Background(), r, now, d.fetch)
		require.NoError(t, err)
		require.Equal(t, answer(r), resp)
		return outcome
	}
	require.Equal(t, CacheMiss, fetch(req("up", at(5, 6, 0), at(5, 8, 0))))
	require.Equal(t, CacheHit, fetch(req("up", at(5, 6, 0), at(5, 8, 0))))
	require.Equal(t, CacheHit, fetch(req("up", at(5, 7, 0), at(5, 7, 30))))
	require.Equal(t, CachePartial, fetch(req("up", at(5, 5, 0), at(5, 8, 0))))
	require.Equal(t, CacheHit, fetch(req("up", at(5, 5, 0), at(5, 8, 0))))
	// Inside the freshness window, or never cacheable.
	require.Equal(t, CacheBypass, fetch(req("up", now.UnixMilli()-time.Minute.Milliseconds(), now.UnixMilli())))
	require.Equal(t, CacheBypass, fetch(req("up @ end()", at(5, 6, 0), at(5, 8, 0))))
	for o, name := range map[CacheOutcome]string{CacheBypass: "bypass", CacheMiss: "miss", CachePartial: "partial", CacheHit: "hit"} {
		require.Equal(t, name, o.String())
	}
}

func TestResultsCacheWarningsAreNotCached(t *testing.T) {
	rc, c := newTestCache(t)
	r := req("up", at(5, 0, 0), at(5, 6, 0))
	d := &fakeDownstream{warnings: []string{"store 10.0.0.1:10901 unavailable: partial response"}}
	resp, outcome, err := rc.Fetch(context.Background(), r, now, d.fetch)
	require.NoError(t, err)
	require.Equal(t, CacheMiss, outcome)
	require.Equal(t, d.warnings, resp.Warnings)
	_, ok := cached(t, rc, c, r)
	require.False(t, ok, "a response with warnings may be partial and must not be cached")

	// The next answer has no warnings and is cached; a later partial-hit
	// extension that warns leaves the stored extent as it was.
	d.warnings = nil
	_, _, err = rc.Fetch(context.Background(), r, now, d.fetch)
	require.NoError(t, err)
	before, ok := cached(t, rc, c, r)
	require.True(t, ok)
	d.warnings = []string{"partial"}
	wider := req("up", at(5, 0, 0), at(5, 9, 0))
	resp, outcome, err = rc.Fetch(context.Background(), wider, now, d.fetch)
	require.NoError(t, err)
	require.Equal(t, CachePartial, outcome)
	require.Equal(t, []string{"partial"}, resp.Warnings)
	after, ok := cached(t, rc, c, r)
	require.True(t, ok)
	require.Equal(t, before, after)
}

func TestResultsCacheUnalignedRequestsKeepTheirPoints(t *testing.T) {
	rc, c := newTestCache(t)
	// Evaluation times at 15s past each minute, as a client that does not
	// align asks; the cache neither moves nor mixes them with aligned ones.
	r := req("up", at(5, 6, 0)+15_000, at(5, 8, 0)+15_000)
	d := &fakeDownstream{}
	resp, outcome, err := rc.Fetch(context.Background(), r, now, d.fetch)
	require.NoError(t, err)
	require.Equal(t, CacheMiss, outcome)
	require.Equal(t, answer(r), resp)
	resp, outcome, err = rc.Fetch(context.Background(), r, now, d.fetch)
	require.NoError(t, err)
	require.Equal(t, CacheHit, outcome)
	require.Equal(t, answer(r), resp)
	e, ok := cached(t, rc, c, r)
	require.True(t, ok)
	require.Equal(t, r.Start, e.Start)

	aligned := req("up", at(5, 6, 0), at(5, 8, 0))
	_, outcome, err = rc.Fetch(context.Background(), aligned, now, d.fetch)
	require.NoError(t, err)
	require.Equal(t, CacheMiss, outcome, "another phase has a key of its own")
	// Extending the unaligned extent keeps its phase.
	wider := req("up", at(5, 5, 0)+15_000, at(5, 9, 0)+15_000)
	resp, outcome, err = rc.Fetch(context.Background(), wider, now, d.fetch)
	require.NoError(t, err)
	require.Equal(t, CachePartial, outcome)
	require.Equal(t, answer(wider), resp)
	require.Equal(t, [][2]int64{
		{r.Start, r.End}, {aligned.Start, aligned.End}, {wider.Start, r.Start - 60_000}, {r.End + 60_000, wider.End},
	}, d.calls)
}

func TestResultsCacheFetchRun(t *testing.T) {
	rc, c := newTestCache(t)
	// Three days, the last one ending inside the freshness window.
	r := req("up", at(8, 6, 0), now.UnixMilli())
	subs, err := Split(r, day)
	require.NoError(t, err)
	require.Len(t, subs, 3)
	var looks []Lookup
	for _, sub := range subs {
		l, err := rc.Lookup(sub, now)
		require.NoError(t, err)
		require.False(t, l.Hit())
		looks = append(looks, l)
	}
	d := &fakeDownstream{}
	resps, outcomes, err := rc.FetchRun(context.Background(), looks, d.fetch)
	require.NoError(t, err)
	require.Equal(t, [][2]int64{{r.Start, r.End}}, d.calls, "one downstream query for the run")
	require.Equal(t, []CacheOutcome{CacheMiss, CacheMiss, CacheMiss}, outcomes)
	for k, sub := range subs {
		require.Equal(t, answer(sub), resps[k])
		e, ok := cached(t, rc, c, sub)
		require.True(t, ok)
		require.Equal(t, sub.Start, e.Start)
		require.Equal(t, min(sub.End, now.UnixMilli()-freshness.Milliseconds()-60_000), e.End, "the fresh part of today is not stored")
	}
	// Now each day is a hit, answered without the downstream.
	for _, sub := range subs[:2] {
		d := &fakeDownstream{}
		resp, outcome, err := rc.Fetch(context.Background(), sub, now, d.fetch)
		require.NoError(t, err)
		require.Equal(t, CacheHit, outcome)
		require.Equal(t, answer(sub), resp)
		require.Empty(t, d.calls)
	}

	// Answers with warnings are not stored; bad runs are refused.
	rc2, c2 := newTestCache(t)
	var cold []Lookup
	for _, sub := range subs {
		l, err := rc2.Lookup(sub, now)
		require.NoError(t, err)
		cold = append(cold, l)
	}
	_, _, err = rc2.FetchRun(context.Background(), cold, (&fakeDownstream{warnings: []string{"partial"}}).fetch)
	require.NoError(t, err)
	_, ok := cached(t, rc2, c2, subs[0])
	require.False(t, ok)
	_, _, err = rc2.FetchRun(context.Background(), []Lookup{cold[0], cold[2]}, (&fakeDownstream{}).fetch)
	require.ErrorContains(t, err, "does not follow")
	_, _, err = rc.FetchRun(context.Background(), []Lookup{func() Lookup { l, _ := rc.Lookup(subs[0], now); return l }()}, (&fakeDownstream{}).fetch)
	require.ErrorContains(t, err, "has a hit")
}

// countingCache counts the lookups made of the cache it wraps.
type countingCache struct {
	cache.Cache
	gets, getMultis int
}

func (c *countingCache) Get(key string) ([]byte, bool) {
	c.gets++
	return c.Cache.Get(key)
}

func (c *countingCache) GetMulti(keys []string) (map[string][]byte, []string) {
	c.getMultis++
	return c.Cache.GetMulti(keys)
}

func TestResultsCacheLookupAllIsOneRoundTrip(t *testing.T) {
	cc := &countingCache{Cache: cache.NewLRU("test", 64<<20, 0, nil)}
	rc, err := NewResultsCache(cc, day, freshness, nil)
	require.NoError(t, err)
	subs, err := Split(req("up", at(5, 6, 0), at(7, 18, 0)), day)
	require.NoError(t, err)
	for pass := range 2 {
		looks, err := rc.LookupAll(subs, now)
		require.NoError(t, err)
		require.Equal(t, pass+1, cc.getMultis, "one GetMulti for every split")
		require.Zero(t, cc.gets)
		for _, l := range looks {
			require.Equal(t, pass == 1, l.Hit())
		}
		_, _, err = rc.FetchRun(context.Background(), looks, (&fakeDownstream{}).fetch)
		if pass == 1 {
			require.ErrorContains(t, err, "has a hit")
		} else {
			require.NoError(t, err)
		}
	}
}
