package e2e

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/prometheus/prompb"
	"github.com/prometheus/prometheus/promql/parser"
	"github.com/stretchr/testify/require"

	"github.com/stratametrics/strata/internal/memcachedtest"
	"github.com/stratametrics/strata/queryshard"
)

// testFrontendParity puts two strata query-frontends in front of the querier
// at querierURL and checks, for every range query of the parity set, that
//   - one, with its results cache on a real memcached, answers exactly as the
//     querier does, both with a cold cache and from memcached, and that the
//     second answer did come from the cache;
//   - the other, with no cache and 3 shards, answers exactly as the querier
//     does, and ran in shards every expression the planner calls shardable.
func testFrontendParity(t *testing.T, cases []parityCase, querierURL string, start, end int64) {
	ctx := context.Background()
	mc := memcachedtest.Start(t, 0)
	cachedAddr, shardedAddr := freeAddr(t), freeAddr(t)
	cachedFE := startProcess(t, "strata query-frontend (memcached)", strataBin, "query-frontend",
		"--http-address="+cachedAddr,
		"--query-frontend.downstream-url="+querierURL,
		"--query-range.response-cache-memcached-addresses="+mc.Addr,
		// The bucket's data is complete: nothing is too fresh to cache.
		"--query-range.response-cache-max-freshness=0s",
	)
	shardedFE := startProcess(t, "strata query-frontend (shards)", strataBin, "query-frontend",
		"--http-address="+shardedAddr,
		"--query-frontend.downstream-url="+querierURL,
		"--query-range.response-cache-max-size=0",
		"--query-range.shards=3",
	)
	cachedURL, shardedURL := "http://"+cachedAddr, "http://"+shardedAddr
	waitHTTP(t, cachedFE, cachedURL+"/-/ready", time.Minute)
	waitHTTP(t, shardedFE, shardedURL+"/-/ready", time.Minute)

	p := parser.NewParser(parser.Options{})
	cacheable, shardable := 0, 0
	for _, c := range cases {
		if c.instantOnly {
			continue
		}
		t.Run(c.name, func(t *testing.T) {
			rng := url.Values{"query": {c.expr}, "start": {formatMillis(start)}, "end": {formatMillis(end)}, "step": {"1s"}}
			want := queryResult(t, querierURL, "/api/v1/query_range", rng)
			if !c.empty {
				require.NotEmpty(t, want.series, "the querier answers %s with data", c.expr)
			}
			for _, fe := range []struct{ name, url string }{{"cold", cachedURL}, {"cached", cachedURL}, {"sharded", shardedURL}} {
				got := queryResult(t, fe.url, "/api/v1/query_range", rng)
				var fc floatComparer
				require.NoError(t, diffQueryResults(want, got, false, &fc), "%s range query %s\nquerier:  %s\nfrontend: %s", fe.name, c.expr, want.raw, got.raw)
			}
			// An answer with warnings may be partial and is never cached;
			// @ start() and @ end() are not split and not cached.
			warnings := rangeWarnings(t, querierURL, rng)
			ans := rawRangeAnswerHeader(t, cachedURL, rng)
			if len(warnings) > 0 || strings.Contains(c.expr, "@ end()") || strings.Contains(c.expr, "@ start()") {
				require.Contains(t, ans.Get("X-Strata-Results-Cache"), "hit=0", "warnings %v", warnings)
			} else {
				cacheable++
				require.Contains(t, ans.Get("X-Strata-Results-Cache"), "partial=0 miss=0 bypass=0", "answered from the cache alone")
			}
			expr, err := p.ParseExpr(c.expr)
			require.NoError(t, err)
			if _, ok := queryshard.PlanExpr(expr); ok {
				shardable++
				require.Equal(t, "3", rawRangeAnswerHeader(t, shardedURL, rng).Get("X-Strata-Query-Shards"), "%s ran in shards", c.expr)
			}
		})
	}
	hits, ok, err := metricValueWith(ctx, cachedURL+"/metrics", "strata_query_frontend_results_cache_requests_total", `outcome="hit"`)
	require.NoError(t, err)
	require.True(t, ok)
	require.GreaterOrEqual(t, hits, float64(cacheable), "every cacheable query's second answer came from the cache")
	require.GreaterOrEqual(t, mc.Stat(t, "get_hits"), cacheable, "and the cache is memcached")
	require.GreaterOrEqual(t, shardable, 9, "the parity set's aggregations shard")
	t.Logf("%d cases, %d cacheable: %.0f split hits, memcached holds %d items; %d sharded", len(cases), cacheable, hits, mc.Stat(t, "curr_items"), shardable)
}

// rawRangeAnswerHeader runs a range query and returns the answer's headers.
func rawRangeAnswerHeader(t *testing.T, baseURL string, params url.Values) http.Header {
	t.Helper()
	resp, err := http.Get(baseURL + "/api/v1/query_range?" + params.Encode())
	require.NoError(t, err)
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	return resp.Header
}

// rangeWarnings runs a range query and returns its warnings.
func rangeWarnings(t *testing.T, baseURL string, params url.Values) []string {
	t.Helper()
	resp, err := http.Get(baseURL + "/api/v1/query_range?" + params.Encode())
	require.NoError(t, err)
	defer resp.Body.Close()
	var env struct {
		Warnings []string `json:"warnings"`
	}
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&env))
	require.Equal(t, http.StatusOK, resp.StatusCode)
	return env.Warnings
}

// frontendAnswer is a range query answer with what the frontend says about
// it.
type frontendAnswer struct {
	values   map[int64]string
	warnings []string
	cache    string
}

// queryFrontend runs a range query of one series at the frontend and returns
// its points.
func queryFrontend(t *testing.T, baseURL, query string, start, end int64, step time.Duration) frontendAnswer {
	t.Helper()
	params := url.Values{"query": {query}, "start": {formatMillis(start)}, "end": {formatMillis(end)}, "step": {step.String()}}
	resp, err := http.Get(baseURL + "/api/v1/query_range?" + params.Encode())
	require.NoError(t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, resp.StatusCode, "%s", body)
	var env struct {
		Status string `json:"status"`
		Data   struct {
			Result []struct {
				Values [][2]any `json:"values"`
			} `json:"result"`
		} `json:"data"`
		Warnings []string `json:"warnings"`
	}
	require.NoError(t, json.Unmarshal(body, &env), "%s", body)
	require.Equal(t, "success", env.Status)
	require.LessOrEqual(t, len(env.Data.Result), 1, "%s", body)
	a := frontendAnswer{values: map[int64]string{}, warnings: env.Warnings, cache: resp.Header.Get("X-Strata-Results-Cache")}
	for _, s := range env.Data.Result {
		for _, p := range s.Values {
			a.values[int64(p[0].(float64)*1000)] = p[1].(string)
		}
	}
	return a
}

// TestQueryFrontendFreshnessAndMemcachedOutage runs strata up, whose query
// frontend keeps its results cache on a real memcached, and checks that
//   - a repeated range query is answered from the cache, as its metrics and
//     memcached's own statistics show;
//   - a sample that arrives late, for a time inside the freshness window, is
//     in the next answer, and stays in it once its time has left the window
//     and the cached extent has grown over it;
//   - with memcached gone, queries are answered, correctly and uncached, with a
//     warning and never an error, and caching resumes when it is back.
func TestQueryFrontendFreshnessAndMemcachedOutage(t *testing.T) {
	ctx := context.Background()
	mc := memcachedtest.Start(t, 0)
	rwAddr, httpAddr := freeAddr(t), freeAddr(t)
	const freshness = 4 * time.Second
	up := startProcess(t, "strata up", strataBin, "up",
		"--data-dir="+t.TempDir(),
		"--remote-write.address="+rwAddr,
		"--http-address="+httpAddr,
		"--self-scrape.disable",
		"--query-range.response-cache-memcached-addresses="+mc.Addr,
		"--query-range.response-cache-memcached-timeout=200ms",
		"--query-range.response-cache-max-freshness="+freshness.String(),
	)
	upURL := "http://" + httpAddr
	rwURL := "http://" + rwAddr + "/api/v1/receive"
	waitHTTP(t, up, upURL+"/-/ready", time.Minute)

	push := func(ts ...int64) {
		t.Helper()
		s := prompb.TimeSeries{Labels: []prompb.Label{{Name: "__name__", Value: "frontend_test"}, {Name: "job", Value: "fe"}}}
		for _, t := range ts {
			s.Samples = append(s.Samples, prompb.Sample{Timestamp: t, Value: float64(t)})
		}
		code, body, err := pushRW1(ctx, http.DefaultClient, rwURL, "", []prompb.TimeSeries{s})
		require.NoError(t, err)
		require.True(t, code/100 == 2, "push: %d %s", code, body)
	}
	metric := func(outcome string) float64 {
		t.Helper()
		v, _, err := metricValueWith(ctx, upURL+"/metrics", "strata_query_frontend_results_cache_requests_total", `outcome="`+outcome+`"`)
		require.NoError(t, err)
		return v
	}

	// Samples every second for the last two minutes, up to 10s ago.
	const step = time.Second
	now := time.Now().UnixMilli()
	start := now - now%1000 - 120_000
	var ts []int64
	for t := start; t <= now-10_000; t += 1000 {
		ts = append(ts, t)
	}
	push(ts...)
	// The querier learns the receivers' time ranges by polling; wait until
	// it reads the new series, so that the first answer is complete.
	require.Eventually(t, func() bool {
		res, err := fetchQuery(ctx, upURL, "/api/v1/query", url.Values{"query": {"count_over_time(frontend_test[10m])"}})
		return err == nil && len(res.series) == 1 && res.series[0].points[0].f == float64(len(ts))
	}, time.Minute, 200*time.Millisecond, "the querier reads the pushed samples")
	expect := func(a frontendAnswer, samples []int64) {
		t.Helper()
		for _, s := range samples {
			require.Equal(t, formatValue(s), a.values[s], "point at %d (cache %s), %d points", s, a.cache, len(a.values))
		}
	}

	end := time.Now().UnixMilli()
	first := queryFrontend(t, upURL, "frontend_test", start, end, step)
	require.Empty(t, first.warnings)
	expect(first, ts)
	hits := metric("hit") + metric("partial")
	getHits := mc.Stat(t, "get_hits")
	second := queryFrontend(t, upURL, "frontend_test", start, end, step)
	expect(second, ts)
	require.Greater(t, metric("hit")+metric("partial"), hits, "the repeated query used the cache: %s", second.cache)
	require.Greater(t, mc.Stat(t, "get_hits"), getHits, "memcached served it")

	// A late sample for a time inside the freshness window: the frontend
	// never cached that part, so the next answer has it.
	late := time.Now().UnixMilli() - 1000
	late -= late % 1000
	push(late)
	third := queryFrontend(t, upURL, "frontend_test", start, late, step)
	expect(third, append(ts, late))

	// Once its time is past the window, the cached extent grows over it and
	// the point stays.
	time.Sleep(freshness + time.Second)
	partial := metric("partial")
	fourth := queryFrontend(t, upURL, "frontend_test", start, late, step)
	expect(fourth, append(ts, late))
	require.Greater(t, metric("partial"), partial, "the extent was extended: %s", fourth.cache)
	fifth := queryFrontend(t, upURL, "frontend_test", start, late, step)
	require.Contains(t, fifth.cache, "partial=0 miss=0 bypass=0", "now answered from the cache alone")
	expect(fifth, append(ts, late))

	// memcached goes away: answers stay right, uncached, with a warning.
	mc.Stop()
	for range 2 {
		a := queryFrontend(t, upURL, "frontend_test", start, late, step)
		expect(a, append(ts, late))
		require.Len(t, a.warnings, 1, "cache %s", a.cache)
		require.Contains(t, a.warnings[0], "results cache unavailable")
	}
	unavailable, _, err := metricValue(ctx, upURL+"/metrics", "strata_query_frontend_results_cache_unavailable_total")
	require.NoError(t, err)
	require.GreaterOrEqual(t, unavailable, 2.0)

	// And back: the frontend reconnects by itself and caches again.
	memcachedtest.Start(t, mc.Port())
	require.Eventually(t, func() bool {
		a := queryFrontend(t, upURL, "frontend_test", start, late, step)
		return len(a.warnings) == 0 && strings.Contains(a.cache, "partial=0 miss=0 bypass=0")
	}, 30*time.Second, 500*time.Millisecond, "caching resumes when memcached is back")
}

// formatValue formats a sample value as the query API does, for the values
// the frontend tests write (whole numbers).
func formatValue(v int64) string {
	b, _ := json.Marshal(v)
	return string(b)
}
