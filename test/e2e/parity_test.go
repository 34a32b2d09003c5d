package e2e

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"text/tabwriter"
	"time"

	"github.com/prometheus/prometheus/model/histogram"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/prompb"
	"github.com/stretchr/testify/require"

	"github.com/stratametrics/strata/internal/miniotest"
	"github.com/stratametrics/strata/objstore"
)

// strataTenantLabel is the external label every receiver attaches to the series
// of a tenant. The querier keeps it on query results (it is how tenants are told
// apart), so every series strata returns carries tenant_id="default-tenant" that
// Prometheus, holding the same data, does not have. The parity test removes
// exactly this label, with exactly this value, from strata's answers and nothing
// else: the replica label (receive_replica) must already be gone, because dedup
// is on by default, and a leftover one is a difference worth failing on.
const (
	strataTenantLabel   = "tenant_id"
	strataDefaultTenant = "default-tenant"
)

// parityRelTolerance is how far apart two float results may be, relative to the
// larger magnitude. strata's engine is a newer PromQL than Prometheus 2.42's:
// Kahan summation in sum and avg, and histogram_quantile's exponential
// interpolation (see TestPromQLParity), change the last bits of some results.
const parityRelTolerance = 1e-9

// parityCase is one PromQL expression of the parity test.
type parityCase struct {
	name string
	expr string
	// ordered: the instant query's order is part of the answer (sort).
	ordered bool
	// empty: the correct answer is empty, so an empty answer proves something.
	empty bool
	// instantOnly: a range vector, which has no range query.
	instantOnly bool
	// value, if set, is the instant answer the test data is designed to give.
	value *float64
}

// TestPromQLParity has a real Prometheus 2.42 scrape itself every second and
// remote-write everything to `strata up`, adds one native histogram series to
// both, and then checks that strata's Prometheus HTTP API answers instant and
// range queries for a broad set of PromQL expressions, and the series, labels
// and label values endpoints, exactly as Prometheus answers them over its own
// copy of the data.
//
// strata evaluates PromQL with the Prometheus module it is built against (3.x),
// Prometheus 2.42 with its own engine. Where the two engines' semantics differ,
// the test's data and evaluation times are chosen so that the difference cannot
// show; each such choice is explained where it is made. The differences are:
//   - Prometheus 3 range selectors are left-open, (t-r, t], where 2.42's are
//     closed, [t-r, t]. Evaluation times and range boundaries are therefore kept
//     half a scrape interval away from every sample timestamp.
//   - rate and increase limit their extrapolation at the start of a series
//     differently (prometheus/prometheus#13725 fixed 2.42's order of the
//     zero-point and range-start rules); they disagree when a series starts
//     inside the range with a first value close to zero. No series the
//     expressions read starts inside any of their ranges.
//   - histogram_quantile and histogram_fraction interpolate exponentially
//     within the buckets of a native histogram (prometheus/prometheus#14677),
//     2.42 linearly; the two agree at bucket boundaries, and the native
//     histogram's 0.9 quantile and the fraction's bounds fall on them.
//   - Prometheus 3 also applies rate's zero-point rule to native histograms,
//     2.42 does not. The native histogram starts at a large count, so the rule
//     never takes effect.
func TestPromQLParity(t *testing.T) {
	promBin := requireBinary(t, "prometheus")
	ctx := context.Background()

	// strata up stores only what Prometheus and the test send it.
	rwAddr, httpAddr := freeAddr(t), freeAddr(t)
	upDataDir := t.TempDir()
	up := startProcess(t, "strata up", strataBin, "up",
		"--data-dir="+upDataDir,
		"--remote-write.address="+rwAddr,
		"--http-address="+httpAddr,
		"--self-scrape.disable",
	)
	strataURL := "http://" + httpAddr
	strataRW := "http://" + rwAddr + "/api/v1/receive"
	waitHTTP(t, up, strataURL+"/-/ready", time.Minute)

	promAddr := freeAddr(t)
	promURL := "http://" + promAddr
	cfgFile := filepath.Join(t.TempDir(), "prometheus.yml")
	writeParityPromConfig(t, cfgFile, strataRW, promAddr, true)
	prom := startProcess(t, "prometheus", promBin,
		"--config.file="+cfgFile,
		"--storage.tsdb.path="+t.TempDir(),
		"--web.listen-address="+promAddr,
		"--web.enable-lifecycle",
		// Both are needed to push the native histogram series into Prometheus:
		// its remote-write receiver, and a TSDB that accepts native histograms.
		"--web.enable-remote-write-receiver",
		"--enable-feature=native-histograms",
	)
	waitHTTP(t, prom, promURL+"/-/ready", time.Minute)

	// Range queries cover [T-window, T]; no counter function below looks back
	// further than maxLookback from an evaluation time (range plus offset; for
	// a subquery, its range plus its inner expression's).
	const (
		window      = 20 * time.Second
		maxLookback = 15 * time.Second
	)
	// Every counter series the expressions read (prometheus_http_* for the
	// handlers the test uses, process and TSDB counters) exists from the first
	// two or three scrapes on. Scraping for the window plus maxLookback plus
	// four intervals keeps series starts out of every rate window, where the
	// two engines extrapolate differently.
	wantScrapes := int((window+maxLookback)/time.Second) + 4
	require.Eventually(t, func() bool {
		res, err := fetchQuery(ctx, promURL, "/api/v1/query", url.Values{"query": {`count_over_time(up{job="prometheus"}[1m])`}})
		return err == nil && len(res.series) == 1 && res.series[0].points[0].f >= float64(wantScrapes)
	}, 2*time.Minute, 500*time.Millisecond, "Prometheus scrapes itself %d times", wantScrapes)

	// Stop scraping. Removing the job stops its scrape loop before the reload
	// answers; Prometheus writes no stale markers for a removed job, so neither
	// store has any.
	writeParityPromConfig(t, cfgFile, strataRW, promAddr, false)
	resp, err := http.Post(promURL+"/-/reload", "", nil)
	require.NoError(t, err)
	_, _ = io.Copy(io.Discard, resp.Body)
	require.NoError(t, resp.Body.Close())
	require.Equal(t, http.StatusOK, resp.StatusCode)

	// The evaluation time T is half a scrape interval before the last scrape, so
	// that T and every range boundary T-k*1s-r lies 500ms away from the scrape
	// timestamps (which Prometheus aligns to its schedule): closed and left-open
	// ranges select the same samples.
	lastScrape := queryResult(t, promURL, "/api/v1/query", url.Values{"query": {`up{job="prometheus"}[1m]`}})
	require.Len(t, lastScrape.series, 1)
	scrapes := lastScrape.series[0].points
	last := scrapes[len(scrapes)-1].t
	evalT := last - 500
	require.LessOrEqual(t, scrapes[0].t, evalT-(window+maxLookback).Milliseconds()-2000,
		"the first scrapes are outside every rate window")
	// Subqueries evaluate their inner expression at multiples of their step, here
	// whole seconds; an inner range selector is shifted by innerOffset so that its
	// boundaries too are 500ms away from the scrape timestamps.
	innerOffset := ((500-last%1000)%1000 + 1000) % 1000

	// The native histogram series, pushed identically into both, with timestamps
	// 250ms away from T's grid and 250ms away from the scrapes'. Prometheus does
	// not forward what it receives to strata: 2.42 remote-writes native
	// histograms only with send_native_histograms, which is off.
	native := parityNativeSeries(evalT-250, 40)
	for _, target := range []string{strataRW, promURL + "/api/v1/write"} {
		code, body, err := pushRW1(ctx, http.DefaultClient, target, "", native)
		require.NoError(t, err)
		require.True(t, code/100 == 2, "push native histograms to %s: %d %s", target, code, body)
	}

	waitRemoteWriteDrained(t, promURL)
	for _, m := range []string{"prometheus_remote_storage_samples_failed_total", "prometheus_remote_storage_samples_dropped_total"} {
		v, _, err := metricValue(ctx, promURL+"/metrics", m)
		require.NoError(t, err)
		require.Zero(t, v, m)
	}

	cases := parityCases(innerOffset)

	evalTime := formatMillis(evalT)
	startTime := formatMillis(evalT - window.Milliseconds())
	var table strings.Builder
	tw := tabwriter.NewWriter(&table, 0, 0, 2, ' ', 0)
	_, _ = fmt.Fprintf(tw, "expression\tinstant\trange [T-%s, T] step 1s\tvalues not bit-identical\n", window)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			instant := url.Values{"query": {c.expr}, "time": {evalTime}}
			want := queryResult(t, promURL, "/api/v1/query", instant)
			got := queryResult(t, strataURL, "/api/v1/query", instant)
			if c.empty {
				require.Empty(t, want.series, "Prometheus' answer to %s", c.expr)
			} else {
				require.True(t, want.resultType == "scalar" || len(want.series) > 0, "Prometheus answers %s with data", c.expr)
			}
			if c.value != nil {
				require.Len(t, want.series, 1)
				require.InDelta(t, *c.value, want.series[0].points[0].f, 1e-9, "the data gives %s = %v", c.expr, *c.value)
			}
			var fc floatComparer
			require.NoError(t, diffQueryResults(want, got, c.ordered, &fc), "instant query %s at %s\nPrometheus: %s\nstrata:     %s", c.expr, evalTime, want.raw, got.raw)

			if c.instantOnly {
				_, _ = fmt.Fprintf(tw, "%s\tOK %s, %d series, %d points\t-\t%s\n", c.expr, want.resultType, len(want.series), want.points(), fc)
				return
			}
			rng := url.Values{"query": {c.expr}, "start": {startTime}, "end": {evalTime}, "step": {"1s"}}
			wantRange := queryResult(t, promURL, "/api/v1/query_range", rng)
			gotRange := queryResult(t, strataURL, "/api/v1/query_range", rng)
			require.NoError(t, diffQueryResults(wantRange, gotRange, false, &fc), "range query %s over [%s, %s]\nPrometheus: %s\nstrata:     %s", c.expr, startTime, evalTime, wantRange.raw, gotRange.raw)

			_, _ = fmt.Fprintf(tw, "%s\tOK %s, %d series\tOK %d series, %d points\t%s\n", c.expr, want.resultType, len(want.series), len(wantRange.series), wantRange.points(), fc)
		})
	}

	// The metadata endpoints over the same window. Prometheus answers from its
	// index (a series counts if one of its chunks overlaps the window), and so
	// does strata from its receivers' TSDBs.
	span := url.Values{"start": {startTime}, "end": {evalTime}}
	with := func(extra url.Values) url.Values {
		v := url.Values{}
		for k, vs := range span {
			v[k] = vs
		}
		for k, vs := range extra {
			v[k] = vs
		}
		return v
	}
	job := url.Values{"match[]": {`{job="prometheus"}`}}
	t.Run("series", func(t *testing.T) {
		for _, m := range []string{`{job="prometheus"}`, `{__name__="parity_native_seconds"}`, `{__name__=~"prometheus_http_.+", handler="/metrics"}`} {
			params := with(url.Values{"match[]": {m}})
			want, wantTenant := seriesResult(t, promURL, params)
			got, gotTenant := seriesResult(t, strataURL, params)
			require.NotEmpty(t, want, m)
			require.Zero(t, wantTenant)
			require.Equal(t, len(got), gotTenant, "every series from strata carries %s=%q", strataTenantLabel, strataDefaultTenant)
			require.Equal(t, want, got, "series %s", m)
			_, _ = fmt.Fprintf(tw, "series %s\tOK %d series\t\n", m, len(want))
		}
	})
	t.Run("labels", func(t *testing.T) {
		for _, params := range []url.Values{with(nil), with(job)} {
			want := stringsResult(t, promURL, "/api/v1/labels", params)
			got := stringsResult(t, strataURL, "/api/v1/labels", params)
			require.Contains(t, got, strataTenantLabel, "strata adds its tenant label")
			got = slices.DeleteFunc(got, func(s string) bool { return s == strataTenantLabel })
			require.NotEmpty(t, want)
			require.Equal(t, want, got, "labels %v", params)
			_, _ = fmt.Fprintf(tw, "labels match[]=%v\tOK %d names\t\n", params["match[]"], len(want))
		}
	})
	t.Run("label values", func(t *testing.T) {
		for _, q := range []struct {
			name   string
			params url.Values
		}{
			{"__name__", with(nil)},
			{"__name__", with(job)},
			{"job", with(nil)},
			{"instance", with(job)},
			{"handler", with(job)},
			{"code", with(job)},
			{"le", with(job)},
			{"quantile", with(job)},
		} {
			path := "/api/v1/label/" + q.name + "/values"
			want := stringsResult(t, promURL, path, q.params)
			got := stringsResult(t, strataURL, path, q.params)
			require.NotEmpty(t, want)
			require.Equal(t, want, got, "label values of %s %v", q.name, q.params)
			_, _ = fmt.Fprintf(tw, "label %s values match[]=%v\tOK %d values\t\n", q.name, q.params["match[]"], len(want))
		}
	})
	require.NoError(t, tw.Flush())
	t.Logf("T=%s (last scrape %s), %d self-scrapes, subquery inner offset %dms\n%s", evalTime, formatMillis(last), len(scrapes), innerOffset, table.String())

	// The same answers from the bucket alone: strata up flushes and ships every
	// head on shutdown; the shipped blocks are copied into a real MinIO bucket, and
	// a querier that talks only to a store gateway over it must answer as
	// Prometheus does.
	t.Run("store gateway over MinIO", func(t *testing.T) {
		require.NoError(t, up.stop(t, syscall.SIGTERM, 2*time.Minute))
		fsBucket, err := objstore.NewFilesystem(filepath.Join(upDataDir, "bucket"))
		require.NoError(t, err)
		minio := miniotest.Start(t)
		bucketYAML := minio.NewBucketYAML(t, "parity")
		s3Bucket, err := objstore.NewBucket(ctx, bucketYAML, nil, nil)
		require.NoError(t, err)
		copied := copyBucket(t, fsBucket, s3Bucket)
		require.NotZero(t, copied, "strata up shipped blocks on shutdown")

		storeGRPC, storeHTTP, queryHTTP := freeAddr(t), freeAddr(t), freeAddr(t)
		store := startProcess(t, "strata store", strataBin, "store",
			"--objstore.config="+string(bucketYAML),
			"--data-dir="+t.TempDir(),
			"--grpc-address="+storeGRPC,
			"--http-address="+storeHTTP,
		)
		waitHTTP(t, store, "http://"+storeHTTP+"/-/ready", time.Minute)
		query := startProcess(t, "strata query", strataBin, "query",
			"--endpoint="+storeGRPC,
			"--endpoint.info-interval=200ms",
			"--http-address="+queryHTTP,
		)
		gwURL := "http://" + queryHTTP
		waitHTTP(t, query, gwURL+"/-/ready", time.Minute)
		require.Eventually(t, func() bool {
			res, err := fetchQuery(ctx, gwURL, "/api/v1/query", url.Values{"query": {`up{job="prometheus"}`}, "time": {evalTime}})
			return err == nil && len(res.series) == 1
		}, time.Minute, 200*time.Millisecond, "the querier finds the store gateway's data")

		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				instant := url.Values{"query": {c.expr}, "time": {evalTime}}
				want := queryResult(t, promURL, "/api/v1/query", instant)
				got := queryResult(t, gwURL, "/api/v1/query", instant)
				var fc floatComparer
				require.NoError(t, diffQueryResults(want, got, c.ordered, &fc), "instant query %s at %s\nPrometheus: %s\nstore gateway: %s", c.expr, evalTime, want.raw, got.raw)
				if c.instantOnly {
					return
				}
				rng := url.Values{"query": {c.expr}, "start": {startTime}, "end": {evalTime}, "step": {"1s"}}
				wantRange := queryResult(t, promURL, "/api/v1/query_range", rng)
				gotRange := queryResult(t, gwURL, "/api/v1/query_range", rng)
				require.NoError(t, diffQueryResults(wantRange, gotRange, false, &fc), "range query %s over [%s, %s]\nPrometheus: %s\nstore gateway: %s", c.expr, startTime, evalTime, wantRange.raw, gotRange.raw)
			})
		}

		t.Run("query frontend", func(t *testing.T) {
			testFrontendParity(t, cases, gwURL, evalT-window.Milliseconds(), evalT)
		})
	})
}

// parityCases are the PromQL expressions of the parity tests. innerOffset
// shifts the inner range selector of a subquery so that its boundaries lie
// 500ms away from the scrape timestamps (see TestPromQLParity).
func parityCases(innerOffset int64) []parityCase {
	return []parityCase{
		{name: "selector", expr: `up{job="prometheus"}`},
		{name: "regex selector", expr: `{__name__=~"prometheus_tsdb_head_.+", job="prometheus"}`},
		{name: "all raw samples", expr: `{__name__=~".+"}[1h]`, instantOnly: true},
		{name: "all series", expr: `count({__name__=~".+"})`},
		{name: "rate", expr: `rate(prometheus_http_requests_total[10s])`},
		{name: "increase", expr: `increase(prometheus_tsdb_head_samples_appended_total[15s])`},
		{name: "irate", expr: `irate(prometheus_http_requests_total{handler="/metrics"}[5s])`},
		{name: "sum by", expr: `sum by (handler) (rate(prometheus_http_requests_total[10s]))`},
		{name: "sum without", expr: `sum without (code) (increase(prometheus_http_requests_total[10s]))`},
		{name: "max by", expr: `max by (handler) (prometheus_http_request_duration_seconds_count)`},
		{name: "count by", expr: `count by (handler) (prometheus_http_request_duration_seconds_bucket)`},
		{name: "avg without", expr: `avg without (le) (prometheus_http_response_size_bytes_bucket)`},
		{name: "quantile", expr: `quantile(0.5, rate(prometheus_http_requests_total[10s]))`},
		{name: "stdvar", expr: `stdvar(rate(prometheus_http_requests_total[10s]))`},
		{name: "histogram_quantile sum by le", expr: `histogram_quantile(0.9, sum by (le) (rate(prometheus_http_request_duration_seconds_bucket[10s])))`},
		{name: "histogram_quantile per handler", expr: `histogram_quantile(0.5, rate(prometheus_http_response_size_bytes_bucket[10s]))`},
		{name: "offset", expr: `go_goroutines offset 5s`},
		{name: "rate offset", expr: `rate(process_cpu_seconds_total[10s] offset 5s)`},
		{name: "at end", expr: `go_memstats_alloc_bytes @ end()`},
		{name: "subquery", expr: `max_over_time(go_memstats_alloc_bytes[10s:1s])`},
		{name: "subquery step 2s", expr: `avg_over_time(scrape_samples_scraped[12s:2s])`},
		{name: "subquery of rate", expr: fmt.Sprintf(`max_over_time(rate(prometheus_http_requests_total{handler="/metrics"}[5s] offset %dms)[8s:1s])`, innerOffset)},
		{name: "label_replace", expr: `label_replace(up, "host", "$1", "instance", "(.+):[0-9]+")`},
		{name: "label_join", expr: `label_join(up, "target", "/", "job", "instance")`},
		{name: "topk", expr: `topk(2, prometheus_http_request_duration_seconds_sum)`},
		{name: "absent present", expr: `absent(up{job="prometheus"})`, empty: true},
		{name: "absent missing", expr: `absent(parity_missing_metric{job="parity"})`},
		{name: "absent_over_time missing", expr: `absent_over_time(parity_missing_metric{job="parity"}[10s])`},
		{name: "on group_left", expr: `prometheus_http_requests_total / on (handler) group_left prometheus_http_request_duration_seconds_count`},
		{name: "ignoring group_left", expr: `prometheus_http_response_size_bytes_bucket / ignoring (le) group_left prometheus_http_response_size_bytes_count`},
		{name: "one to one with NaN", expr: `rate(prometheus_http_request_duration_seconds_sum[10s]) / rate(prometheus_http_request_duration_seconds_count[10s])`},
		{name: "filter", expr: `prometheus_http_requests_total > 3`},
		{name: "bool", expr: `scrape_duration_seconds < bool 0.5`},
		{name: "and unless or", expr: `(prometheus_http_requests_total and on (handler) prometheus_http_request_duration_seconds_count > 3) unless on (code) prometheus_http_requests_total{code!="200"} or vector(0)`},
		{name: "count_values", expr: `count_values("value", prometheus_http_requests_total)`},
		{name: "count_values by", expr: `count_values by (handler) ("count", prometheus_http_response_size_bytes_bucket)`},
		{name: "quantile_over_time", expr: `quantile_over_time(0.9, scrape_duration_seconds[10s])`},
		{name: "deriv", expr: `deriv(process_resident_memory_bytes[10s])`},
		{name: "predict_linear", expr: `predict_linear(go_memstats_alloc_bytes[10s], 60)`},
		{name: "changes", expr: `changes(go_goroutines[15s])`},
		{name: "sort", expr: `sort(prometheus_http_request_duration_seconds_sum)`, ordered: true},
		{name: "sort_desc", expr: `sort_desc(sum by (handler) (rate(prometheus_http_response_size_bytes_sum[10s])))`, ordered: true},
		{name: "scalar", expr: `scalar(go_goroutines)`},
		{name: "vector", expr: `vector(scalar(sum(up)))`},
		{name: "time", expr: `time() - process_start_time_seconds`},
		{name: "timestamp", expr: `timestamp(up)`},
		{name: "summary quantiles", expr: `max by (quantile) (prometheus_target_interval_length_seconds)`},
		{name: "native raw", expr: `parity_native_seconds`},
		{name: "native rate", expr: `rate(parity_native_seconds[20s])`},
		{name: "native histogram_count", expr: `histogram_count(rate(parity_native_seconds[1m]))`},
		{name: "native histogram_sum", expr: `histogram_sum(rate(parity_native_seconds[1m]))`},
		{name: "native histogram_quantile", expr: `histogram_quantile(0.9, rate(parity_native_seconds[1m]))`, value: new(2.0)},
		{name: "native histogram_fraction", expr: `histogram_fraction(0.5, 2, rate(parity_native_seconds[1m]))`, value: new(0.8)},
	}
}

// copyBucket copies every object of src into dst and returns how many.
func copyBucket(t *testing.T, src, dst objstore.Bucket) int {
	t.Helper()
	ctx := context.Background()
	n := 0
	require.NoError(t, src.Iter(ctx, "", func(name string) error {
		r, err := src.Get(ctx, name)
		if err != nil {
			return err
		}
		defer func() { _ = r.Close() }()
		n++
		return dst.Upload(ctx, name, r)
	}, objstore.WithRecursiveIter()))
	return n
}

// writeParityPromConfig writes Prometheus' configuration: remote write to
// strata with a short batch deadline, and, if scrape, a 1s self-scrape.
func writeParityPromConfig(t *testing.T, file, rwURL, promAddr string, scrape bool) {
	t.Helper()
	cfg := fmt.Sprintf(`
global:
  scrape_interval: 1s
remote_write:
  - url: %s
    queue_config: {batch_send_deadline: 200ms, max_samples_per_send: 500, min_backoff: 50ms, max_backoff: 1s}
`, rwURL)
	if scrape {
		cfg += fmt.Sprintf("scrape_configs:\n  - job_name: prometheus\n    static_configs: [{targets: [%q]}]\n", promAddr)
	}
	require.NoError(t, os.WriteFile(file, []byte(cfg), 0o644))
}

// waitRemoteWriteDrained waits until Prometheus has sent every sample it
// appended, as seen in two consecutive looks at its metrics.
func waitRemoteWriteDrained(t *testing.T, promURL string) {
	t.Helper()
	ctx := context.Background()
	prevIn := -1.0
	require.Eventually(t, func() bool {
		in, _, err1 := metricValue(ctx, promURL+"/metrics", "prometheus_remote_storage_samples_in_total")
		out, _, err2 := metricValue(ctx, promURL+"/metrics", "prometheus_remote_storage_samples_total")
		if err1 != nil || err2 != nil || in == 0 || in != out {
			prevIn = -1
			return false
		}
		drained := in == prevIn
		prevIn = in
		return drained
	}, time.Minute, 250*time.Millisecond, "the remote-write queue drains")
}

// parityNativeSeries returns n samples of one native histogram counter, the
// last at lastT and one second apart. Every second adds ten observations: one
// in the zero bucket, three in (0.5,1], five in (1,2] and one in (2,4], so the
// 0.9 quantile of any rate of it lies exactly on the boundary 2, where linear
// and exponential interpolation agree. The counts start at 100 seconds' worth,
// far from zero, so that rate never extrapolates to a zero point.
func parityNativeSeries(lastT int64, n int) []prompb.TimeSeries {
	hs := make([]prompb.Histogram, 0, n)
	for i := range n {
		k := uint64(100 + i)
		h := &histogram.Histogram{
			Schema:          0,
			ZeroThreshold:   0.001,
			ZeroCount:       k,
			Count:           10 * k,
			Sum:             13.25 * float64(k),
			PositiveSpans:   []histogram.Span{{Offset: 0, Length: 3}},
			PositiveBuckets: []int64{3 * int64(k), 2 * int64(k), -4 * int64(k)},
		}
		hs = append(hs, prompb.FromIntHistogram(lastT-int64(n-1-i)*1000, h))
	}
	return []prompb.TimeSeries{{
		Labels:     []prompb.Label{{Name: "__name__", Value: "parity_native_seconds"}, {Name: "instance", Value: "push"}, {Name: "job", Value: "parity"}},
		Histograms: hs,
	}}
}

// formatMillis formats a millisecond timestamp as the API's seconds.
func formatMillis(ms int64) string {
	return fmt.Sprintf("%d.%03d", ms/1000, ms%1000)
}

// apiResponse is the envelope of every Prometheus HTTP API answer.
type apiResponse struct {
	Status    string          `json:"status"`
	ErrorType string          `json:"errorType"`
	Error     string          `json:"error"`
	Data      json.RawMessage `json:"data"`
}

// fetchAPI GETs path with params from baseURL and returns the data of a
// successful answer.
func fetchAPI(ctx context.Context, baseURL, path string, params url.Values) (json.RawMessage, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, baseURL+path+"?"+params.Encode(), nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer func() { _ = resp.Body.Close() }()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	var r apiResponse
	if err := json.Unmarshal(body, &r); err != nil {
		return nil, fmt.Errorf("decode %s answer (%d): %w: %s", path, resp.StatusCode, err, body)
	}
	if r.Status != "success" {
		return nil, fmt.Errorf("%s: %d %s: %s", path, resp.StatusCode, r.ErrorType, r.Error)
	}
	return r.Data, nil
}

// parityResult is a decoded query answer. Series labels are canonical strings,
// with strata's tenant label removed; a scalar is one series without labels.
type parityResult struct {
	resultType string
	series     []paritySeries
	raw        string
}

type paritySeries struct {
	labels string
	points []parityPoint
}

// parityPoint is a float sample, or a native histogram if h is set.
type parityPoint struct {
	t int64
	f float64
	h *parityHistogram
}

type parityHistogram struct {
	count, sum float64
	// buckets are [boundary rule, lower, upper, count] as the API encodes them.
	buckets [][4]float64
}

func (fc floatComparer) String() string {
	if fc.inexact == 0 {
		return "none"
	}
	return fmt.Sprintf("%d (max rel diff %.1e)", fc.inexact, fc.maxRel)
}

func (r parityResult) points() int {
	n := 0
	for _, s := range r.series {
		n += len(s.points)
	}
	return n
}

// queryResult runs a query or query_range request and decodes its answer.
func queryResult(t *testing.T, baseURL, path string, params url.Values) parityResult {
	t.Helper()
	r, err := fetchQuery(context.Background(), baseURL, path, params)
	require.NoError(t, err, "%s%s %v", baseURL, path, params)
	return r
}

func fetchQuery(ctx context.Context, baseURL, path string, params url.Values) (parityResult, error) {
	data, err := fetchAPI(ctx, baseURL, path, params)
	if err != nil {
		return parityResult{}, err
	}
	var d struct {
		ResultType string          `json:"resultType"`
		Result     json.RawMessage `json:"result"`
	}
	if err := json.Unmarshal(data, &d); err != nil {
		return parityResult{}, err
	}
	res := parityResult{resultType: d.ResultType, raw: string(d.Result)}
	if d.ResultType == "scalar" {
		p, err := decodePoint(d.Result, false)
		if err != nil {
			return parityResult{}, err
		}
		res.series = []paritySeries{{labels: "{}", points: []parityPoint{p}}}
		return res, nil
	}
	var series []struct {
		Metric     map[string]string `json:"metric"`
		Value      json.RawMessage   `json:"value"`
		Values     []json.RawMessage `json:"values"`
		Histogram  json.RawMessage   `json:"histogram"`
		Histograms []json.RawMessage `json:"histograms"`
	}
	if err := json.Unmarshal(d.Result, &series); err != nil {
		return parityResult{}, fmt.Errorf("decode %s result: %w", d.ResultType, err)
	}
	for _, s := range series {
		var ps []parityPoint
		for _, raw := range append(nonEmpty(s.Value), s.Values...) {
			p, err := decodePoint(raw, false)
			if err != nil {
				return parityResult{}, err
			}
			ps = append(ps, p)
		}
		for _, raw := range append(nonEmpty(s.Histogram), s.Histograms...) {
			p, err := decodePoint(raw, true)
			if err != nil {
				return parityResult{}, err
			}
			ps = append(ps, p)
		}
		slices.SortFunc(ps, func(a, b parityPoint) int { return cmp.Compare(a.t, b.t) })
		res.series = append(res.series, paritySeries{labels: withoutTenant(s.Metric).String(), points: ps})
	}
	return res, nil
}

func nonEmpty(raw json.RawMessage) []json.RawMessage {
	if len(raw) == 0 {
		return nil
	}
	return []json.RawMessage{raw}
}

// withoutTenant returns the labels without strata's tenant label, when it has
// the default tenant's value (see strataTenantLabel).
func withoutTenant(m map[string]string) labels.Labels {
	if m[strataTenantLabel] == strataDefaultTenant {
		delete(m, strataTenantLabel)
	}
	return labels.FromMap(m)
}

// decodePoint decodes [<seconds>, "<value>"] or, if hist, [<seconds>, {histogram}].
func decodePoint(raw json.RawMessage, hist bool) (parityPoint, error) {
	var pair []json.RawMessage
	if err := json.Unmarshal(raw, &pair); err != nil || len(pair) != 2 {
		return parityPoint{}, fmt.Errorf("decode point %s: %v", raw, err)
	}
	var sec json.Number
	if err := json.Unmarshal(pair[0], &sec); err != nil {
		return parityPoint{}, fmt.Errorf("decode timestamp %s: %w", pair[0], err)
	}
	ts, err := parseMillis(sec.String())
	if err != nil {
		return parityPoint{}, err
	}
	p := parityPoint{t: ts}
	if !hist {
		var s string
		if err := json.Unmarshal(pair[1], &s); err != nil {
			return parityPoint{}, fmt.Errorf("decode value %s: %w", pair[1], err)
		}
		p.f, err = strconv.ParseFloat(s, 64)
		return p, err
	}
	var h struct {
		Count   string              `json:"count"`
		Sum     string              `json:"sum"`
		Buckets [][]json.RawMessage `json:"buckets"`
	}
	if err := json.Unmarshal(pair[1], &h); err != nil {
		return parityPoint{}, fmt.Errorf("decode histogram %s: %w", pair[1], err)
	}
	p.h = &parityHistogram{}
	if p.h.count, err = strconv.ParseFloat(h.Count, 64); err != nil {
		return parityPoint{}, err
	}
	if p.h.sum, err = strconv.ParseFloat(h.Sum, 64); err != nil {
		return parityPoint{}, err
	}
	for _, b := range h.Buckets {
		if len(b) != 4 {
			return parityPoint{}, fmt.Errorf("histogram bucket %s", b)
		}
		var bucket [4]float64
		if err := json.Unmarshal(b[0], &bucket[0]); err != nil {
			return parityPoint{}, err
		}
		for i := 1; i < 4; i++ {
			var s string
			if err := json.Unmarshal(b[i], &s); err != nil {
				return parityPoint{}, err
			}
			if bucket[i], err = strconv.ParseFloat(s, 64); err != nil {
				return parityPoint{}, err
			}
		}
		p.h.buckets = append(p.h.buckets, bucket)
	}
	return p, nil
}

// parseMillis parses the API's seconds with up to three decimals exactly.
func parseMillis(s string) (int64, error) {
	sec, frac, _ := strings.Cut(s, ".")
	if len(frac) > 3 {
		return 0, fmt.Errorf("timestamp %s has more than millisecond precision", s)
	}
	frac += strings.Repeat("0", 3-len(frac))
	secs, err := strconv.ParseInt(sec, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("timestamp %s: %w", s, err)
	}
	ms, err := strconv.ParseInt(frac, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("timestamp %s: %w", s, err)
	}
	return secs*1000 + ms, nil
}

// diffQueryResults returns the first difference between Prometheus' answer
// (want) and strata's (got): result type, label sets, timestamps exactly, and
// values within parityRelTolerance. With ordered, the instant vectors' values
// must also come in the same order (series with equal values may swap).
func diffQueryResults(want, got parityResult, ordered bool, fc *floatComparer) error {
	if want.resultType != got.resultType {
		return fmt.Errorf("result type %s, strata %s", want.resultType, got.resultType)
	}
	index := func(r parityResult, who string) (map[string]paritySeries, error) {
		m := make(map[string]paritySeries, len(r.series))
		for _, s := range r.series {
			if _, dup := m[s.labels]; dup {
				return nil, fmt.Errorf("%s returns %s twice", who, s.labels)
			}
			m[s.labels] = s
		}
		return m, nil
	}
	wm, err := index(want, "Prometheus")
	if err != nil {
		return err
	}
	gm, err := index(got, "strata")
	if err != nil {
		return err
	}
	var errs []error
	for l := range wm {
		if _, ok := gm[l]; !ok {
			errs = append(errs, fmt.Errorf("series %s missing in strata", l))
		}
	}
	for l := range gm {
		if _, ok := wm[l]; !ok {
			errs = append(errs, fmt.Errorf("series %s only in strata", l))
		}
	}
	if len(errs) > 0 {
		return errors.Join(errs...)
	}
	for l, ws := range wm {
		gs := gm[l]
		if len(ws.points) != len(gs.points) {
			return fmt.Errorf("series %s: %d points, strata %d", l, len(ws.points), len(gs.points))
		}
		for i, wp := range ws.points {
			if err := fc.diffPoints(wp, gs.points[i]); err != nil {
				return fmt.Errorf("series %s: %w", l, err)
			}
		}
	}
	if ordered {
		for i := range want.series {
			if err := fc.diffPoints(want.series[i].points[0], got.series[i].points[0]); err != nil {
				return fmt.Errorf("order: element %d is %s, strata %s: %w", i, want.series[i].labels, got.series[i].labels, err)
			}
		}
	}
	return nil
}

func (fc *floatComparer) diffPoints(w, g parityPoint) error {
	if w.t != g.t {
		return fmt.Errorf("timestamp %s, strata %s", formatMillis(w.t), formatMillis(g.t))
	}
	if (w.h == nil) != (g.h == nil) {
		return fmt.Errorf("at %s: histogram %v, strata histogram %v", formatMillis(w.t), w.h != nil, g.h != nil)
	}
	if w.h == nil {
		if !fc.closeEnough(w.f, g.f) {
			return fmt.Errorf("at %s: value %v, strata %v", formatMillis(w.t), w.f, g.f)
		}
		return nil
	}
	if !fc.closeEnough(w.h.count, g.h.count) || !fc.closeEnough(w.h.sum, g.h.sum) || len(w.h.buckets) != len(g.h.buckets) {
		return fmt.Errorf("at %s: histogram %+v, strata %+v", formatMillis(w.t), *w.h, *g.h)
	}
	for i, wb := range w.h.buckets {
		gb := g.h.buckets[i]
		if wb[0] != gb[0] || wb[1] != gb[1] || wb[2] != gb[2] || !fc.closeEnough(wb[3], gb[3]) {
			return fmt.Errorf("at %s: bucket %d %v, strata %v", formatMillis(w.t), i, wb, gb)
		}
	}
	return nil
}

// floatComparer compares values within parityRelTolerance and keeps count of
// the values that were equal only within it.
type floatComparer struct {
	inexact int
	maxRel  float64
}

// closeEnough compares within parityRelTolerance; NaN equals NaN, and
// infinities equal only themselves.
func (fc *floatComparer) closeEnough(a, b float64) bool {
	switch {
	case math.IsNaN(a) || math.IsNaN(b):
		return math.IsNaN(a) && math.IsNaN(b)
	case math.IsInf(a, 0) || math.IsInf(b, 0) || a == b:
		return a == b
	}
	rel := math.Abs(a-b) / math.Max(math.Abs(a), math.Abs(b))
	if rel > parityRelTolerance {
		return false
	}
	fc.inexact++
	fc.maxRel = math.Max(fc.maxRel, rel)
	return true
}

// seriesResult returns the sorted label sets of a series request, with
// strata's tenant label removed, and how many of them had it.
func seriesResult(t *testing.T, baseURL string, params url.Values) (sets []string, tenantLabelled int) {
	t.Helper()
	data, err := fetchAPI(context.Background(), baseURL, "/api/v1/series", params)
	require.NoError(t, err)
	var maps []map[string]string
	require.NoError(t, json.Unmarshal(data, &maps))
	for _, m := range maps {
		if m[strataTenantLabel] == strataDefaultTenant {
			tenantLabelled++
		}
		sets = append(sets, withoutTenant(m).String())
	}
	slices.Sort(sets)
	return sets, tenantLabelled
}

// stringsResult returns the sorted list a labels or label values request answers.
func stringsResult(t *testing.T, baseURL, path string, params url.Values) []string {
	t.Helper()
	data, err := fetchAPI(context.Background(), baseURL, path, params)
	require.NoError(t, err)
	var out []string
	require.NoError(t, json.Unmarshal(data, &out))
	slices.Sort(out)
	return out
}
