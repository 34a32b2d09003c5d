package receive

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/prompb"
	writev2 "github.com/prometheus/prometheus/prompb/io/prometheus/write/v2"
	"github.com/stretchr/testify/require"

	"github.com/stratametrics/strata/limits"
	"github.com/stratametrics/strata/tenancy"
	"github.com/stratametrics/strata/tsdbshard"
)

// limitsEnv is a handler over real tenant TSDBs (tsdbshard, which counts
// active series) with an overrides file that tests rewrite.
type limitsEnv struct {
	t       *testing.T
	file    string
	lim     *limits.Overrides
	mgr     *tsdbshard.Manager
	handler *Handler
	reg     *prometheus.Registry
	now     time.Time
}

func newLimitsEnv(t *testing.T, overrides string, auth Authenticator) *limitsEnv {
	t.Helper()
	e := &limitsEnv{t: t, file: filepath.Join(t.TempDir(), "limits.yaml"), reg: prometheus.NewRegistry(), now: time.Now()}
	require.NoError(t, os.WriteFile(e.file, []byte(overrides), 0o600))
	var err error
	e.lim, err = limits.NewOverrides(e.file, limits.Limits{}, nil, nil)
	require.NoError(t, err)
	e.mgr, err = tsdbshard.NewManager(tsdbshard.Options{
		Dir:            t.TempDir(),
		ExternalLabels: labels.FromStrings("receive_replica", "r"),
		TenantLimits: func(tenant string) tsdbshard.TenantLimits {
			l := e.lim.For(tenant)
			return tsdbshard.TenantLimits{OutOfOrderTimeWindow: time.Duration(l.OutOfOrderWindow), MaxExemplars: int64(l.MaxExemplars)}
		},
	}, nil, nil)
	require.NoError(t, err)
	require.NoError(t, e.mgr.Open(context.Background()))
	t.Cleanup(func() { require.NoError(t, e.mgr.Close(context.Background())) })
	e.handler = NewHandler(Options{Limits: e.lim, Authenticator: auth}, e.mgr, e.reg, nil)
	return e
}

// reload rewrites the overrides file and applies it as the receiver's watcher does.
func (e *limitsEnv) reload(overrides string) {
	e.t.Helper()
	require.NoError(e.t, os.WriteFile(e.file, []byte(overrides), 0o600))
	changed, err := e.lim.Reload()
	require.NoError(e.t, err)
	require.True(e.t, changed)
	require.NoError(e.t, e.mgr.ApplyTenantLimits())
}

// series returns n series of metric name with one sample each at ts.
func limitSeries(name string, from, n int, ts int64) []prompb.TimeSeries {
	out := make([]prompb.TimeSeries, n)
	for i := range out {
		out[i] = prompb.TimeSeries{
			Labels:  lbls("__name__", name, "i", strconv.Itoa(from+i)),
			Samples: []prompb.Sample{{Value: float64(i), Timestamp: ts}},
		}
	}
	return out
}

func (e *limitsEnv) push(tenant string, series []prompb.TimeSeries, hdr ...string) *httptest.ResponseRecorder {
	e.t.Helper()
	h := map[string]string{DefaultTenantHeader: tenant}
	for i := 0; i+1 < len(hdr); i += 2 {
		h[hdr[i]] = hdr[i+1]
	}
	return post(e.handler, encodeV1(e.t, &prompb.WriteRequest{Timeseries: series}), h)
}

// stored returns the number of samples the tenant holds.
func (e *limitsEnv) stored(tenant string) int {
	e.t.Helper()
	q, err := e.mgr.Querier(tenant, math.MinInt64, math.MaxInt64)
	if err != nil {
		return 0
	}
	defer func() { require.NoError(e.t, q.Close()) }()
	n := 0
	set := q.Select(context.Background(), false, nil, labels.MustNewMatcher(labels.MatchRegexp, "__name__", ".+"))
	for set.Next() {
		it := set.At().Iterator(nil)
		for it.Next() != 0 {
			n++
		}
	}
	require.NoError(e.t, set.Err())
	return n
}

func (e *limitsEnv) discarded(tenant, reason string) float64 {
	e.t.Helper()
	return testutil.ToFloat64(counterOf(e.t, e.reg, "strata_receive_tenant_samples_discarded_total", map[string]string{"tenant": tenant, "reason": reason}))
}

// counterOf returns the value of one series of a gathered metric as a collector.
func counterOf(t *testing.T, g prometheus.Gatherer, name string, want map[string]string) prometheus.Collector {
	t.Helper()
	mfs, err := g.Gather()
	require.NoError(t, err)
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	next:
		for _, m := range mf.GetMetric() {
			got := map[string]string{}
			for _, lp := range m.GetLabel() {
				got[lp.GetName()] = lp.GetValue()
			}
			for k, v := range want {
				if got[k] != v {
					continue next
				}
			}
			return prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "x", Help: "x"}, func() float64 { return m.GetCounter().GetValue() })
		}
	}
	t.Fatalf("no series %s%v", name, want)
	return nil
}

func TestLimitIngestionRate(t *testing.T) {
	e := newLimitsEnv(t, "tenants: {a: {ingestion_rate: 1, ingestion_burst: 10}}\n", nil)
	ts := e.now.UnixMilli()

	require.Equal(t, http.StatusNoContent, e.push("a", limitSeries("m", 0, 10, ts)).Code)
	w := e.push("a", limitSeries("m", 10, 5, ts))
	require.Equal(t, http.StatusTooManyRequests, w.Code, w.Body.String())
	require.Contains(t, w.Body.String(), "ingestion_rate=1")
	retry, err := strconv.Atoi(w.Header().Get("Retry-After"))
	require.NoError(t, err, "Retry-After %q", w.Header().Get("Retry-After"))
	require.GreaterOrEqual(t, retry, 4, "5 samples at 1/s after an empty bucket")
	require.Equal(t, 10, e.stored("a"), "nothing of the refused request is written")
	require.Equal(t, 5.0, e.discarded("a", "rate_limited"))

	// More than the burst can never pass, and says so.
	w = e.push("a", limitSeries("m", 0, 11, ts+1))
	require.Equal(t, http.StatusTooManyRequests, w.Code)
	require.Contains(t, w.Body.String(), "larger than the tenant's burst of 10")

	// Another tenant has no limit.
	require.Equal(t, http.StatusNoContent, e.push("b", limitSeries("m", 0, 100, ts)).Code)

	// Raised at runtime, the limit applies from the next request.
	e.reload("tenants: {a: {ingestion_rate: 1000, ingestion_burst: 1000}}\n")
	require.Equal(t, http.StatusNoContent, e.push("a", limitSeries("m", 10, 500, ts)).Code)
	require.Equal(t, 510, e.stored("a"))
}

func TestLimitActiveSeries(t *testing.T) {
	e := newLimitsEnv(t, "defaults: {max_active_series: 5}\n", nil)
	ts := e.now.UnixMilli()

	require.Equal(t, http.StatusNoContent, e.push("a", limitSeries("m", 0, 3, ts)).Code)
	// 3 stored; of 4 new series 2 fit. The existing ones still take samples.
	req := append(limitSeries("m", 0, 3, ts+1), limitSeries("m", 3, 4, ts+1)...)
	w := e.push("a", req)
	require.Equal(t, http.StatusTooManyRequests, w.Code, w.Body.String())
	require.Equal(t, strconv.Itoa(seriesLimitRetryAfter), w.Header().Get("Retry-After"))
	require.Contains(t, w.Body.String(), "2 of 7 samples refused (2 new series) by the active series limit")
	require.Contains(t, w.Body.String(), "max_active_series=5")
	require.Equal(t, 3+5, e.stored("a"), "existing series and the new series that fit are written")
	require.Equal(t, map[string]int{"a": 5}, e.mgr.ActiveSeries())
	require.Equal(t, 2.0, e.discarded("a", "max_active_series"))

	// Samples of held series keep being accepted at the limit.
	require.Equal(t, http.StatusNoContent, e.push("a", limitSeries("m", 0, 5, ts+2)).Code)

	// Tenant b has its own count.
	require.Equal(t, http.StatusNoContent, e.push("b", limitSeries("m", 0, 5, ts)).Code)

	e.reload("defaults: {max_active_series: 7}\n")
	require.Equal(t, http.StatusNoContent, e.push("a", limitSeries("m", 5, 2, ts+3)).Code)
	require.Equal(t, http.StatusTooManyRequests, e.push("a", limitSeries("m", 7, 1, ts+3)).Code)
}

func TestLimitLabels(t *testing.T) {
	e := newLimitsEnv(t, "defaults: {max_labels_per_series: 3, max_label_name_length: 8, max_label_value_length: 10}\n", nil)
	ts := e.now.UnixMilli()
	good := prompb.TimeSeries{Labels: lbls("__name__", "ok", "job", "api"), Samples: []prompb.Sample{{Value: 1, Timestamp: ts}}}
	for _, tc := range []struct {
		name   string
		labels []prompb.Label
		limit  string
	}{
		{"too many labels", lbls("__name__", "m", "a", "1", "b", "2", "c", "3"), "max_labels_per_series=3"},
		{"long name", lbls("__name__", "m", "very_long_name", "1"), "max_label_name_length=8"},
		{"long value", lbls("__name__", "m", "job", "a-value-of-many-bytes"), "max_label_value_length=10"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := e.stored("a")
			bad := prompb.TimeSeries{Labels: tc.labels, Samples: []prompb.Sample{{Value: 1, Timestamp: ts}, {Value: 2, Timestamp: ts + 1}}}
			good.Samples[0].Timestamp++
			w := e.push("a", []prompb.TimeSeries{bad, good})
			require.Equal(t, http.StatusBadRequest, w.Code)
			require.Contains(t, w.Body.String(), tc.limit)
			require.Contains(t, w.Body.String(), "2 of 3 samples rejected (1 series)")
			require.Equal(t, before+1, e.stored("a"), "the good series is written")
		})
	}
	require.Equal(t, 6.0, e.discarded("a", "label_limit"))

	e.reload("defaults: {max_labels_per_series: 4}\n")
	w := e.push("a", []prompb.TimeSeries{{Labels: lbls("__name__", "m", "a", "1", "b", "2", "c", "3"), Samples: []prompb.Sample{{Value: 1, Timestamp: ts}}}})
	require.Equal(t, http.StatusNoContent, w.Code, w.Body.String())
}

func TestLimitRequestBytes(t *testing.T) {
	e := newLimitsEnv(t, "tenants: {a: {max_request_bytes: 100}}\n", nil)
	ts := e.now.UnixMilli()
	body := encodeV1(t, &prompb.WriteRequest{Timeseries: limitSeries("m", 0, 50, ts)})
	require.Greater(t, len(body), 100)

	w := post(e.handler, body, map[string]string{DefaultTenantHeader: "a"})
	require.Equal(t, http.StatusRequestEntityTooLarge, w.Code)
	require.Contains(t, w.Body.String(), "max_request_bytes=100")
	require.Equal(t, 0, e.stored("a"))

	// Without Content-Length the body is cut off at the limit.
	r := httptest.NewRequest(http.MethodPost, Path, struct{ *bytes.Reader }{bytes.NewReader(body)})
	r.ContentLength = -1
	r.Header.Set(DefaultTenantHeader, "a")
	rec := httptest.NewRecorder()
	e.handler.ServeHTTP(rec, r)
	require.Equal(t, http.StatusRequestEntityTooLarge, rec.Code)
	require.Contains(t, rec.Body.String(), "max_request_bytes=100")

	require.Equal(t, http.StatusNoContent, post(e.handler, body, map[string]string{DefaultTenantHeader: "b"}).Code)

	e.reload("tenants: {a: {max_request_bytes: 100000}}\n")
	require.Equal(t, http.StatusNoContent, post(e.handler, body, map[string]string{DefaultTenantHeader: "a"}).Code)
}

func TestLimitExemplarsAndOutOfOrderPerTenant(t *testing.T) {
	e := newLimitsEnv(t, "defaults: {max_exemplars: 0}\ntenants: {a: {max_exemplars: 10, out_of_order_window: 1h}}\n", nil)
	ts := e.now.UnixMilli()
	withExemplar := func(ts int64) []prompb.TimeSeries {
		return []prompb.TimeSeries{{
			Labels:    lbls("__name__", "m"),
			Samples:   []prompb.Sample{{Value: 1, Timestamp: ts}},
			Exemplars: []prompb.Exemplar{{Labels: lbls("trace_id", "abc"), Value: 1, Timestamp: ts}},
		}}
	}
	rw2 := func(tenant string, ts int64) *httptest.ResponseRecorder {
		b := newV2Builder()
		b.add(writev2.TimeSeries{
			LabelsRefs: b.refs("__name__", "m2"),
			Samples:    []writev2.Sample{{Value: 1, Timestamp: ts}},
			Exemplars:  []writev2.Exemplar{{LabelsRefs: b.refs("trace_id", "def"), Value: 1, Timestamp: ts}},
		})
		return post(e.handler, encodeV2(t, b.build()), withHeader(v2Headers, DefaultTenantHeader, tenant))
	}
	exemplars := func(tenant string) int {
		q, err := e.mgr.ExemplarQuerier(context.Background(), tenant)
		require.NoError(t, err)
		res, err := q.Select(math.MinInt64, math.MaxInt64, []*labels.Matcher{labels.MustNewMatcher(labels.MatchRegexp, "__name__", ".+")})
		require.NoError(t, err)
		n := 0
		for _, r := range res {
			n += len(r.Exemplars)
		}
		return n
	}
	for _, tenant := range []string{"a", "b"} {
		require.Equal(t, http.StatusNoContent, e.push(tenant, withExemplar(ts)).Code)
		require.Equal(t, http.StatusNoContent, e.push(tenant, limitSeries("m", 0, 2, ts)).Code)
	}
	require.Equal(t, [3]string{"1", "0", "1"}, written(rw2("a", ts+1)), "a keeps exemplars")
	require.Equal(t, [3]string{"1", "0", "0"}, written(rw2("b", ts+1)), "b's are dropped")
	require.Equal(t, 2, exemplars("a"))
	require.Equal(t, 0, exemplars("b"))

	// A sample 30m behind the newest is in a's window, not b's.
	old := ts - (30 * time.Minute).Milliseconds()
	require.Equal(t, http.StatusNoContent, e.push("a", limitSeries("m", 0, 1, old)).Code)
	w := e.push("b", limitSeries("m", 0, 1, old))
	require.Equal(t, http.StatusBadRequest, w.Code, w.Body.String())

	// Reloaded: b gets exemplars and a window without reopening its TSDB.
	e.reload("defaults: {max_exemplars: 10, out_of_order_window: 1h}\n")
	require.Equal(t, [3]string{"1", "0", "1"}, written(rw2("b", ts+2)))
	require.Equal(t, 1, exemplars("b"))
	w = e.push("b", limitSeries("m", 1, 1, old))
	require.Equal(t, http.StatusNoContent, w.Code, w.Body.String())
}

func TestAuthenticationTable(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "tenants.yaml")
	require.NoError(t, os.WriteFile(file, []byte(fmt.Sprintf(`tenants:
- name: team-a
  tokens_sha256: [%s]
- name: team-b
  tokens_sha256: [%s]
`, tenancy.HashToken("secret-a"), tenancy.HashToken("secret-b"))), 0o600))
	auth, err := tenancy.NewAuthenticator(file, nil, nil)
	require.NoError(t, err)
	e := newLimitsEnv(t, "", auth)
	ts := e.now.UnixMilli()

	for i, tc := range []struct {
		name       string
		hdr        []string // pairs; the tenant header is set by push, "" removes it
		tenantHdr  string
		code       int
		wantTenant string
	}{
		{name: "good token", hdr: []string{"Authorization", "Bearer secret-a"}, code: 204, wantTenant: "team-a"},
		{name: "good token, matching header", hdr: []string{"Authorization", "Bearer secret-b"}, tenantHdr: "team-b", code: 204, wantTenant: "team-b"},
		{name: "missing credential", code: 401},
		{name: "header alone", tenantHdr: "team-a", code: 401},
		{name: "unknown token", hdr: []string{"Authorization", "Bearer nope"}, tenantHdr: "team-a", code: 401},
		{name: "malformed authorization", hdr: []string{"Authorization", "Basic c2VjcmV0LWE="}, code: 401},
		{name: "empty bearer", hdr: []string{"Authorization", "Bearer "}, code: 401},
		{name: "mismatched header", hdr: []string{"Authorization", "Bearer secret-a"}, tenantHdr: "team-b", code: 403},
		{name: "token of another tenant", hdr: []string{"Authorization", "Bearer secret-b"}, tenantHdr: "team-a", code: 403},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := map[string]int{"team-a": e.stored("team-a"), "team-b": e.stored("team-b")}
			w := e.push(tc.tenantHdr, limitSeries("auth", i, 1, ts), tc.hdr...)
			require.Equal(t, tc.code, w.Code, w.Body.String())
			if tc.code == http.StatusUnauthorized {
				require.Contains(t, w.Header().Get("WWW-Authenticate"), "Bearer")
			}
			for tenant, n := range before {
				want := n
				if tenant == tc.wantTenant {
					want++
				}
				require.Equal(t, want, e.stored(tenant), "tenant %s", tenant)
			}
		})
	}
	require.ElementsMatch(t, []string{"team-a", "team-b"}, e.mgr.Tenants(), "no tenant named by a header alone was created")
}

func TestTenantUsage(t *testing.T) {
	e := newLimitsEnv(t, "tenants: {a: {max_labels_per_series: 2}}\n", nil)
	ts := e.now.UnixMilli()
	ok := limitSeries("m", 0, 4, ts)
	bad := prompb.TimeSeries{Labels: lbls("__name__", "m", "x", "1", "y", "2"), Samples: []prompb.Sample{{Value: 1, Timestamp: ts}}}
	body := encodeV1(t, &prompb.WriteRequest{Timeseries: append(ok, bad)})
	require.Equal(t, http.StatusBadRequest, post(e.handler, body, map[string]string{DefaultTenantHeader: "a"}).Code)
	require.Equal(t, http.StatusNoContent, e.push("b", ok).Code)

	u := e.handler.Usage()
	require.Len(t, u, 2)
	require.Equal(t, "a", u[0].Tenant)
	require.Equal(t, uint64(1), u[0].Requests)
	require.Equal(t, uint64(5), u[0].SamplesReceived)
	require.Equal(t, uint64(len(body)), u[0].BytesReceived)
	require.Equal(t, map[string]uint64{"rate_limited": 0, "max_active_series": 0, "label_limit": 1, "rejected": 0}, u[0].SamplesDiscarded)
	require.Equal(t, uint64(4), u[1].SamplesReceived)
	require.Equal(t, uint64(0), u[1].SamplesDiscarded["label_limit"])

	require.Equal(t, 5.0, testutil.ToFloat64(counterOf(t, e.reg, "strata_receive_tenant_samples_received_total", map[string]string{"tenant": "a"})))
	require.Equal(t, float64(len(body)), testutil.ToFloat64(counterOf(t, e.reg, "strata_receive_tenant_received_bytes_total", map[string]string{"tenant": "a"})))
}

// TestLimitActiveSeriesThroughTheRing checks that a series refused by an
// owner at its limit turns into a 429 at the node the client wrote to, over
// replication, and that each node takes its share of the limit.
func TestLimitActiveSeriesThroughTheRing(t *testing.T) {
	lim, err := limits.NewOverrides("", limits.Limits{MaxActiveSeries: 6}, nil, nil)
	require.NoError(t, err)
	// Four nodes at RF 2 hold half of the series each: a share of 3.
	nodes := startClusterWithOptions(t, 2, func(o *Options) { o.Limits = lim }, "", "", "", "")
	ts := time.Now().UnixMilli()
	var codes []int
	var body string
	for i := 0; i < 40; i++ {
		w := postTo(t, nodes[0].handler, limitSeries("ring", i, 1, ts))
		codes = append(codes, w.Code)
		if w.Code == http.StatusTooManyRequests && body == "" {
			body = w.Body.String()
			require.Equal(t, strconv.Itoa(seriesLimitRetryAfter), w.Header().Get("Retry-After"))
		}
	}
	require.Contains(t, codes, http.StatusTooManyRequests)
	require.Contains(t, body, "by the active series limit")
	require.Contains(t, body, "max_active_series=3")
	total := 0
	for _, n := range nodes {
		active := n.mgr.ActiveSeries()[DefaultTenant]
		require.LessOrEqual(t, active, 3, "node %s", n.name)
		total += active
	}
	require.Greater(t, total, 0)
	// Every series the client got a 204 for is on both its owners; a refused
	// one may be on the owner that had room.
	accepted := 0
	for _, c := range codes {
		if c == http.StatusNoContent {
			accepted++
		}
	}
	require.GreaterOrEqual(t, total, 2*accepted)
}

// TestLimitExemplarsThroughTheRing checks that a router reports the exemplars
// of a tenant whose max_exemplars is 0 as not written.
func TestLimitExemplarsThroughTheRing(t *testing.T) {
	lim, err := limits.NewOverrides("", limits.Limits{}, nil, nil)
	require.NoError(t, err)
	nodes := startClusterWithOptions(t, 2, func(o *Options) { o.Limits = lim }, "", "")
	b := newV2Builder()
	ts := time.Now().UnixMilli()
	b.add(writev2.TimeSeries{
		LabelsRefs: b.refs("__name__", "m"),
		Samples:    []writev2.Sample{{Value: 1, Timestamp: ts}},
		Exemplars:  []writev2.Exemplar{{LabelsRefs: b.refs("trace_id", "abc"), Value: 1, Timestamp: ts}},
	})
	w := post(nodes[0].handler, encodeV2(t, b.build()), v2Headers)
	require.Equal(t, http.StatusNoContent, w.Code, w.Body.String())
	require.Equal(t, [3]string{"1", "0", "0"}, written(w))
}

// FuzzLabelLimits checks that the write path's quick label limit check
// refuses exactly the series limits.CheckSeries refuses, and names the limit.
func FuzzLabelLimits(f *testing.F) {
	f.Add("m", "job", "api", "instance", "host:9090", 3, 8, 10)
	f.Add("a_long_metric_name", "x", "", "y", "\xff", 1, 0, 0)
	f.Fuzz(func(t *testing.T, name, n1, v1, n2, v2 string, maxLabels, maxName, maxValue int) {
		l := limits.Limits{MaxLabelsPerSeries: maxLabels, MaxLabelNameLength: maxName, MaxLabelValueLength: maxValue}
		sl := []wireLabel{{"__name__", name}, {n1, v1}, {n2, v2}}
		req := &request{labels: sl, series: []wireSeries{{labels: span{0, int32(len(sl))}}}}
		checkLabelLimits(req, l)
		lset := labels.FromStrings("__name__", name, n1, v1, n2, v2)
		want := limits.CheckSeries(lset, l)
		if lset.Len() != len(sl) {
			return // duplicate names collapse in labels.Labels; the write path rejects them anyway
		}
		got := req.series[0].err
		if (got == nil) != (want == nil) {
			t.Fatalf("labels %v, limits %+v: write path %v, CheckSeries %v", sl, l, got, want)
		}
		if got != nil {
			le, ok := errors.AsType[*limits.Error](got)
			if !ok || le.Status != http.StatusBadRequest {
				t.Fatalf("not a 400 *limits.Error: %v", got)
			}
			if seriesReason(got) != reasonLabelLimit {
				t.Fatalf("reason %v", seriesReason(got))
			}
		}
	})
}
