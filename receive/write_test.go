package receive

import (
	"fmt"
	"math"
	"net/http"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/histogram"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/metadata"
	"github.com/prometheus/prometheus/model/value"
	"github.com/prometheus/prometheus/prompb"
	writev2 "github.com/prometheus/prometheus/prompb/io/prometheus/write/v2"
	"github.com/prometheus/prometheus/tsdb"
	"github.com/stretchr/testify/require"
)

// storageModes runs a test against an appender that implements storage.GetRef
// (the allocation-free path for known series) and one that hides it.
var storageModes = []struct {
	name       string
	hideGetRef bool
}{{"getref", false}, {"plain", true}}

func TestWriteV1Floats(t *testing.T) {
	for _, mode := range storageModes {
		t.Run(mode.name, func(t *testing.T) {
			now := time.Now().UnixMilli()
			store := newTestStorage(t, nil)
			store.hideGetRef = mode.hideGetRef
			reg := prometheus.NewRegistry()
			h := NewHandler(Options{}, store, reg, nil)

			req := &prompb.WriteRequest{Timeseries: []prompb.TimeSeries{
				{Labels: lbls("__name__", "up", "instance", "a:9100", "job", "node"), Samples: []prompb.Sample{{Value: 1, Timestamp: now - 2000}, {Value: 0, Timestamp: now - 1000}}},
				{Labels: lbls("__name__", "node_load1", "instance", "a:9100", "job", "node"), Samples: []prompb.Sample{{Value: 0.25, Timestamp: now}}},
				{Labels: lbls("__name__", "weird", "job", "node"), Samples: []prompb.Sample{{Value: math.Inf(-1), Timestamp: now}}},
				// The same series again later in the request is fine.
				{Labels: lbls("__name__", "up", "instance", "a:9100", "job", "node"), Samples: []prompb.Sample{{Value: 1, Timestamp: now}}},
			}}
			w := post(h, encodeV1(t, req), nil)
			require.Equal(t, http.StatusNoContent, w.Code, w.Body.String())
			require.Empty(t, w.Header().Get(HeaderSamplesWritten), "no written headers for 1.0")

			require.Equal(t, dump{
				`{__name__="up", instance="a:9100", job="node"}`:         {fmt.Sprintf("%d:1", now-2000), fmt.Sprintf("%d:0", now-1000), fmt.Sprintf("%d:1", now)},
				`{__name__="node_load1", instance="a:9100", job="node"}`: {fmt.Sprintf("%d:0.25", now)},
				`{__name__="weird", job="node"}`:                         {fmt.Sprintf("%d:-Inf", now)},
			}, store.dump(DefaultTenant))
			require.Equal(t, 5.0, testutil.ToFloat64(h.metrics.samples))
			require.Equal(t, 1.0, testutil.ToFloat64(h.metrics.requests.WithLabelValues("204", "rw1")))

			// A retry of the same request (the sender did not see our answer) is accepted.
			w = post(h, encodeV1(t, req), nil)
			require.Equal(t, http.StatusNoContent, w.Code, w.Body.String())
			require.Equal(t, 5, sampleCount(store.dump(DefaultTenant)))
		})
	}
}

func TestWriteV1Histograms(t *testing.T) {
	now := time.Now().UnixMilli()
	store := newTestStorage(t, nil)
	h := NewHandler(Options{}, store, nil, nil)

	fh := testHistogram(3).ToFloat(nil)
	custom := &histogram.Histogram{
		Schema: histogram.CustomBucketsSchema, Count: 3, Sum: 10,
		PositiveSpans: []histogram.Span{{Length: 2}}, PositiveBuckets: []int64{1, 1}, CustomValues: []float64{1, 5},
	}
	req := &prompb.WriteRequest{Timeseries: []prompb.TimeSeries{
		{Labels: lbls("__name__", "rpc_seconds", "job", "api"), Histograms: []prompb.Histogram{
			prompb.FromIntHistogram(now-1000, testHistogram(0)), prompb.FromIntHistogram(now, testHistogram(1)),
		}},
		{Labels: lbls("__name__", "rpc_float_seconds", "job", "api"), Histograms: []prompb.Histogram{prompb.FromFloatHistogram(now, fh)}},
		{Labels: lbls("__name__", "rpc_nhcb_seconds", "job", "api"), Histograms: []prompb.Histogram{prompb.FromIntHistogram(now, custom)}},
	}}
	w := post(h, encodeV1(t, req), nil)
	require.Equal(t, http.StatusNoContent, w.Code, w.Body.String())

	require.Equal(t, dump{
		`{__name__="rpc_seconds", job="api"}`: {
			fmt.Sprintf("%d:%s", now-1000, formatHistogram(testHistogram(0), nil)),
			fmt.Sprintf("%d:%s", now, formatHistogram(testHistogram(1), nil)),
		},
		`{__name__="rpc_float_seconds", job="api"}`: {fmt.Sprintf("%d:%s", now, formatHistogram(nil, fh))},
		`{__name__="rpc_nhcb_seconds", job="api"}`:  {fmt.Sprintf("%d:%s", now, formatHistogram(custom, nil))},
	}, store.dump(DefaultTenant))
	require.Equal(t, 4.0, testutil.ToFloat64(h.metrics.histograms))
}

func TestWriteV1ExemplarsAndMetadata(t *testing.T) {
	now := time.Now().UnixMilli()
	store := newTestStorage(t, nil)
	h := NewHandler(Options{}, store, nil, nil)

	req := &prompb.WriteRequest{
		Timeseries: []prompb.TimeSeries{
			// Exemplars in the series of their sample.
			{
				Labels:    lbls("__name__", "http_requests_total", "job", "api"),
				Samples:   []prompb.Sample{{Value: 10, Timestamp: now}},
				Exemplars: []prompb.Exemplar{{Labels: lbls("trace_id", "abc"), Value: 1, Timestamp: now - 10}},
			},
			// Prometheus style: exemplars in series of their own, before and after
			// the sample they belong to, out of timestamp order.
			{Labels: lbls("__name__", "rpc_total", "job", "api"), Exemplars: []prompb.Exemplar{{Labels: lbls("trace_id", "t2"), Value: 2, Timestamp: now - 5}}},
			{Labels: lbls("__name__", "rpc_total", "job", "api"), Samples: []prompb.Sample{{Value: 7, Timestamp: now}}},
			{Labels: lbls("__name__", "rpc_total", "job", "api"), Exemplars: []prompb.Exemplar{{Labels: lbls("trace_id", "t1"), Value: 1, Timestamp: now - 6}}},
			// An exemplar without any sample of its series is dropped, but does
			// not fail the request.
			{Labels: lbls("__name__", "lonely_total", "job", "api"), Exemplars: []prompb.Exemplar{{Labels: lbls("trace_id", "t3"), Value: 3, Timestamp: now}}},
			// A histogram family: metadata applies to its _bucket series.
			{Labels: lbls("__name__", "latency_seconds_bucket", "le", "+Inf"), Samples: []prompb.Sample{{Value: 3, Timestamp: now}}},
		},
		Metadata: []prompb.MetricMetadata{
			{Type: prompb.MetricMetadata_COUNTER, MetricFamilyName: "http_requests_total", Help: "Requests served.", Unit: "requests"},
			{Type: prompb.MetricMetadata_HISTOGRAM, MetricFamilyName: "latency_seconds", Help: "Latency.", Unit: "seconds"},
		},
	}
	w := post(h, encodeV1(t, req), nil)
	require.Equal(t, http.StatusNoContent, w.Code, w.Body.String())

	db := store.db(DefaultTenant)
	require.Equal(t, map[string][]ex{
		`{__name__="http_requests_total", job="api"}`: {{Labels: `{trace_id="abc"}`, Value: 1, Ts: now - 10}},
		`{__name__="rpc_total", job="api"}`: {
			{Labels: `{trace_id="t1"}`, Value: 1, Ts: now - 6},
			{Labels: `{trace_id="t2"}`, Value: 2, Ts: now - 5},
		},
	}, queryExemplars(t, db))
	require.Equal(t, 3.0, testutil.ToFloat64(h.metrics.exemplars))
	require.Equal(t, 1.0, testutil.ToFloat64(h.metrics.exemplarsDropped[exemplarNoSample]))

	require.Equal(t, map[string]metadata.Metadata{
		`{__name__="http_requests_total", job="api"}`:    {Type: model.MetricTypeCounter, Help: "Requests served.", Unit: "requests"},
		`{__name__="latency_seconds_bucket", le="+Inf"}`: {Type: model.MetricTypeHistogram, Help: "Latency.", Unit: "seconds"},
	}, walMetadata(t, db))
}

// TestWriteV1IgnoresInvalidMetadata checks that family metadata with invalid
// UTF-8 is not stored, while its series are.
func TestWriteV1IgnoresInvalidMetadata(t *testing.T) {
	store := newTestStorage(t, nil)
	h := NewHandler(Options{}, store, nil, nil)
	req := &prompb.WriteRequest{
		Timeseries: []prompb.TimeSeries{
			{Labels: lbls("__name__", "bad_help", "job", "api"), Samples: []prompb.Sample{{Value: 1, Timestamp: time.Now().UnixMilli()}}},
			{Labels: lbls("__name__", "good_help", "job", "api"), Samples: []prompb.Sample{{Value: 1, Timestamp: time.Now().UnixMilli()}}},
		},
		Metadata: []prompb.MetricMetadata{
			{Type: prompb.MetricMetadata_GAUGE, MetricFamilyName: "bad_help", Help: "bad \xff help"},
			{Type: prompb.MetricMetadata_GAUGE, MetricFamilyName: "good_help", Help: "fine"},
		},
	}
	w := post(h, encodeV1(t, req), nil)
	require.Equal(t, http.StatusNoContent, w.Code, w.Body.String())
	db := store.db(DefaultTenant)
	require.Equal(t, 2, sampleCount(store.dump(DefaultTenant)))
	require.Equal(t, map[string]metadata.Metadata{
		`{__name__="good_help", job="api"}`: {Type: model.MetricTypeGauge, Help: "fine"},
	}, walMetadata(t, db))
}

// TestWriteV2 writes every kind of data Remote-Write 2.0 carries and checks that
// storage has it and that the written headers match.
func TestWriteV2(t *testing.T) {
	for _, mode := range storageModes {
		t.Run(mode.name, func(t *testing.T) {
			now := time.Now().UnixMilli()
			store := newTestStorage(t, nil)
			store.hideGetRef = mode.hideGetRef
			h := NewHandler(Options{}, store, nil, nil)

			b := newV2Builder()
			b.add(writev2.TimeSeries{
				LabelsRefs: b.refs("__name__", "http_requests_total", "code", "200", "job", "api"),
				Samples:    []writev2.Sample{{Value: 5, Timestamp: now - 1000, StartTimestamp: now - 60_000}, {Value: 8, Timestamp: now, StartTimestamp: now - 60_000}},
				Exemplars: []writev2.Exemplar{
					{LabelsRefs: b.refs("trace_id", "t-2"), Value: 2, Timestamp: now - 2},
					{LabelsRefs: b.refs("trace_id", "t-1"), Value: 1, Timestamp: now - 3},
				},
				Metadata: b.meta(writev2.Metadata_METRIC_TYPE_COUNTER, "Requests served.", "requests"),
			})
			b.add(writev2.TimeSeries{
				LabelsRefs: b.refs("__name__", "temperature", "room", "lab"),
				Samples:    []writev2.Sample{{Value: 21.5, Timestamp: now}},
				Metadata:   b.meta(writev2.Metadata_METRIC_TYPE_GAUGE, "Room temperature.", "celsius"),
			})
			b.add(writev2.TimeSeries{
				LabelsRefs: b.refs("__name__", "rpc_seconds", "job", "api"),
				Histograms: []writev2.Histogram{func() writev2.Histogram {
					hp := writev2.FromIntHistogram(now, testHistogram(2))
					hp.StartTimestamp = now - 30_000
					return hp
				}()},
				Exemplars: []writev2.Exemplar{{LabelsRefs: b.refs("trace_id", "h-1"), Value: 0.3, Timestamp: now}},
				Metadata:  b.meta(writev2.Metadata_METRIC_TYPE_HISTOGRAM, "RPC latency.", "seconds"),
			})
			b.add(writev2.TimeSeries{
				LabelsRefs: b.refs("__name__", "rpc_float_seconds", "job", "api"),
				Histograms: []writev2.Histogram{writev2.FromFloatHistogram(now, testHistogram(4).ToFloat(nil))},
			})
			// A Prometheus-style exemplar-only series, attached to the counter above.
			b.add(writev2.TimeSeries{
				LabelsRefs: b.refs("__name__", "http_requests_total", "code", "200", "job", "api"),
				Exemplars:  []writev2.Exemplar{{LabelsRefs: b.refs("trace_id", "t-0"), Value: 0, Timestamp: now - 4}},
				Metadata:   b.meta(writev2.Metadata_METRIC_TYPE_COUNTER, "Requests served.", "requests"),
			})
			w := post(h, encodeV2(t, b.build()), v2Headers)
			require.Equal(t, http.StatusNoContent, w.Code, w.Body.String())
			require.Equal(t, [3]string{"3", "2", "4"}, written(w))

			// Start timestamps become zero samples before the first sample.
			zero := &histogram.Histogram{Schema: testHistogram(2).Schema, ZeroThreshold: testHistogram(2).ZeroThreshold}
			require.Equal(t, dump{
				`{__name__="http_requests_total", code="200", job="api"}`: {fmt.Sprintf("%d:0", now-60_000), fmt.Sprintf("%d:5", now-1000), fmt.Sprintf("%d:8", now)},
				`{__name__="temperature", room="lab"}`:                    {fmt.Sprintf("%d:21.5", now)},
				`{__name__="rpc_seconds", job="api"}`:                     {fmt.Sprintf("%d:%s", now-30_000, formatHistogram(zero, nil)), fmt.Sprintf("%d:%s", now, formatHistogram(testHistogram(2), nil))},
				`{__name__="rpc_float_seconds", job="api"}`:               {fmt.Sprintf("%d:%s", now, formatHistogram(nil, testHistogram(4).ToFloat(nil)))},
			}, store.dump(DefaultTenant))

			db := store.db(DefaultTenant)
			require.Equal(t, map[string][]ex{
				`{__name__="http_requests_total", code="200", job="api"}`: {
					{Labels: `{trace_id="t-0"}`, Value: 0, Ts: now - 4},
					{Labels: `{trace_id="t-1"}`, Value: 1, Ts: now - 3},
					{Labels: `{trace_id="t-2"}`, Value: 2, Ts: now - 2},
				},
				`{__name__="rpc_seconds", job="api"}`: {{Labels: `{trace_id="h-1"}`, Value: 0.3, Ts: now}},
			}, queryExemplars(t, db))

			require.Equal(t, map[string]metadata.Metadata{
				`{__name__="http_requests_total", code="200", job="api"}`: {Type: model.MetricTypeCounter, Help: "Requests served.", Unit: "requests"},
				`{__name__="temperature", room="lab"}`:                    {Type: model.MetricTypeGauge, Help: "Room temperature.", Unit: "celsius"},
				`{__name__="rpc_seconds", job="api"}`:                     {Type: model.MetricTypeHistogram, Help: "RPC latency.", Unit: "seconds"},
			}, walMetadata(t, db))
		})
	}
}

// TestPartialWrite sends requests with good and permanently bad samples: the good
// ones are written and queryable, the answer is 400 naming the first bad series,
// and the Remote-Write 2.0 headers count exactly what storage has.
func TestPartialWrite(t *testing.T) {
	now := time.Now().UnixMilli()
	old := now - time.Hour.Milliseconds()

	t.Run("rw1", func(t *testing.T) {
		store := newTestStorage(t, nil)
		reg := prometheus.NewRegistry()
		h := NewHandler(Options{}, store, reg, nil)
		seed := &prompb.WriteRequest{Timeseries: []prompb.TimeSeries{
			{Labels: lbls("__name__", "a"), Samples: []prompb.Sample{{Value: 1, Timestamp: now}}},
			{Labels: lbls("__name__", "b"), Samples: []prompb.Sample{{Value: 1, Timestamp: now}}},
		}}
		require.Equal(t, http.StatusNoContent, post(h, encodeV1(t, seed), nil).Code)

		req := &prompb.WriteRequest{Timeseries: []prompb.TimeSeries{
			{Labels: lbls("__name__", "good"), Samples: []prompb.Sample{{Value: 1, Timestamp: now - 10}, {Value: 2, Timestamp: now}}},
			// Beyond the out-of-order window.
			{Labels: lbls("__name__", "a"), Samples: []prompb.Sample{{Value: 5, Timestamp: old}, {Value: 6, Timestamp: now + 1}}},
			// Same timestamp, other value.
			{Labels: lbls("__name__", "b"), Samples: []prompb.Sample{{Value: 2, Timestamp: now}}},
			{Labels: lbls("__name__", "bad", "z", "1", "a", "2"), Samples: []prompb.Sample{{Value: 1, Timestamp: now}}},
			// Inside the out-of-order window.
			{Labels: lbls("__name__", "b"), Samples: []prompb.Sample{{Value: 0.5, Timestamp: now - 60_000}}},
		}}
		w := post(h, encodeV1(t, req), nil)
		require.Equal(t, http.StatusBadRequest, w.Code)
		require.Equal(t, `3 of 7 samples rejected (3 series), first: {__name__="a"}: too old sample`, mustBody(t, w.Body))

		require.Equal(t, dump{
			`{__name__="good"}`: {fmt.Sprintf("%d:1", now-10), fmt.Sprintf("%d:2", now)},
			`{__name__="a"}`:    {fmt.Sprintf("%d:1", now), fmt.Sprintf("%d:6", now+1)},
			`{__name__="b"}`:    {fmt.Sprintf("%d:0.5", now-60_000), fmt.Sprintf("%d:1", now)},
		}, store.dump(DefaultTenant))
		require.Equal(t, 1.0, testutil.ToFloat64(h.metrics.rejected[reasonTooOld]))
		require.Equal(t, 1.0, testutil.ToFloat64(h.metrics.rejected[reasonDuplicate]))
		require.Equal(t, 1.0, testutil.ToFloat64(h.metrics.rejected[reasonInvalidLabels]))
		require.Equal(t, 6.0, testutil.ToFloat64(h.metrics.samples))
		require.Equal(t, 1.0, testutil.ToFloat64(h.metrics.requests.WithLabelValues("400", "rw1")))
	})

	t.Run("rw2", func(t *testing.T) {
		store := newTestStorage(t, nil)
		h := NewHandler(Options{}, store, nil, nil)
		sb := newV2Builder()
		sb.add(writev2.TimeSeries{LabelsRefs: sb.refs("__name__", "a"), Samples: []writev2.Sample{{Value: 1, Timestamp: now}}})
		sb.add(writev2.TimeSeries{LabelsRefs: sb.refs("__name__", "h"), Histograms: []writev2.Histogram{writev2.FromIntHistogram(now, testHistogram(0))}})
		require.Equal(t, http.StatusNoContent, post(h, encodeV2(t, sb.build()), v2Headers).Code)
		before := sampleCount(store.dump(DefaultTenant))

		b := newV2Builder()
		b.add(writev2.TimeSeries{
			LabelsRefs: b.refs("__name__", "a"),
			Samples:    []writev2.Sample{{Value: 2, Timestamp: old}},
			Exemplars:  []writev2.Exemplar{{LabelsRefs: b.refs("trace_id", "x"), Value: 1, Timestamp: old}},
		})
		b.add(writev2.TimeSeries{
			LabelsRefs: b.refs("__name__", "good", "job", "x"),
			Samples:    []writev2.Sample{{Value: 1, Timestamp: now - 1}, {Value: 2, Timestamp: now}},
			Exemplars:  []writev2.Exemplar{{LabelsRefs: b.refs("trace_id", "y"), Value: 1, Timestamp: now}},
		})
		b.add(writev2.TimeSeries{LabelsRefs: b.refs("__name__", "h"), Histograms: []writev2.Histogram{
			writev2.FromIntHistogram(old, testHistogram(1)), writev2.FromIntHistogram(now+1, testHistogram(2)),
		}})
		b.add(writev2.TimeSeries{LabelsRefs: b.refs("__name__", "good_h"), Histograms: []writev2.Histogram{writev2.FromFloatHistogram(now, testHistogram(3).ToFloat(nil))}})
		w := post(h, encodeV2(t, b.build()), v2Headers)
		require.Equal(t, http.StatusBadRequest, w.Code)
		require.Equal(t, `2 of 6 samples rejected (2 series), first: {__name__="a"}: too old sample`, mustBody(t, w.Body))
		require.Equal(t, [3]string{"2", "2", "1"}, written(w))

		d := store.dump(DefaultTenant)
		require.Equal(t, before+4, sampleCount(d))
		require.Len(t, d[`{__name__="good", job="x"}`], 2)
		require.Len(t, d[`{__name__="good_h"}`], 1)
		require.Len(t, d[`{__name__="h"}`], 2)
		require.Len(t, queryExemplars(t, store.db(DefaultTenant)), 1)
		require.Equal(t, 1.0, testutil.ToFloat64(h.metrics.exemplarsDropped[exemplarSampleRejected]))
	})

	t.Run("out of order without window", func(t *testing.T) {
		store := newTestStorage(t, func(o *tsdb.Options) { o.OutOfOrderTimeWindow = 0 })
		h := NewHandler(Options{}, store, nil, nil)
		seed := &prompb.WriteRequest{Timeseries: []prompb.TimeSeries{{Labels: lbls("__name__", "a"), Samples: []prompb.Sample{{Value: 1, Timestamp: now}}}}}
		require.Equal(t, http.StatusNoContent, post(h, encodeV1(t, seed), nil).Code)

		req := &prompb.WriteRequest{Timeseries: []prompb.TimeSeries{
			{Labels: lbls("__name__", "a"), Samples: []prompb.Sample{{Value: 2, Timestamp: now - 1000}}},
			// Older than the head accepts for a new series.
			{Labels: lbls("__name__", "new"), Samples: []prompb.Sample{{Value: 2, Timestamp: now - 2*time.Hour.Milliseconds()}}},
			{Labels: lbls("__name__", "fine"), Samples: []prompb.Sample{{Value: 3, Timestamp: now}}},
		}}
		w := post(h, encodeV1(t, req), nil)
		require.Equal(t, http.StatusBadRequest, w.Code)
		require.Equal(t, `2 of 3 samples rejected (2 series), first: {__name__="a"}: out of order sample`, mustBody(t, w.Body))
		require.Equal(t, 1.0, testutil.ToFloat64(h.metrics.rejected[reasonOutOfOrder]))
		require.Equal(t, 1.0, testutil.ToFloat64(h.metrics.rejected[reasonOutOfBounds]))
		require.Equal(t, dump{
			`{__name__="a"}`:    {fmt.Sprintf("%d:1", now)},
			`{__name__="fine"}`: {fmt.Sprintf("%d:3", now)},
		}, store.dump(DefaultTenant))
	})
}

// TestNaNAndStaleMarkers checks that NaN and stale markers are stored as
// Prometheus stores them, and that a stale marker ends the series.
func TestNaNAndStaleMarkers(t *testing.T) {
	now := time.Now().UnixMilli()
	store := newTestStorage(t, nil)
	h := NewHandler(Options{}, store, nil, nil)
	stale := math.Float64frombits(value.StaleNaN)

	b := newV2Builder()
	b.add(writev2.TimeSeries{LabelsRefs: b.refs("__name__", "gone", "job", "x"), Samples: []writev2.Sample{{Value: 1, Timestamp: now - 30_000}, {Value: stale, Timestamp: now - 15_000}}})
	b.add(writev2.TimeSeries{LabelsRefs: b.refs("__name__", "nan", "job", "x"), Samples: []writev2.Sample{{Value: math.NaN(), Timestamp: now - 15_000}}})
	b.add(writev2.TimeSeries{LabelsRefs: b.refs("__name__", "h", "job", "x"), Histograms: []writev2.Histogram{
		writev2.FromIntHistogram(now-30_000, testHistogram(0)),
		writev2.FromIntHistogram(now-15_000, &histogram.Histogram{Sum: stale}),
	}})
	w := post(h, encodeV2(t, b.build()), v2Headers)
	require.Equal(t, http.StatusNoContent, w.Code, w.Body.String())
	require.Equal(t, [3]string{"3", "2", "0"}, written(w))

	d := store.dump(DefaultTenant)
	require.Equal(t, []string{fmt.Sprintf("%d:1", now-30_000), fmt.Sprintf("%d:stale", now-15_000)}, d[`{__name__="gone", job="x"}`])
	require.Equal(t, []string{fmt.Sprintf("%d:NaN", now-15_000)}, d[`{__name__="nan", job="x"}`])
	require.Len(t, d[`{__name__="h", job="x"}`], 2)

	db := store.db(DefaultTenant)
	job := labels.MustNewMatcher(labels.MatchEqual, "job", "x")
	before := instantRead(t, db, now-20_000, job)
	require.Contains(t, before, `{__name__="gone", job="x"}`)
	after := instantRead(t, db, now, job)
	require.NotContains(t, after, `{__name__="gone", job="x"}`, "a stale marker ends the series")
	require.Contains(t, before, `{__name__="h", job="x"}`)
	require.NotContains(t, after, `{__name__="h", job="x"}`, "a stale marker ends a histogram series")
	require.Contains(t, after, `{__name__="nan", job="x"}`, "a plain NaN is a value")
	require.True(t, math.IsNaN(after[`{__name__="nan", job="x"}`]))
}

func TestTenantIsolation(t *testing.T) {
	now := time.Now().UnixMilli()
	store := newTestStorage(t, nil)
	h := NewHandler(Options{TenantHeader: "X-Scope-OrgID"}, store, nil, nil)
	send := func(tenant, name string) {
		req := &prompb.WriteRequest{Timeseries: []prompb.TimeSeries{{Labels: lbls("__name__", name), Samples: []prompb.Sample{{Value: 1, Timestamp: now}}}}}
		w := post(h, encodeV1(t, req), map[string]string{"X-Scope-OrgID": tenant})
		require.Equal(t, http.StatusNoContent, w.Code, w.Body.String())
	}
	send("team-a", "a_metric")
	send("team-b", "b_metric")
	send("", "default_metric")
	// The default header is not special once another is configured.
	w := post(h, encodeV1(t, &prompb.WriteRequest{Timeseries: []prompb.TimeSeries{{Labels: lbls("__name__", "other"), Samples: []prompb.Sample{{Value: 1, Timestamp: now}}}}}), map[string]string{DefaultTenantHeader: "team-a"})
	require.Equal(t, http.StatusNoContent, w.Code)

	require.Equal(t, []string{DefaultTenant, "team-a", "team-b"}, store.tenants())
	require.Equal(t, dump{`{__name__="a_metric"}`: {fmt.Sprintf("%d:1", now)}}, store.dump("team-a"))
	require.Equal(t, dump{`{__name__="b_metric"}`: {fmt.Sprintf("%d:1", now)}}, store.dump("team-b"))
	require.Equal(t, dump{
		`{__name__="default_metric"}`: {fmt.Sprintf("%d:1", now)},
		`{__name__="other"}`:          {fmt.Sprintf("%d:1", now)},
	}, store.dump(DefaultTenant))
}

func TestEmptyLabelValuesAreDropped(t *testing.T) {
	now := time.Now().UnixMilli()
	store := newTestStorage(t, nil)
	h := NewHandler(Options{}, store, nil, nil)
	req := &prompb.WriteRequest{Timeseries: []prompb.TimeSeries{
		{Labels: lbls("__name__", "x", "a", "", "job", "j"), Samples: []prompb.Sample{{Value: 1, Timestamp: now - 1}}},
		{Labels: lbls("__name__", "x", "job", "j"), Samples: []prompb.Sample{{Value: 2, Timestamp: now}}},
	}}
	w := post(h, encodeV1(t, req), nil)
	require.Equal(t, http.StatusNoContent, w.Code, w.Body.String())
	require.Equal(t, dump{`{__name__="x", job="j"}`: {fmt.Sprintf("%d:1", now-1), fmt.Sprintf("%d:2", now)}}, store.dump(DefaultTenant))
}

func TestDisableExemplars(t *testing.T) {
	now := time.Now().UnixMilli()
	store := newTestStorage(t, func(o *tsdb.Options) { o.EnableExemplarStorage, o.MaxExemplars = false, 0 })
	h := NewHandler(Options{DisableExemplars: true}, store, nil, nil)
	b := newV2Builder()
	b.add(writev2.TimeSeries{
		LabelsRefs: b.refs("__name__", "x"),
		Samples:    []writev2.Sample{{Value: 1, Timestamp: now}},
		Exemplars:  []writev2.Exemplar{{LabelsRefs: b.refs("trace_id", "1"), Value: 1, Timestamp: now}},
	})
	w := post(h, encodeV2(t, b.build()), v2Headers)
	require.Equal(t, http.StatusNoContent, w.Code, w.Body.String())
	require.Equal(t, [3]string{"1", "0", "0"}, written(w))
	require.Equal(t, 1.0, testutil.ToFloat64(h.metrics.exemplarsDropped[exemplarDisabled]))
}

// TestExemplarsRefusedByStorage checks that exemplars storage refuses are left
// out of the written count without failing the request.
func TestExemplarsRefusedByStorage(t *testing.T) {
	now := time.Now().UnixMilli()
	store := newTestStorage(t, nil)
	h := NewHandler(Options{}, store, nil, nil)
	b := newV2Builder()
	b.add(writev2.TimeSeries{
		LabelsRefs: b.refs("__name__", "x"),
		Samples:    []writev2.Sample{{Value: 1, Timestamp: now}},
		Exemplars: []writev2.Exemplar{
			{LabelsRefs: b.refs("trace_id", "ok"), Value: 1, Timestamp: now - 1},
			{LabelsRefs: b.refs("trace_id", fmt.Sprintf("%0200d", 7)), Value: 1, Timestamp: now}, // over 128 runes
			{LabelsRefs: b.refs("", "no name"), Value: 1, Timestamp: now},                        // invalid
		},
	})
	w := post(h, encodeV2(t, b.build()), v2Headers)
	require.Equal(t, http.StatusNoContent, w.Code, w.Body.String())
	require.Equal(t, [3]string{"1", "0", "1"}, written(w))
	require.Equal(t, 1.0, testutil.ToFloat64(h.metrics.exemplarsDropped[exemplarStorage]))
	require.Equal(t, 1.0, testutil.ToFloat64(h.metrics.exemplarsDropped[exemplarInvalid]))
	require.Len(t, queryExemplars(t, store.db(DefaultTenant))[`{__name__="x"}`], 1)
}

// TestConcurrentWrites writes from many goroutines into two tenants at once; run
// it with -race.
func TestConcurrentWrites(t *testing.T) {
	now := time.Now().UnixMilli()
	store := newTestStorage(t, nil)
	h := NewHandler(Options{}, store, nil, nil)
	const workers, requests, series = 6, 15, 50

	var wg sync.WaitGroup
	errs := make(chan string, workers*requests)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			tenant := fmt.Sprintf("tenant-%d", w%2)
			for i := range requests {
				b := newV2Builder()
				for s := range series {
					b.add(writev2.TimeSeries{
						LabelsRefs: b.refs("__name__", "m", "series", strconv.Itoa(s), "worker", strconv.Itoa(w)),
						Samples:    []writev2.Sample{{Value: float64(i), Timestamp: now + int64(i)}},
						Exemplars:  []writev2.Exemplar{{LabelsRefs: b.refs("trace_id", strconv.Itoa(i)), Value: 1, Timestamp: now + int64(i)}},
						Metadata:   b.meta(writev2.Metadata_METRIC_TYPE_GAUGE, "help", ""),
					})
				}
				w := post(h, encodeV2(t, b.build()), withHeader(v2Headers, DefaultTenantHeader, tenant))
				if w.Code != http.StatusNoContent {
					errs <- w.Body.String()
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
	for _, tenant := range []string{"tenant-0", "tenant-1"} {
		require.Equal(t, workers/2*requests*series, sampleCount(store.dump(tenant)))
	}
}
