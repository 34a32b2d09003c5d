package querier_test

import (
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"testing"

	"github.com/prometheus/prometheus/model/histogram"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/value"
	"github.com/prometheus/prometheus/promql/parser"
	"github.com/stretchr/testify/require"

	"github.com/stratametrics/strata/querier"
	"github.com/stratametrics/strata/queryfrontend"
	"github.com/stratametrics/strata/queryshard"
	"github.com/stratametrics/strata/storeapi/storeapitest"
)

// Times of the parity data and queries, in milliseconds.
const (
	parityT0       = int64(1700000000000)
	parityScrape   = int64(2000)
	paritySamples  = 300 // 10 minutes
	parityStart    = parityT0 + 60_000
	parityEnd      = parityT0 + 560_000
	parityStep     = "10s"
	parityStaleAt  = parityT0 + 300_000 // up{job="node"} goes stale here
	parityGapFrom  = parityT0 + 200_000 // replica 1 misses its samples from here...
	parityGapUntil = parityT0 + 260_000 // ...to here
)

// parityExprs is the sharding parity set.
var parityExprs = []string{
	`up{job="prometheus"}`,
	`{__name__=~"prometheus_tsdb_head_.+", job="prometheus"}`,
	`count({__name__=~".+"})`,
	`rate(prometheus_http_requests_total[10s])`,
	`sum by (handler) (rate(prometheus_http_requests_total[10s]))`,
	`sum without (code) (increase(prometheus_http_requests_total[10s]))`,
	`max by (handler) (prometheus_http_request_duration_seconds_count)`,
	`count by (handler) (prometheus_http_request_duration_seconds_bucket)`,
	`avg without (le) (prometheus_http_response_size_bytes_bucket)`,
	`quantile(0.5, rate(prometheus_http_requests_total[10s]))`,
	`stdvar(rate(prometheus_http_requests_total[10s]))`,
	`histogram_quantile(0.9, sum by (le) (rate(prometheus_http_request_duration_seconds_bucket[10s])))`,
	`max_over_time(go_memstats_alloc_bytes[10s:1s])`,
	`label_replace(up, "host", "$1", "instance", "(.+):[0-9]+")`,
	`topk(2, prometheus_http_request_duration_seconds_sum)`,
	`absent(up{job="prometheus"})`,
	`prometheus_http_requests_total / on (handler) group_left prometheus_http_request_duration_seconds_count`,
	`(prometheus_http_requests_total and on (handler) prometheus_http_request_duration_seconds_count > 3) unless on (code) prometheus_http_requests_total{code!="200"} or vector(0)`,
	`count_values("value", prometheus_http_requests_total)`,
	`count_values by (handler) ("count", prometheus_http_response_size_bytes_bucket)`,
	`sort_desc(sum by (handler) (rate(prometheus_http_response_size_bytes_sum[10s])))`,
	`vector(scalar(sum(up)))`,
	`max by (quantile) (prometheus_target_interval_length_seconds)`,
	`rate(parity_native_seconds[20s])`,
	`histogram_count(rate(parity_native_seconds[1m]))`,
}

// parityExtraExprs are shardable expressions beyond the parity set that
// reach the other combiners, union operators, NaN, stale markers and native
// histograms.
var parityExtraExprs = []string{
	`sum(up)`,
	`max without (instance) (go_memstats_alloc_bytes)`,
	`min by (job) (go_memstats_alloc_bytes)`,
	`group by (code) (prometheus_http_requests_total)`,
	`count by (handler) (parity_native_seconds)`,
	`sum by (handler) (rate(parity_native_seconds[20s]))`,
	`avg by (handler) (rate(parity_native_seconds[20s]))`,
	`topk by (handler) (1, prometheus_http_requests_total)`,
	`bottomk without (le) (1, prometheus_http_request_duration_seconds_bucket)`,
	`stddev by (handler) (rate(prometheus_http_requests_total[10s]))`,
	`quantile by (code) (0.9, rate(prometheus_http_requests_total[10s]))`,
	`avg without (code, instance) (rate(prometheus_http_requests_total[10s]) * 60)`,
}

// parityFallbacks are the shardable expressions whose shards CombineShards
// must refuse: sums of native histograms.
var parityFallbacks = map[string]bool{
	`sum by (handler) (rate(parity_native_seconds[20s]))`: true,
}

// parityData returns series shaped like Prometheus' self-scrape: counters
// with resets, classic histograms, summaries' quantiles, gauges with NaN, a
// series that goes stale, and native histogram counters.
func parityData() []storeapitest.Series {
	rng := rand.New(rand.NewPCG(1, 2))
	var out []storeapitest.Series
	add := func(ls labels.Labels, f func(i int) float64) {
		s := storeapitest.Series{Labels: ls}
		for i := range paritySamples {
			s.Samples = append(s.Samples, storeapitest.Sample{T: parityT0 + int64(i)*parityScrape, F: f(i)})
		}
		out = append(out, s)
	}
	counter := func(rate float64, resetAt int) func(int) float64 {
		v := 0.0
		return func(i int) float64 {
			if i == resetAt {
				v = 0
			}
			v += rate * (0.5 + rng.Float64())
			return math.Round(v)
		}
	}
	const job, inst = "prometheus", "localhost:9090"
	handlers := []string{"/api/v1/query", "/api/v1/query_range", "/metrics", "/-/ready"}
	for hi, h := range handlers {
		for ci, code := range []string{"200", "400", "503"} {
			add(labels.FromStrings("__name__", "prometheus_http_requests_total", "code", code, "handler", h, "instance", inst, "job", job),
				counter(float64(10*(hi+1))/float64(ci*ci+1), 100+hi*37+ci))
		}
		for _, name := range []string{"prometheus_http_request_duration_seconds", "prometheus_http_response_size_bytes"} {
			cum := make([]float64, 7)
			for li, le := range []string{"0.1", "0.2", "0.4", "1", "3", "8", "+Inf"} {
				li := li
				add(labels.FromStrings("__name__", name+"_bucket", "handler", h, "instance", inst, "job", job, "le", le), func(int) float64 {
					cum[li] += math.Floor(rng.Float64() * float64(li+1) * 2)
					if li > 0 && cum[li] < cum[li-1] {
						cum[li] = cum[li-1]
					}
					return cum[li]
				})
			}
			add(labels.FromStrings("__name__", name+"_sum", "handler", h, "instance", inst, "job", job), counter(3.25, -1))
			add(labels.FromStrings("__name__", name+"_count", "handler", h, "instance", inst, "job", job), counter(float64(hi+1), -1))
		}
	}
	add(labels.FromStrings("__name__", "up", "instance", inst, "job", job), func(int) float64 { return 1 })
	up := storeapitest.Series{Labels: labels.FromStrings("__name__", "up", "instance", "node:9100", "job", "node")}
	for i := range paritySamples {
		t := parityT0 + int64(i)*parityScrape
		if t > parityStaleAt {
			break
		}
		f := 1.0
		if t == parityStaleAt {
			f = math.Float64frombits(value.StaleNaN)
		}
		up.Samples = append(up.Samples, storeapitest.Sample{T: t, F: f})
	}
	out = append(out, up)
	for _, name := range []string{"prometheus_tsdb_head_series", "prometheus_tsdb_head_chunks"} {
		add(labels.FromStrings("__name__", name, "instance", inst, "job", job), func(i int) float64 { return float64(1000 + i%50) })
	}
	for ii, in := range []string{inst, "localhost:9091"} {
		add(labels.FromStrings("__name__", "go_memstats_alloc_bytes", "instance", in, "job", job), func(i int) float64 {
			if (i+ii*7)%23 < 4 {
				return math.NaN()
			}
			return 1e6 + rng.Float64()*1e5
		})
	}
	for _, q := range []string{"0.01", "0.05", "0.5", "0.9", "0.99"} {
		add(labels.FromStrings("__name__", "prometheus_target_interval_length_seconds", "instance", inst, "interval", "15s", "job", job, "quantile", q),
			func(int) float64 { return 15 + rng.NormFloat64()*0.01 })
	}
	for _, h := range handlers[:3] {
		for _, in := range []string{inst, "localhost:9091"} {
			s := storeapitest.Series{Labels: labels.FromStrings("__name__", "parity_native_seconds", "handler", h, "instance", in, "job", job)}
			var counts [3]int64
			for i := range paritySamples {
				for b := range counts {
					counts[b] += int64(rng.IntN(3))
				}
				n := counts[0] + counts[1] + counts[2]
				s.Samples = append(s.Samples, storeapitest.Sample{T: parityT0 + int64(i)*parityScrape, H: &histogram.Histogram{
					Schema:          0,
					Count:           uint64(n),
					Sum:             float64(n) * 0.75,
					PositiveSpans:   []histogram.Span{{Offset: -1, Length: 3}},
					PositiveBuckets: []int64{counts[0], counts[1] - counts[0], counts[2] - counts[1]},
				}})
			}
			out = append(out, s)
		}
	}
	return out
}

// withGap returns data without the samples in [parityGapFrom, parityGapUntil).
func withGap(data []storeapitest.Series) []storeapitest.Series {
	out := make([]storeapitest.Series, 0, len(data))
	for _, s := range data {
		g := storeapitest.Series{Labels: s.Labels}
		for _, smp := range s.Samples {
			if smp.T < parityGapFrom || smp.T >= parityGapUntil {
				g.Samples = append(g.Samples, smp)
			}
		}
		out = append(out, g)
	}
	return out
}

// parityAPI serves the query API over two replicas of the parity data, in two
// TSDBs behind two Store API servers with receive_replica="0" and "1"; replica
// 1 has a gap. Dedup is on, as by default.
func parityAPI(t *testing.T) http.Handler {
	t.Helper()
	data := parityData()
	r0 := startTSDBStore(t, data, labels.FromStrings("receive_replica", "0"))
	r1 := startTSDBStore(t, withGap(data), labels.FromStrings("receive_replica", "1"))
	q := querier.NewQueryable(newEndpointSet(t, r0.addr, r1.addr), querier.Options{}, nil, nil)
	opts := querier.DefaultAPIOptions()
	opts.Context = querier.WithRequestParams
	mux := http.NewServeMux()
	querier.NewAPI(q, opts, nil, nil).Register(mux)
	return mux
}

// parityAnswer is a query_range answer.
type parityAnswer struct {
	resp     queryfrontend.Response
	warnings []string
}

// parityRange runs expr as a range query over the parity range, with the
// shard parameters of sel unless it is nil.
func parityRange(t *testing.T, h http.Handler, expr string, sel *queryshard.Selector) parityAnswer {
	t.Helper()
	params := url.Values{
		"query": {expr},
		"start": {strconv.FormatFloat(float64(parityStart)/1000, 'f', -1, 64)},
		"end":   {strconv.FormatFloat(float64(parityEnd)/1000, 'f', -1, 64)},
		"step":  {parityStep},
	}
	if sel != nil {
		sel.AddTo(params)
	}
	req := httptest.NewRequest(http.MethodPost, "/api/v1/query_range", strings.NewReader(params.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	require.Equal(t, http.StatusOK, rec.Code, "%s: %s", expr, rec.Body.String())
	return decodeMatrix(t, rec.Body.Bytes())
}

// decodeMatrix reads a query_range answer into a queryfrontend.Response.
func decodeMatrix(t *testing.T, body []byte) parityAnswer {
	t.Helper()
	var env struct {
		Data struct {
			ResultType string `json:"resultType"`
			Result     []struct {
				Metric     map[string]string    `json:"metric"`
				Values     [][2]json.RawMessage `json:"values"`
				Histograms [][2]json.RawMessage `json:"histograms"`
			} `json:"result"`
		} `json:"data"`
		Warnings []string `json:"warnings"`
	}
	require.NoError(t, json.Unmarshal(body, &env), string(body))
	require.Equal(t, "matrix", env.Data.ResultType)
	millis := func(raw json.RawMessage) int64 {
		var f float64
		require.NoError(t, json.Unmarshal(raw, &f))
		return int64(math.Round(f * 1000))
	}
	var out parityAnswer
	out.warnings = env.Warnings
	for _, r := range env.Data.Result {
		s := queryfrontend.Series{Labels: labels.FromMap(r.Metric)}
		for _, v := range r.Values {
			var str string
			require.NoError(t, json.Unmarshal(v[1], &str))
			f, err := strconv.ParseFloat(str, 64)
			require.NoError(t, err)
			s.Points = append(s.Points, queryfrontend.Point{T: millis(v[0]), V: f})
		}
		for _, h := range r.Histograms {
			s.Points = append(s.Points, queryfrontend.Point{T: millis(h[0]), H: h[1]})
		}
		out.resp.Series = append(out.resp.Series, s)
	}
	// The canonical form sorts the points of series with both kinds.
	out.resp = queryfrontend.Merge(out.resp)
	return out
}

// diffResponses returns an error describing the first difference between
// want and got: series, times, histograms, and floats beyond a relative
// 1e-9 (summation order differs between sharded and unsharded sums). NaN
// equals NaN.
func diffResponses(want, got queryfrontend.Response) error {
	if len(want.Series) != len(got.Series) {
		return fmt.Errorf("%d series, want %d", len(got.Series), len(want.Series))
	}
	for i, ws := range want.Series {
		gs := got.Series[i]
		if !labels.Equal(ws.Labels, gs.Labels) {
			return fmt.Errorf("series %d is %s, want %s", i, gs.Labels, ws.Labels)
		}
		if len(ws.Points) != len(gs.Points) {
			return fmt.Errorf("%s: %d points, want %d", ws.Labels, len(gs.Points), len(ws.Points))
		}
		for k, wp := range ws.Points {
			gp := gs.Points[k]
			switch {
			case wp.T != gp.T:
				return fmt.Errorf("%s: point %d at %d, want %d", ws.Labels, k, gp.T, wp.T)
			case string(wp.H) != string(gp.H):
				return fmt.Errorf("%s at %d: histogram %s, want %s", ws.Labels, wp.T, gp.H, wp.H)
			case len(wp.H) > 0:
			case math.IsNaN(wp.V) || math.IsNaN(gp.V):
				if !math.IsNaN(wp.V) || !math.IsNaN(gp.V) {
					return fmt.Errorf("%s at %d: %v, want %v", ws.Labels, wp.T, gp.V, wp.V)
				}
			case wp.V != gp.V && math.Abs(wp.V-gp.V) > 1e-9*math.Max(math.Abs(wp.V), math.Abs(gp.V)):
				return fmt.Errorf("%s at %d: %v, want %v", ws.Labels, wp.T, gp.V, wp.V)
			}
		}
	}
	return nil
}

// paritySharded runs expr as total shards with the selectors sel returns and
// returns their answers.
func paritySharded(t *testing.T, h http.Handler, expr string, total int, sel func(i int) queryshard.Selector) []parityAnswer {
	t.Helper()
	out := make([]parityAnswer, total)
	for i := range total {
		s := sel(i)
		out[i] = parityRange(t, h, expr, &s)
	}
	return out
}

func responses(answers []parityAnswer) []queryfrontend.Response {
	out := make([]queryfrontend.Response, len(answers))
	for i, a := range answers {
		out[i] = a.resp
	}
	return out
}

func parityPlan(t *testing.T, expr string) (queryshard.Plan, bool) {
	t.Helper()
	e, err := parser.NewParser(parser.Options{}).ParseExpr(expr)
	require.NoError(t, err)
	return queryshard.PlanExpr(e)
}

// TestShardParity is the proof that sharding is correct: for every
// expression of the parity set (and some more) that queryshard.PlanExpr
// accepts, the range query sent as 2, 3 and 5 shards through the querier's
// API, each shard its own request, and put together with
// queryfrontend.CombineShards, equals the unsharded range query.
func TestShardParity(t *testing.T) {
	h := parityAPI(t)
	accepted := map[string]bool{}
	for _, expr := range append(append([]string(nil), parityExprs...), parityExtraExprs...) {
		plan, ok := parityPlan(t, expr)
		if !ok {
			continue
		}
		accepted[expr] = true
		t.Run(expr, func(t *testing.T) {
			want := parityRange(t, h, expr, nil)
			require.NotEmpty(t, want.resp.Series, "the data must give the expression something to compute")
			spread := 0 // the most shards of one run that answered with series
			for _, total := range []int{2, 3, 5} {
				shards := paritySharded(t, h, expr, total, func(i int) queryshard.Selector { return plan.Selector(i, total) })
				nonEmpty := 0
				for _, s := range shards {
					if len(s.resp.Series) > 0 {
						nonEmpty++
					}
					if plan.FallbackOnWarnings {
						require.Empty(t, s.warnings, "a warning would send the query unsharded")
					}
				}
				spread = max(spread, nonEmpty)
				got, ok := queryfrontend.CombineShards(plan, responses(shards))
				if parityFallbacks[expr] {
					require.False(t, ok, "%d shards: sums of native histograms are not combined", total)
					continue
				}
				require.True(t, ok, "%d shards: CombineShards refused", total)
				require.NoError(t, diffResponses(want.resp, got), "%d shards", total)
			}
			// Union plans over a few groups may land in one shard for some counts, not for all.
			require.GreaterOrEqual(t, spread, 2, "the data must spread over shards")
		})
	}

	for _, expr := range []string{
		`sum by (handler) (rate(prometheus_http_requests_total[10s]))`,
		`sum without (code) (increase(prometheus_http_requests_total[10s]))`,
		`max by (handler) (prometheus_http_request_duration_seconds_count)`,
		`count by (handler) (prometheus_http_request_duration_seconds_bucket)`,
		`avg without (le) (prometheus_http_response_size_bytes_bucket)`,
		`count({__name__=~".+"})`,
		`count_values("value", prometheus_http_requests_total)`,
		`count_values by (handler) ("count", prometheus_http_response_size_bytes_bucket)`,
		`max by (quantile) (prometheus_target_interval_length_seconds)`,
	} {
		require.True(t, accepted[expr], "PlanExpr must shard %s", expr)
	}
}

// TestShardParityCanFail shows that TestShardParity's comparison catches
// broken sharding: a lost shard, a wrong combiner, and a filter that splits
// the groups of a union plan each give a different result.
func TestShardParityCanFail(t *testing.T) {
	h := parityAPI(t)
	for _, expr := range []string{
		`sum by (handler) (rate(prometheus_http_requests_total[10s]))`,
		`count({__name__=~".+"})`,
		`max by (quantile) (prometheus_target_interval_length_seconds)`,
		`avg without (le) (prometheus_http_response_size_bytes_bucket)`,
	} {
		t.Run(expr, func(t *testing.T) {
			plan, ok := parityPlan(t, expr)
			require.True(t, ok)
			want := parityRange(t, h, expr, nil)
			shards := paritySharded(t, h, expr, 3, func(i int) queryshard.Selector { return plan.Selector(i, 3) })
			got, ok := queryfrontend.CombineShards(plan, responses(shards))
			require.True(t, ok)
			require.NoError(t, diffResponses(want.resp, got), "the correct sharding agrees")

			for i := range shards {
				if len(shards[i].resp.Series) == 0 {
					continue
				}
				lost := responses(shards)
				lost[i] = queryfrontend.Response{}
				got, ok := queryfrontend.CombineShards(plan, lost)
				require.True(t, ok)
				require.Error(t, diffResponses(want.resp, got), "shard %d lost", i)
			}

			if plan.Mode == queryshard.ModeCombine {
				wrong := plan
				wrong.Combiner = queryshard.CombineGroup
				if plan.Combiner == queryshard.CombineGroup {
					wrong.Combiner = queryshard.CombineSum
				}
				got, ok := queryfrontend.CombineShards(wrong, responses(shards))
				require.True(t, ok)
				require.Error(t, diffResponses(want.resp, got), "combined with %s", wrong.Combiner)
				return
			}
			// A union plan with shards by all labels splits groups.
			split := paritySharded(t, h, expr, 3, func(i int) queryshard.Selector { return queryshard.Selector{Index: i, Total: 3} })
			got, ok = queryfrontend.CombineShards(plan, responses(split))
			require.True(t, ok)
			require.Error(t, diffResponses(want.resp, got), "groups split over shards")
		})
	}
}
