package queryfrontend

import (
	"bytes"
	"encoding/json"
	"io"
	"log/slog"
	"math"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/stretchr/testify/require"

	"github.com/stratametrics/strata/internal/apijson"
	"github.com/stratametrics/strata/queryshard"
	"github.com/stratametrics/strata/storegw/cache"
)

// testQuerier is an HTTP querier for the frontend's tests: it answers range
// queries with answer(), for the tenant in the X-Tenant header, and records
// the requests it gets. fail, when set, answers a request instead.
type testQuerier struct {
	mu       sync.Mutex
	requests []url.Values
	paths    []string
	headers  []http.Header
	fail     func(n int, w http.ResponseWriter) bool
	// shardWarnings are added to the answers of sharded requests.
	shardWarnings []string
}

func (q *testQuerier) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	q.mu.Lock()
	n := len(q.requests)
	q.requests = append(q.requests, r.Form)
	q.paths = append(q.paths, r.Method+" "+r.URL.Path)
	q.headers = append(q.headers, r.Header.Clone())
	fail := q.fail
	q.mu.Unlock()
	if fail != nil && fail(n, w) {
		return
	}
	if r.URL.Path != "/api/v1/query_range" {
		b, _ := json.Marshal(map[string]any{"status": "success", "data": []string{r.URL.Path, r.Form.Get("match[]")}})
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(b)
		return
	}
	start, ok1 := parseTime(r.Form.Get("start"))
	end, ok2 := parseTime(r.Form.Get("end"))
	step, ok3 := parseStep(r.Form.Get("step"))
	if !ok1 || !ok2 || !ok3 || end-start < 0 || (end-start)/step.Milliseconds() > maxPointsPerSeries {
		http.Error(w, "bad range", http.StatusBadRequest)
		return
	}
	resp := answer(Request{Start: start, End: end, Step: step, Tenant: r.Header.Get("X-Tenant")})
	if sel, ok, err := queryshard.FromForm(r.Form); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	} else if ok {
		// Each series in exactly one shard, as the querier does it.
		resp.Series = slices.DeleteFunc(resp.Series, func(s Series) bool { return !sel.Matches(s.Labels) })
		resp.Warnings = q.shardWarnings
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(appendMatrix(nil, resp))
}

func (q *testQuerier) rangeRequests() []url.Values {
	q.mu.Lock()
	defer q.mu.Unlock()
	var out []url.Values
	for i, p := range q.paths {
		if strings.HasSuffix(p, "/api/v1/query_range") {
			out = append(out, q.requests[i])
		}
	}
	return out
}

func (q *testQuerier) reset() {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.requests, q.paths, q.headers = nil, nil, nil
}

type frontendFixture struct {
	f       *Frontend
	queries []*testQuerier
	reg     *prometheus.Registry
	logs    *bytes.Buffer
}

func newFrontendFixture(t *testing.T, queriers int, mod func(*Config)) *frontendFixture {
	t.Helper()
	fx := &frontendFixture{reg: prometheus.NewRegistry(), logs: &bytes.Buffer{}}
	cfg := Config{
		MaxRetries:         2,
		SplitInterval:      day,
		AlignRangeWithStep: true,
		Cache:              cache.NewLRU("results", 64<<20, 0, nil),
		CacheFreshness:     freshness,
		TenantHeader:       "X-Tenant",
		DefaultTenant:      "default-tenant",
		Registerer:         fx.reg,
		Logger:             slog.New(slog.NewTextHandler(fx.logs, nil)),
		Now:                func() time.Time { return now },
	}
	for range queriers {
		q := &testQuerier{}
		srv := httptest.NewServer(q)
		t.Cleanup(srv.Close)
		u, err := url.Parse(srv.URL)
		require.NoError(t, err)
		cfg.Downstreams = append(cfg.Downstreams, u)
		fx.queries = append(fx.queries, q)
	}
	if mod != nil {
		mod(&cfg)
	}
	f, err := New(cfg)
	require.NoError(t, err)
	fx.f = f
	return fx
}

// get runs a request through the frontend and returns the recorder.
func (fx *frontendFixture) get(t *testing.T, path string, params url.Values, header http.Header) *httptest.ResponseRecorder {
	t.Helper()
	r := httptest.NewRequest(http.MethodGet, path+"?"+params.Encode(), nil)
	for k, v := range header {
		r.Header[k] = v
	}
	w := httptest.NewRecorder()
	fx.f.ServeHTTP(w, r)
	return w
}

func rangeParams(q string, start, end int64, step time.Duration) url.Values {
	return url.Values{
		"query": {q},
		"start": {formatMillis(start)},
		"end":   {formatMillis(end)},
		"step":  {strconv.FormatFloat(step.Seconds(), 'f', -1, 64)},
	}
}

func decodeBody(t *testing.T, w *httptest.ResponseRecorder) Response {
	t.Helper()
	require.Equal(t, http.StatusOK, w.Code, w.Body.String())
	resp, err := decodeMatrix(w.Body.Bytes())
	require.NoError(t, err)
	return resp
}

func TestFrontendSplitsCachesAndServesRepeatedQueriesFromCache(t *testing.T) {
	fx := newFrontendFixture(t, 1, nil)
	p := rangeParams("up", at(5, 6, 0), at(7, 18, 0), time.Minute)
	want := answer(Request{Start: at(5, 6, 0), End: at(7, 18, 0), Step: time.Minute})

	w := fx.get(t, "/api/v1/query_range", p, nil)
	require.Equal(t, want, decodeBody(t, w))
	require.Equal(t, "splits=3 hit=0 partial=0 miss=3 bypass=0", w.Header().Get("X-Strata-Results-Cache"))
	reqs := fx.queries[0].rangeRequests()
	require.Len(t, reqs, 1, "a cold cache: one downstream query for the three days, cached day by day")
	require.Equal(t, "up", reqs[0].Get("query"))
	require.Equal(t, formatMillis(at(5, 6, 0)), reqs[0].Get("start"))
	require.Equal(t, formatMillis(at(7, 18, 0)), reqs[0].Get("end"))

	fx.queries[0].reset()
	w = fx.get(t, "/api/v1/query_range", p, nil)
	require.Equal(t, want, decodeBody(t, w))
	require.Empty(t, fx.queries[0].rangeRequests(), "the repeated query is served from the cache")
	require.Equal(t, "splits=3 hit=3 partial=0 miss=0 bypass=0", w.Header().Get("X-Strata-Results-Cache"))
	require.Equal(t, 3.0, testutil.ToFloat64(fx.f.m.cache.WithLabelValues("hit")))
	require.Equal(t, 3.0, testutil.ToFloat64(fx.f.m.cache.WithLabelValues("miss")))
	require.Equal(t, 6.0, testutil.ToFloat64(fx.f.m.splits))
	require.Equal(t, 2.0, testutil.ToFloat64(fx.f.m.queries.WithLabelValues("200")))

	// A day more on each side: each is a query of its own, the cached day
	// in between is not asked for again, and the first and last cached days
	// fetch only what they lack.
	fx.queries[0].reset()
	wider := rangeParams("up", at(4, 6, 0), at(8, 1, 0), time.Minute)
	w = fx.get(t, "/api/v1/query_range", wider, nil)
	require.Equal(t, answer(Request{Start: at(4, 6, 0), End: at(8, 1, 0), Step: time.Minute}), decodeBody(t, w))
	require.Equal(t, "splits=5 hit=1 partial=2 miss=2 bypass=0", w.Header().Get("X-Strata-Results-Cache"))
	var ranges []string
	for _, r := range fx.queries[0].rangeRequests() {
		ranges = append(ranges, r.Get("start")+".."+r.Get("end"))
	}
	slices.Sort(ranges)
	require.Equal(t, []string{
		formatMillis(at(4, 6, 0)) + ".." + formatMillis(at(4, 23, 59)),
		formatMillis(at(5, 0, 0)) + ".." + formatMillis(at(5, 5, 59)),
		formatMillis(at(7, 18, 1)) + ".." + formatMillis(at(7, 23, 59)),
		formatMillis(at(8, 0, 0)) + ".." + formatMillis(at(8, 1, 0)),
	}, ranges)
}

func TestFrontendAlignsWithStepAndKeepsTheRequestedRange(t *testing.T) {
	fx := newFrontendFixture(t, 1, nil)
	// 06:00:30 to 07:59:45 at 1m: the aligned points are 06:01 ... 07:59.
	start, end := at(5, 6, 0)+30_000, at(5, 7, 59)+45_000
	got := decodeBody(t, fx.get(t, "/api/v1/query_range", rangeParams("up", start, end, time.Minute), nil))
	want := answer(Request{Start: at(5, 6, 1), End: at(5, 7, 59), Step: time.Minute})
	require.Equal(t, want, got)
	reqs := fx.queries[0].rangeRequests()
	require.Len(t, reqs, 1)
	require.Equal(t, formatMillis(at(5, 6, 0)), reqs[0].Get("start"), "start snapped down to the step")
	require.Equal(t, formatMillis(at(5, 8, 0)), reqs[0].Get("end"), "end snapped up to the step")
}

func TestFrontendKeepsUnalignedEvaluationTimes(t *testing.T) {
	fx := newFrontendFixture(t, 1, func(c *Config) { c.AlignRangeWithStep = false })
	// 23:00:30 to 01:00:10 the next day at 1m: points at 30s past each
	// minute, the last at 00:59:30, split at midnight.
	start, end := at(5, 23, 0)+30_000, at(6, 1, 0)+10_000
	want := answer(Request{Start: start, End: at(6, 0, 59) + 30_000, Step: time.Minute})
	for range 2 {
		require.Equal(t, want, decodeBody(t, fx.get(t, "/api/v1/query_range", rangeParams("up", start, end, time.Minute), nil)))
	}
	reqs := fx.queries[0].rangeRequests()
	require.Len(t, reqs, 1, "one query for both days, once; the second is served from the cache")
	require.Equal(t, formatMillis(start), reqs[0].Get("start"))
	require.Equal(t, formatMillis(at(6, 0, 59)+30_000), reqs[0].Get("end"))
}

func TestFrontendDoesNotSplitStartOrEnd(t *testing.T) {
	fx := newFrontendFixture(t, 1, nil)
	for _, q := range []string{"up @ end()", "max_over_time(up[1h:1m] @ start())"} {
		fx.queries[0].reset()
		w := fx.get(t, "/api/v1/query_range", rangeParams(q, at(5, 6, 0), at(7, 6, 0), time.Hour), nil)
		decodeBody(t, w)
		reqs := fx.queries[0].rangeRequests()
		require.Len(t, reqs, 1, "%s refers to the whole range: one request", q)
		require.Equal(t, formatMillis(at(5, 6, 0)), reqs[0].Get("start"))
		require.Equal(t, formatMillis(at(7, 6, 0)), reqs[0].Get("end"))
		require.Equal(t, "splits=1 hit=0 partial=0 miss=0 bypass=1", w.Header().Get("X-Strata-Results-Cache"))
	}
}

func TestFrontendShardsAggregations(t *testing.T) {
	fx := newFrontendFixture(t, 2, func(c *Config) { c.Shards = 3; c.Cache = nil })
	p := rangeParams("max by (job) (up)", at(5, 6, 0), at(5, 7, 0), time.Minute)
	want := answer(Request{Start: at(5, 6, 0), End: at(5, 7, 0), Step: time.Minute})
	w := fx.get(t, "/api/v1/query_range", p, nil)
	require.Equal(t, want, decodeBody(t, w))
	require.Equal(t, "3", w.Header().Get("X-Strata-Query-Shards"))
	var shards []string
	for _, q := range fx.queries {
		for _, r := range q.rangeRequests() {
			shards = append(shards, r.Get("shard"))
			require.Equal(t, "", r.Get("shard_by"))
			require.True(t, r.Has("shard_without"), "combine mode hashes every label")
		}
	}
	slices.Sort(shards)
	require.Equal(t, []string{"0_of_3", "1_of_3", "2_of_3"}, shards)
	require.Equal(t, 1.0, testutil.ToFloat64(fx.f.m.sharded))

	// Not shardable, a limit, or a client's own shard: one request.
	for _, p := range []url.Values{
		rangeParams("up", at(5, 6, 0), at(5, 7, 0), time.Minute),
		func() url.Values {
			v := rangeParams("max(up)", at(5, 6, 0), at(5, 7, 0), time.Minute)
			v.Set("limit", "1")
			return v
		}(),
		func() url.Values {
			v := rangeParams("max(up)", at(5, 6, 0), at(5, 7, 0), time.Minute)
			queryshard.Selector{Index: 0, Total: 2}.AddTo(v)
			return v
		}(),
	} {
		for _, q := range fx.queries {
			q.reset()
		}
		w := fx.get(t, "/api/v1/query_range", p, nil)
		require.Equal(t, http.StatusOK, w.Code)
		require.Empty(t, w.Header().Get("X-Strata-Query-Shards"))
		require.Len(t, append(fx.queries[0].rangeRequests(), fx.queries[1].rangeRequests()...), 1, "%v", p)
	}

	// A sum whose shards warn runs again unsharded: a shard cannot know
	// that PromQL drops a group mixing floats and histograms.
	for _, q := range fx.queries {
		q.reset()
		q.shardWarnings = []string{"PromQL warning: encountered a mix of histograms and floats for aggregation"}
	}
	w = fx.get(t, "/api/v1/query_range", rangeParams("sum by (job) (up)", at(5, 6, 0), at(5, 7, 0), time.Minute), nil)
	require.Equal(t, want, decodeBody(t, w))
	require.Equal(t, 1.0, testutil.ToFloat64(fx.f.m.shardFall))
	require.Len(t, append(fx.queries[0].rangeRequests(), fx.queries[1].rangeRequests()...), 4, "three shards, then the whole query")
}

func TestFrontendRetriesOnAnotherQuerier(t *testing.T) {
	fx := newFrontendFixture(t, 2, func(c *Config) { c.Cache = nil })
	fx.queries[0].fail = func(n int, w http.ResponseWriter) bool {
		http.Error(w, "restarting", http.StatusServiceUnavailable)
		return true
	}
	p := rangeParams("up", at(5, 6, 0), at(5, 7, 0), time.Minute)
	require.Equal(t, answer(Request{Start: at(5, 6, 0), End: at(5, 7, 0), Step: time.Minute}), decodeBody(t, fx.get(t, "/api/v1/query_range", p, nil)))
	require.Equal(t, 1.0, testutil.ToFloat64(fx.f.m.retries))
	require.Equal(t, 1.0, testutil.ToFloat64(fx.f.m.downstream.WithLabelValues("503")))
	require.Equal(t, 1.0, testutil.ToFloat64(fx.f.m.downstream.WithLabelValues("200")))

	// Every querier failing, every time: 503 in the API's error format,
	// after 1 + MaxRetries attempts.
	for _, q := range fx.queries {
		q.fail = func(int, http.ResponseWriter) bool { panic(http.ErrAbortHandler) }
	}
	w := fx.get(t, "/api/v1/query_range", p, nil)
	require.Equal(t, http.StatusServiceUnavailable, w.Code)
	var env apiEnvelope
	require.NoError(t, json.Unmarshal(w.Body.Bytes(), &env))
	require.Equal(t, "error", env.Status)
	require.Equal(t, "unavailable", env.ErrorType)
	require.Contains(t, env.Error, "no querier could answer")
	require.Equal(t, 3.0, testutil.ToFloat64(fx.f.m.downstream.WithLabelValues("error")))
}

func TestFrontendPassesQuerierErrorsOnAndCachesNothing(t *testing.T) {
	fx := newFrontendFixture(t, 1, nil)
	body := `{"status":"error","errorType":"execution","error":"query processing would load too many samples into memory"}`
	fx.queries[0].fail = func(_ int, w http.ResponseWriter) bool {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusUnprocessableEntity)
		_, _ = io.WriteString(w, body)
		return true
	}
	p := rangeParams("up", at(5, 6, 0), at(6, 7, 0), time.Minute)
	w := fx.get(t, "/api/v1/query_range", p, nil)
	require.Equal(t, http.StatusUnprocessableEntity, w.Code)
	require.JSONEq(t, body, w.Body.String())
	require.Equal(t, 1.0, testutil.ToFloat64(fx.f.m.queries.WithLabelValues("422")))

	fx.queries[0].fail = nil
	fx.queries[0].reset()
	decodeBody(t, fx.get(t, "/api/v1/query_range", p, nil))
	require.Len(t, fx.queries[0].rangeRequests(), 1, "nothing was cached from the failed query")
	fx.queries[0].reset()
	decodeBody(t, fx.get(t, "/api/v1/query_range", p, nil))
	require.Empty(t, fx.queries[0].rangeRequests(), "the successful one was")
}

func TestFrontendPassesOtherRequestsThrough(t *testing.T) {
	fx := newFrontendFixture(t, 1, nil)
	w := fx.get(t, "/api/v1/series", url.Values{"match[]": {`up{job="a"}`}}, http.Header{"X-Tenant": {"team-a"}, "Authorization": {"Bearer t0ken"}})
	require.Equal(t, http.StatusOK, w.Code)
	require.JSONEq(t, `{"status":"success","data":["/api/v1/series","up{job=\"a\"}"]}`, w.Body.String())
	q := fx.queries[0]
	require.Equal(t, []string{"GET /api/v1/series"}, q.paths)
	require.Equal(t, "team-a", q.headers[0].Get("X-Tenant"))
	require.Equal(t, "Bearer t0ken", q.headers[0].Get("Authorization"))

	// A POST body is forwarded too.
	r := httptest.NewRequest(http.MethodPost, "/api/v1/labels", strings.NewReader(url.Values{"match[]": {"up"}}.Encode()))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	w = httptest.NewRecorder()
	fx.f.ServeHTTP(w, r)
	require.JSONEq(t, `{"status":"success","data":["/api/v1/labels","up"]}`, w.Body.String())

	// Range queries the frontend does not split go through as they are:
	// the querier gives its own error for parameters it cannot read.
	q.reset()
	fx.get(t, "/api/v1/query_range", url.Values{"query": {"up"}, "start": {"yesterday"}, "end": {"1"}, "step": {"1"}}, nil)
	fx.get(t, "/api/v1/query_range", url.Values{"query": {"up{"}, "start": {"1"}, "end": {"2"}, "step": {"1"}}, nil)
	fx.get(t, "/api/v1/query_range", url.Values{"query": {"up"}, "start": {"0"}, "end": {"86400"}, "step": {"1"}}, nil)
	minT, maxT := apijson.MinTime().Format(time.RFC3339Nano), apijson.MaxTime().Format(time.RFC3339Nano)
	fx.get(t, "/api/v1/query_range", url.Values{"query": {"up"}, "start": {minT}, "end": {maxT}, "step": {"1"}}, nil)
	require.Len(t, q.rangeRequests(), 4)
	require.Equal(t, "yesterday", q.rangeRequests()[0].Get("start"))
	require.Equal(t, 6.0, testutil.ToFloat64(fx.f.m.proxied), "the series and labels requests and four range queries")
}

func TestFrontendTenantsAndCredentialsDoNotShareCachedResults(t *testing.T) {
	fx := newFrontendFixture(t, 1, nil)
	p := rangeParams("up", at(5, 6, 0), at(5, 7, 0), time.Minute)
	for _, tc := range []struct {
		header http.Header
		tenant string
	}{
		{nil, ""},
		{http.Header{"X-Tenant": {"team-a"}}, "team-a"},
		{http.Header{"X-Tenant": {"team-bb"}}, "team-bb"},
		{http.Header{"X-Tenant": {"team-a"}, "Authorization": {"Bearer other"}}, "team-a"},
	} {
		fx.queries[0].reset()
		want := answer(Request{Start: at(5, 6, 0), End: at(5, 7, 0), Step: time.Minute, Tenant: tc.tenant})
		require.Equal(t, want, decodeBody(t, fx.get(t, "/api/v1/query_range", p, tc.header)))
		require.Len(t, fx.queries[0].rangeRequests(), 1, "each tenant and credential has a key of its own")
	}
	// Parameters that change the result are part of the key too.
	fx.queries[0].reset()
	p.Set("dedup", "false")
	decodeBody(t, fx.get(t, "/api/v1/query_range", p, nil))
	require.Len(t, fx.queries[0].rangeRequests(), 1)
	require.Equal(t, "false", fx.queries[0].rangeRequests()[0].Get("dedup"))
}

func TestFrontendSlowQueryLog(t *testing.T) {
	fx := newFrontendFixture(t, 1, func(c *Config) { c.SlowQueryThreshold = time.Nanosecond })
	decodeBody(t, fx.get(t, "/api/v1/query_range", rangeParams(`sum(rate(up[5m]))`, at(5, 6, 0), at(5, 7, 0), time.Minute), http.Header{"X-Tenant": {"team-a"}}))
	fx.get(t, "/api/v1/query", url.Values{"query": {"vector(1)"}}, nil)
	logs := fx.logs.String()
	require.Contains(t, logs, `msg="slow query" kind=range query=sum(rate(up[5m])) tenant=team-a`)
	require.Contains(t, logs, "stats=\"splits=1 hit=0 partial=0 miss=1 bypass=0\"")
	require.Contains(t, logs, `msg="slow query" kind=proxied query=vector(1) tenant=default-tenant`)
	require.Equal(t, 2.0, testutil.ToFloat64(fx.f.m.slow))

	quiet := newFrontendFixture(t, 1, func(c *Config) { c.SlowQueryThreshold = time.Hour })
	decodeBody(t, quiet.get(t, "/api/v1/query_range", rangeParams("up", at(5, 6, 0), at(5, 7, 0), time.Minute), nil))
	require.NotContains(t, quiet.logs.String(), "slow query")
}

func TestMatrixJSONRoundTrip(t *testing.T) {
	h := []byte(`{"count":"3","sum":"1.5","buckets":[[0,"0.5","1","3"]]}`)
	in := Response{
		Series: []Series{
			{Labels: labels.FromStrings("__name__", "a", "job", `q"x`), Points: []Point{
				{T: -1500, V: math.Inf(-1)}, {T: 0, V: math.NaN()}, {T: 1, V: 1e-3}, {T: 1_700_000_000_123, V: math.Inf(1)}, {T: 1_700_000_001_000, H: h},
			}},
			{Labels: labels.EmptyLabels(), Points: []Point{{T: 10, V: -0.25}}},
		},
		Warnings: []string{"partial <response>"},
		Infos:    []string{"info"},
	}
	b := appendMatrix(nil, in)
	require.True(t, json.Valid(b), string(b))
	out, err := decodeMatrix(b)
	require.NoError(t, err)
	require.Len(t, out.Series, 2)
	require.Equal(t, in.Warnings, out.Warnings)
	require.Equal(t, in.Infos, out.Infos)
	got := Merge(out)
	want := Merge(in)
	require.Equal(t, len(want.Series), len(got.Series))
	for i := range want.Series {
		require.Equal(t, want.Series[i].Labels, got.Series[i].Labels)
		require.Len(t, got.Series[i].Points, len(want.Series[i].Points))
		for j, p := range want.Series[i].Points {
			g := got.Series[i].Points[j]
			require.Equal(t, p.T, g.T)
			require.Equal(t, string(p.H), string(g.H))
			if len(p.H) == 0 {
				require.True(t, p.V == g.V || (math.IsNaN(p.V) && math.IsNaN(g.V)), "%v != %v", p.V, g.V)
			}
		}
	}
	require.Contains(t, string(b), `[1700000000.123,"+Inf"]`)
	require.Contains(t, string(b), `[-1.500,"-Inf"]`)
	require.Contains(t, string(b), `[0.001,"0.001"]`)
}

func TestDecodeMatrixRejects(t *testing.T) {
	for name, body := range map[string]string{
		"not json":      `{`,
		"error status":  `{"status":"error","error":"boom"}`,
		"vector":        `{"status":"success","data":{"resultType":"vector","result":[]}}`,
		"bad point":     `{"status":"success","data":{"resultType":"matrix","result":[{"metric":{},"values":[[1]]}]}}`,
		"bad value":     `{"status":"success","data":{"resultType":"matrix","result":[{"metric":{},"values":[[1,"x"]]}]}}`,
		"inf time":      `{"status":"success","data":{"resultType":"matrix","result":[{"metric":{},"values":[[1e400,"1"]]}]}}`,
		"bad histogram": `{"status":"success","data":{"resultType":"matrix","result":[{"metric":{},"histograms":[[1,"x"]]}]}}`,
	} {
		t.Run(name, func(t *testing.T) {
			_, err := decodeMatrix([]byte(body))
			require.Error(t, err)
		})
	}
}

// FuzzDecodeMatrix checks that any answer the decoder accepts encodes to
// JSON that decodes to the same response.
func FuzzDecodeMatrix(f *testing.F) {
	f.Add([]byte(`{"status":"success","data":{"resultType":"matrix","result":[{"metric":{"a":"b"},"values":[[1.5,"2"],[2,"NaN"]],"histograms":[[3,{"count":"1"}]]}]},"warnings":["w"]}`))
	f.Add([]byte(`{"status":"success","data":{"resultType":"matrix","result":[]}}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := decodeMatrix(b)
		if err != nil {
			return
		}
		again, err := decodeMatrix(appendMatrix(nil, r))
		require.NoError(t, err)
		require.Equal(t, len(r.Series), len(again.Series))
		require.True(t, slices.Equal(r.Warnings, again.Warnings), "%q != %q", r.Warnings, again.Warnings)
		for i := range r.Series {
			require.Equal(t, r.Series[i].Labels, again.Series[i].Labels)
			require.Equal(t, len(r.Series[i].Points), len(again.Series[i].Points))
		}
	})
}

func TestFrontendRejectsAnUnreadableForm(t *testing.T) {
	fx := newFrontendFixture(t, 1, nil)
	r := httptest.NewRequest(http.MethodPost, "/api/v1/query_range", strings.NewReader("query=%zz"))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	w := httptest.NewRecorder()
	fx.f.ServeHTTP(w, r)
	require.Equal(t, http.StatusBadRequest, w.Code)
	require.Contains(t, w.Body.String(), `"errorType":"bad_data"`)
	require.Empty(t, fx.queries[0].paths, "nothing reached the querier")
}
