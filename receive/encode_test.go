package receive

import (
	"fmt"
	"math"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/prometheus/prometheus/model/histogram"
	"github.com/prometheus/prometheus/model/value"
	"github.com/prometheus/prometheus/prompb"
	writev2 "github.com/prometheus/prometheus/prompb/io/prometheus/write/v2"
	"github.com/stretchr/testify/require"
)

// The round-trip property: for any selection of the series of a decoded request,
// decodeV2(encodeV2(selection)) has the selected series without an error, in
// order, with the same content as the write path reads it (labels as sent,
// samples, histograms and exemplars bit for bit, the metadata storage would get);
// the gogo decoder of the Prometheus module reads the same message the same way;
// and the symbol table starts with "" and holds each string it needs once.

func TestEncodeV2RoundTrip(t *testing.T) {
	// One encoder for every request and selection, as a pooled one is reused.
	var e encoder
	for _, tc := range []struct {
		name  string
		proto protocol
		body  []byte
	}{
		{name: "rw1", proto: protoV1, body: mustMarshal(t, rw1EncodeFixture())},
		{name: "rw2", proto: protoV2, body: mustMarshal(t, rw2EncodeFixture())},
		{name: "rw2 duplicate symbols and bad references", proto: protoV2, body: mustMarshal(t, rw2RawFixture())},
		{name: "rw1 empty", proto: protoV1, body: nil},
		{name: "rw2 empty", proto: protoV2, body: nil},
		{name: "rw1 again", proto: protoV1, body: mustMarshal(t, rw1EncodeFixture())},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req := decodeFixture(t, tc.proto, tc.body)
			for _, sub := range encodeSelections(len(req.series)) {
				t.Run(sub.name, func(t *testing.T) {
					prefix := []byte("already in the buffer")
					out := e.encodeV2(slices.Clone(prefix), req, sub.idx)
					require.Equal(t, prefix, out[:len(prefix)], "dst was overwritten")
					checkEncoded(t, req, sub.idx, out[len(prefix):])
					checkNoRequestStrings(t, &e)
				})
			}
		})
	}
}

// TestEncodeV2Content pins down details that the round trip of the fixtures
// must exercise, so that it does not pass vacuously.
func TestEncodeV2Content(t *testing.T) {
	for _, tc := range []struct {
		name     string
		proto    protocol
		body     []byte
		contains []string
	}{
		{
			name: "rw1", proto: protoV1, body: mustMarshal(t, rw1EncodeFixture()),
			contains: []string{
				`meta counter "Requests." ""`,          // exact family name
				`meta histogram "Latency." "seconds"`,  // family by suffix
				`meta gauge "New help." ""`,            // last family metadata wins
				" S(7ff0000000000002,2000,0)",          // stale marker
				" S(8000000000000000,4000,0)",          // -0
				" S(bff8000000000000,-5,0)",            // negative timestamp
				" H(t=30 st=0 hint=7 ",                 // invalid reset hint, as sent
				`"trace_id"="y", 3ff0000000000000 20)`, // exemplar of an exemplar-only series
				`"job"="a","__name__"="unsorted",`,     // labels as sent
				`"__name__"="x","empty"="",`,           // empty value as sent
				`float schema=-2 zt=3f50624dd2f1a9fc zc=8000000000000000 c=4010000000000000`, // float histogram, -0 zero count
				`meta none`,
				" H(t=2 st=0 hint=0 float schema=-53 ", // custom buckets
				"3ff0000000000000,4004000000000000, )", // their bounds
			},
		},
		{
			name: "rw2", proto: protoV2, body: mustMarshal(t, rw2EncodeFixture()),
			contains: []string{
				`meta counter "Requests." "requests"`,
				`meta unknown "Only help." ""`,
				" S(3ff0000000000000,1000,500)", // start timestamp
				" S(8000000000000000,4000,0)",   // -0
				" 8000000000000000 4000)",       // -0 exemplar
				" H(t=10 st=5 hint=0 int ",
				" H(t=20 st=15 hint=3 float ",
				`"trace_id"="y", 4000000000000000 1001)`,
				" H(t=2 st=0 hint=0 float schema=-53 ",
				"3ff0000000000000,4004000000000000, )",
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req := decodeFixture(t, tc.proto, tc.body)
			all := strings.Join(seriesContents(t, req, seriesIndexes(len(req.series))), "\n")
			for _, s := range tc.contains {
				require.Truef(t, strings.Contains(all, s), "no %q in the content", s)
			}
		})
	}
}

// TestEncodeV2Concurrent encodes subsets of one request from several goroutines,
// as the router does; under -race it shows that encoding only reads the request.
func TestEncodeV2Concurrent(t *testing.T) {
	req := decodeFixture(t, protoV2, mustMarshal(t, rw2EncodeFixture()))
	subs := encodeSelections(len(req.series))
	want := make([][]byte, len(subs))
	var e encoder
	for i, sub := range subs {
		want[i] = e.encodeV2(nil, req, sub.idx)
	}
	got := make([][]byte, len(subs))
	var wg sync.WaitGroup
	for i, sub := range subs {
		wg.Go(func() {
			var e encoder
			got[i] = e.encodeV2(nil, req, sub.idx)
		})
	}
	wg.Wait()
	require.Equal(t, want, got)
}

func FuzzEncodeV2RoundTrip(f *testing.F) {
	for _, seed := range rw1Seeds(f) {
		f.Add(seed)
	}
	for _, seed := range rw2Seeds(f) {
		f.Add(seed)
	}
	for _, seed := range edgeSeeds() {
		f.Add(seed)
	}
	f.Add(mustMarshal(f, rw1EncodeFixture()))
	f.Add(mustMarshal(f, rw2EncodeFixture()))
	f.Add(mustMarshal(f, rw2RawFixture()))
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, proto := range []protocol{protoV1, protoV2} {
			var req request
			var err error
			if proto == protoV1 {
				err = req.decodeV1(data)
			} else {
				err = req.decodeV2(data)
			}
			if err != nil {
				continue
			}
			// Every index, series with errors included (they are skipped), then
			// every other one backwards, with the same encoder.
			var e encoder
			all := seriesIndexes(len(req.series))
			checkEncoded(t, &req, all, e.encodeV2(nil, &req, all))
			var some []int32
			for i := len(req.series) - 1; i >= 0; i -= 2 {
				some = append(some, int32(i))
			}
			checkEncoded(t, &req, some, e.encodeV2(nil, &req, some))
			checkNoRequestStrings(t, &e)
		}
	})
}

// checkEncoded checks that msg, the encoding of the series idx of req, decodes
// to those series.
func checkEncoded(t *testing.T, req *request, idx []int32, msg []byte) {
	t.Helper()
	want := seriesContents(t, req, idx)
	if len(want) == 0 {
		require.Empty(t, msg)
	}

	var got request
	require.NoError(t, got.decodeV2(msg))
	for i, s := range got.series {
		require.NoError(t, s.err, "series %d", i)
	}
	require.Equal(t, want, seriesContents(t, &got, seriesIndexes(len(got.series))))

	// The symbol table: "" first, every symbol once, and none unused.
	if len(got.symbols) > 0 {
		require.Empty(t, got.symbols[0])
	}
	seen := make(map[string]bool, len(got.symbols))
	for _, s := range got.symbols {
		require.False(t, seen[s], "symbol %q twice", s)
		seen[s] = true
	}
	used := make([]bool, len(got.symbols))
	for _, r := range slices.Concat(got.refs, got.exRefs) {
		used[r] = true
	}
	for _, s := range got.series {
		used[s.meta.helpRef], used[s.meta.unitRef] = true, true
	}
	for i := 1; i < len(used); i++ {
		require.True(t, used[i], "symbol %q is not used", got.symbols[i])
	}

	// An independent decoder reads the same.
	var g writev2.Request
	require.NoError(t, g.Unmarshal(msg))
	require.Equal(t, canonicalV2(&g), canonicalRequest(&got))
}

// checkNoRequestStrings checks that an encoder between messages keeps no string
// of the last request alive.
func checkNoRequestStrings(t *testing.T, e *encoder) {
	t.Helper()
	require.Empty(t, e.index)
	require.Empty(t, e.families)
	for _, s := range e.symbols[:cap(e.symbols)] {
		require.Empty(t, s)
	}
}

// seriesContents describes the series idx of req as the write path reads them, one
// string per series. Indexes out of range and series with an error are left
// out, as encodeV2 leaves them out.
func seriesContents(t *testing.T, req *request, idx []int32) []string {
	t.Helper()
	b := newBatch()
	b.req = *req
	b.prepareMetadata()
	var out []string
	for _, i := range idx {
		if i < 0 || int(i) >= len(req.series) || req.series[i].err != nil {
			continue
		}
		s := &req.series[i]
		var sb strings.Builder
		ls := req.labels[s.labels.lo:s.labels.hi]
		writeLabels(&sb, ls)
		for _, smp := range req.samples[s.samples.lo:s.samples.hi] {
			fmt.Fprintf(&sb, " S(%s,%d,%d)", fbits(smp.v), smp.t, smp.st)
		}
		for _, h := range req.histograms[s.histograms.lo:s.histograms.hi] {
			require.True(t, (h.h == nil) != (h.fh == nil))
			writeHistogram(&sb, h.h, h.fh, h.t, h.st, h.hint)
		}
		for _, e := range req.exemplars[s.exemplars.lo:s.exemplars.hi] {
			sb.WriteString(" E(")
			writeLabels(&sb, req.exLabels[e.labels.lo:e.labels.hi])
			fmt.Fprintf(&sb, " %s %d)", fbits(e.v), e.t)
		}
		// Metadata matters only for series that storage accepts.
		if name, err := checkSeriesLabels(ls, false); err == nil {
			if m := b.metadataFor(s, name); m.IsEmpty() {
				sb.WriteString(" meta none")
			} else {
				fmt.Fprintf(&sb, " meta %s %q %q", m.Type, m.Help, m.Unit)
			}
		}
		out = append(out, sb.String())
	}
	return out
}

func seriesIndexes(n int) []int32 {
	out := make([]int32, n)
	for i := range out {
		out[i] = int32(i)
	}
	return out
}

type selection struct {
	name string
	idx  []int32
}

// encodeSelections returns the selections of n series that the round trip is tried with.
func encodeSelections(n int) []selection {
	all := seriesIndexes(n)
	var everyOther []int32
	for i := 0; i < n; i += 2 {
		everyOther = append(everyOther, int32(i))
	}
	reversed := slices.Clone(all)
	slices.Reverse(reversed)
	subs := []selection{
		{name: "all", idx: all},
		{name: "nil", idx: nil},
		{name: "empty", idx: []int32{}},
		{name: "every other", idx: everyOther},
		{name: "reversed", idx: reversed},
		{name: "out of range", idx: append([]int32{-1, int32(n)}, all...)},
		{name: "twice", idx: slices.Concat(all, all)},
	}
	if n > 0 {
		subs = append(subs, selection{name: "one", idx: []int32{int32(n / 2)}})
	}
	return subs
}

func mustMarshal(tb testing.TB, m interface{ Marshal() ([]byte, error) }) []byte {
	tb.Helper()
	b, err := m.Marshal()
	require.NoError(tb, err)
	return b
}

func decodeFixture(t *testing.T, proto protocol, body []byte) *request {
	t.Helper()
	req := &request{}
	if proto == protoV1 {
		require.NoError(t, req.decodeV1(body))
	} else {
		require.NoError(t, req.decodeV2(body))
	}
	// The gogo encoder that made body drops -0 as if it were 0 (proto3 default).
	negZero := math.Copysign(0, -1)
	for i := range req.samples {
		if req.samples[i].t == negZeroTime {
			req.samples[i].v = negZero
		}
	}
	for i := range req.exemplars {
		if req.exemplars[i].t == negZeroTime {
			req.exemplars[i].v = negZero
		}
	}
	return req
}

// negZeroTime is the timestamp of the fixtures' samples and exemplars whose
// value decodeFixture sets to -0.
const negZeroTime = 4000

// bigHistogram returns a histogram with enough buckets to make its message
// longer than 127 bytes, so that its length takes two bytes.
func bigHistogram() *histogram.Histogram {
	h := &histogram.Histogram{
		Schema:          3,
		ZeroThreshold:   1e-128,
		PositiveSpans:   []histogram.Span{{Offset: -20, Length: 30}, {Offset: 5, Length: 30}},
		NegativeSpans:   []histogram.Span{{Offset: 2, Length: 10}},
		PositiveBuckets: make([]int64, 60),
		NegativeBuckets: make([]int64, 10),
	}
	for i := range h.PositiveBuckets {
		h.PositiveBuckets[i] = int64(i%7 - 3)
	}
	for i := range h.NegativeBuckets {
		h.NegativeBuckets[i] = int64(1000 * (i%3 - 1))
	}
	h.Count, h.Sum = 1<<40, -12.5
	return h
}

// customBucketsHistogram returns a histogram with custom buckets.
func customBucketsHistogram() *histogram.Histogram {
	return &histogram.Histogram{
		Schema: histogram.CustomBucketsSchema, Count: 2, Sum: 3,
		PositiveSpans: []histogram.Span{{Length: 2}}, PositiveBuckets: []int64{1, 0}, CustomValues: []float64{1, 2.5},
	}
}

// rw1EncodeFixture is a Remote-Write 1.0 request with a bit of everything that
// the decoder keeps.
func rw1EncodeFixture() *prompb.WriteRequest {
	stale := math.Float64frombits(value.StaleNaN)
	negZero := math.Copysign(0, -1)
	req := &prompb.WriteRequest{}
	add := func(ts prompb.TimeSeries) { req.Timeseries = append(req.Timeseries, ts) }

	// Many series that share label strings.
	for i := range 30 {
		add(prompb.TimeSeries{Labels: lbls(benchLabels(i)...), Samples: []prompb.Sample{{Value: float64(i), Timestamp: int64(1000 + i)}}})
	}
	add(prompb.TimeSeries{
		Labels:  lbls("__name__", "up", "instance", "a:9100", "job", "node"),
		Samples: []prompb.Sample{{Value: 1, Timestamp: 1000}, {Value: stale, Timestamp: 2000}, {Value: math.NaN(), Timestamp: 3000}, {Timestamp: negZeroTime}, {Value: 0, Timestamp: 0}, {Value: -1.5, Timestamp: -5}},
	})
	fh := testHistogram(2).ToFloat(nil)
	fh.Schema, fh.ZeroCount, fh.Count = -2, negZero, 4
	gauge := prompb.FromFloatHistogram(20, fh)
	gauge.ResetHint = prompb.Histogram_GAUGE
	badHint := prompb.FromIntHistogram(30, testHistogram(3))
	badHint.ResetHint = 7
	add(prompb.TimeSeries{
		Labels:     lbls("__name__", "rpc_latency_seconds", "job", "api"),
		Histograms: []prompb.Histogram{prompb.FromIntHistogram(10, testHistogram(1)), gauge, badHint, prompb.FromIntHistogram(40, bigHistogram()), prompb.FromFloatHistogram(50, bigHistogram().ToFloat(nil))},
		Exemplars:  []prompb.Exemplar{{Labels: lbls("trace_id", "x", "span_id", "s"), Value: 0.3, Timestamp: 10}},
	})
	add(prompb.TimeSeries{
		Labels:     lbls("__name__", "nhcb"),
		Histograms: []prompb.Histogram{prompb.FromIntHistogram(1, customBucketsHistogram()), prompb.FromFloatHistogram(2, customBucketsHistogram().ToFloat(nil))},
	})
	add(prompb.TimeSeries{
		Labels:    lbls("__name__", "http_requests_total", "code", "200"),
		Samples:   []prompb.Sample{{Value: 10, Timestamp: 20}},
		Exemplars: []prompb.Exemplar{{Labels: lbls("trace_id", "w"), Value: 1, Timestamp: 19}},
	})
	// Prometheus sends exemplars in series of their own.
	add(prompb.TimeSeries{
		Labels:    lbls("__name__", "http_requests_total", "code", "200"),
		Exemplars: []prompb.Exemplar{{Labels: lbls("trace_id", "y"), Value: 1, Timestamp: 20}, {Value: 2, Timestamp: 21}},
	})
	add(prompb.TimeSeries{Labels: lbls("__name__", "c_bucket", "le", "+Inf"), Samples: []prompb.Sample{{Value: 3, Timestamp: 20}}})
	add(prompb.TimeSeries{Labels: lbls("__name__", "no_family"), Samples: []prompb.Sample{{Value: 3, Timestamp: 20}}})
	// Labels the write path rejects are sent as they are, for the peer to reject.
	add(prompb.TimeSeries{Labels: lbls("job", "a", "__name__", "unsorted"), Samples: []prompb.Sample{{Value: 1, Timestamp: 1}}})
	add(prompb.TimeSeries{Labels: lbls("__name__", "x", "empty", ""), Samples: []prompb.Sample{{Value: 1, Timestamp: 1}}})
	add(prompb.TimeSeries{Labels: lbls("__name__", "bad\xff"), Samples: []prompb.Sample{{Value: 1, Timestamp: 1}}})
	add(prompb.TimeSeries{Samples: []prompb.Sample{{Value: 1, Timestamp: 1}}})
	add(prompb.TimeSeries{})
	// A long series, whose length takes three bytes.
	long := prompb.TimeSeries{Labels: lbls("__name__", "long")}
	for i := range 2000 {
		long.Samples = append(long.Samples, prompb.Sample{Value: float64(i) / 3, Timestamp: int64(i) * 15000})
	}
	add(long)

	req.Metadata = []prompb.MetricMetadata{
		{Type: prompb.MetricMetadata_COUNTER, MetricFamilyName: "http_requests_total", Help: "Requests."},
		{Type: prompb.MetricMetadata_HISTOGRAM, MetricFamilyName: "c", Help: "Latency.", Unit: "seconds"},
		{Type: prompb.MetricMetadata_GAUGE, MetricFamilyName: "up", Help: "Old help."},
		{Type: prompb.MetricMetadata_GAUGE, MetricFamilyName: "up", Help: "New help."},
		{Type: prompb.MetricMetadata_HISTOGRAM, MetricFamilyName: "rpc_latency_seconds", Unit: "seconds"},
		{Type: prompb.MetricMetadata_COUNTER, MetricFamilyName: "node_cpu_seconds_total", Help: "Seconds the CPUs spent in each mode."},
		{Type: prompb.MetricMetadata_COUNTER, Help: "No family."},
		{MetricFamilyName: "nhcb"},
	}
	return req
}

// rw2EncodeFixture is a Remote-Write 2.0 request with a bit of everything that
// the decoder keeps.
func rw2EncodeFixture() *writev2.Request {
	stale := math.Float64frombits(value.StaleNaN)
	b := newV2Builder()
	for i := range 30 {
		ls := benchLabels(i)
		b.add(writev2.TimeSeries{
			LabelsRefs: b.refs(ls...),
			Samples:    []writev2.Sample{{Value: float64(i), Timestamp: int64(1000 + i), StartTimestamp: int64(i % 2)}},
			Metadata:   b.meta(writev2.Metadata_METRIC_TYPE_COUNTER, "Help of "+ls[1]+".", ""),
		})
	}
	b.add(writev2.TimeSeries{
		LabelsRefs: b.refs("__name__", "http_requests_total", "code", "200"),
		Samples:    []writev2.Sample{{Value: 1, Timestamp: 1000, StartTimestamp: 500}, {Value: stale, Timestamp: 2000}, {Value: math.NaN(), Timestamp: 3000, StartTimestamp: -1}, {Timestamp: negZeroTime}},
		Exemplars:  []writev2.Exemplar{{LabelsRefs: b.refs("trace_id", "x"), Value: 1, Timestamp: 1000}, {LabelsRefs: b.refs("trace_id", "x2"), Timestamp: negZeroTime}},
		Metadata:   b.meta(writev2.Metadata_METRIC_TYPE_COUNTER, "Requests.", "requests"),
	})
	b.add(writev2.TimeSeries{
		LabelsRefs: b.refs("__name__", "http_requests_total", "code", "200"),
		Exemplars:  []writev2.Exemplar{{LabelsRefs: b.refs("trace_id", "y"), Value: 2, Timestamp: 1001}, {Value: 3}},
	})
	ih := writev2.FromIntHistogram(10, testHistogram(1))
	ih.StartTimestamp = 5
	fh := writev2.FromFloatHistogram(20, testHistogram(2).ToFloat(nil))
	fh.StartTimestamp, fh.ResetHint = 15, writev2.Histogram_RESET_HINT_GAUGE
	b.add(writev2.TimeSeries{
		LabelsRefs: b.refs("__name__", "rpc_latency_seconds", "job", "api"),
		Histograms: []writev2.Histogram{ih, fh, writev2.FromIntHistogram(30, bigHistogram()), writev2.FromFloatHistogram(40, bigHistogram().ToFloat(nil))},
		Exemplars:  []writev2.Exemplar{{LabelsRefs: b.refs("trace_id", "z", "span_id", "s"), Value: 0.3, Timestamp: 10}},
		Metadata:   b.meta(writev2.Metadata_METRIC_TYPE_HISTOGRAM, "Latency.", "seconds"),
	})
	b.add(writev2.TimeSeries{
		LabelsRefs: b.refs("__name__", "nhcb"),
		Histograms: []writev2.Histogram{writev2.FromIntHistogram(1, customBucketsHistogram()), writev2.FromFloatHistogram(2, customBucketsHistogram().ToFloat(nil))},
	})
	b.add(writev2.TimeSeries{
		LabelsRefs: b.refs("__name__", "typed"),
		Samples:    []writev2.Sample{{Value: 1, Timestamp: 1}},
		Metadata:   writev2.Metadata{Type: writev2.Metadata_METRIC_TYPE_GAUGE},
	})
	b.add(writev2.TimeSeries{
		LabelsRefs: b.refs("__name__", "help_only"),
		Samples:    []writev2.Sample{{Value: 1, Timestamp: 1}},
		Metadata:   b.meta(writev2.Metadata_METRIC_TYPE_UNSPECIFIED, "Only help.", ""),
	})
	b.add(writev2.TimeSeries{LabelsRefs: b.refs("job", "a", "__name__", "unsorted"), Samples: []writev2.Sample{{Value: 1, Timestamp: 1}}})
	b.add(writev2.TimeSeries{LabelsRefs: b.refs("__name__", "x", "empty", ""), Samples: []writev2.Sample{{Value: 1, Timestamp: 1}}})
	b.add(writev2.TimeSeries{Samples: []writev2.Sample{{Value: 1, Timestamp: 1}}})
	// A symbol that no selected series uses must not be sent.
	b.refs("unused")
	return b.build()
}

// rw2RawFixture is a Remote-Write 2.0 request with a symbol table that is not
// deduplicated, and with series that refer to symbols that do not exist.
func rw2RawFixture() *writev2.Request {
	return &writev2.Request{
		Symbols: []string{"", "__name__", "dup", "__name__", "dup", "Help.", "a", "Help.", "bad\xff"},
		Timeseries: []writev2.TimeSeries{
			{LabelsRefs: []uint32{1, 2}, Samples: []writev2.Sample{{Value: 1, Timestamp: 1}}, Metadata: writev2.Metadata{Type: writev2.Metadata_METRIC_TYPE_GAUGE, HelpRef: 5}},
			{LabelsRefs: []uint32{3, 4, 6, 4}, Samples: []writev2.Sample{{Value: 2, Timestamp: 1}}, Metadata: writev2.Metadata{HelpRef: 7, UnitRef: 2}},
			{LabelsRefs: []uint32{1, 2, 99, 2}, Samples: []writev2.Sample{{Value: 3, Timestamp: 1}}},
			{LabelsRefs: []uint32{1}, Samples: []writev2.Sample{{Value: 3, Timestamp: 1}}},
			{LabelsRefs: []uint32{1, 2}, Samples: []writev2.Sample{{Value: 3, Timestamp: 1}}, Metadata: writev2.Metadata{UnitRef: 99}},
			{LabelsRefs: []uint32{1, 2}, Exemplars: []writev2.Exemplar{{LabelsRefs: []uint32{6, 99}}}},
			{LabelsRefs: []uint32{1, 8}, Samples: []writev2.Sample{{Value: 4, Timestamp: 1}}, Exemplars: []writev2.Exemplar{{LabelsRefs: []uint32{6, 8}, Value: 1}}},
			{LabelsRefs: []uint32{3, 4}, Metadata: writev2.Metadata{Type: 99}, Samples: []writev2.Sample{{Value: 5, Timestamp: 1}}},
		},
	}
}
