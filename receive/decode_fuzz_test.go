package receive

import (
	"fmt"
	"github.com/golang/snappy"
	"math"
	"slices"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/histogram"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/value"
	"github.com/prometheus/prometheus/prompb"
	writev2 "github.com/prometheus/prometheus/prompb/io/prometheus/write/v2"
	"github.com/prometheus/prometheus/storage"
	"github.com/stretchr/testify/require"
)

// The fuzz targets feed arbitrary bytes to the decoders (after snappy, which is
// not ours) and check that:
//   - nothing panics;
//   - whatever our decoder accepts, the generated gogo decoder of the Prometheus
//     module also accepts, with the same content (we may be stricter, never looser);
//   - whatever gogo accepts, re-encoded canonically, our decoder accepts too, with
//     the same content;
//   - everything the write path passes on to storage is valid: label sets sorted,
//     unique, with a metric name and valid UTF-8, histograms valid, exemplars
//     sorted; and those values do not alias the request body;
//   - every sample and exemplar is accounted for exactly once.

func FuzzDecodeRW1(f *testing.F) {
	for _, seed := range rw1Seeds(f) {
		f.Add(seed)
	}
	for _, seed := range edgeSeeds() {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var r request
		err := r.decodeV1(data)

		var g prompb.WriteRequest
		gerr := g.Unmarshal(data)
		if err == nil {
			require.NoError(t, gerr, "we accept what gogo rejects")
			require.Equal(t, canonicalV1(&g), canonicalRequest(&r))
		}
		if gerr == nil {
			again, merr := g.Marshal()
			require.NoError(t, merr)
			var r2 request
			require.NoError(t, r2.decodeV1(again), "we reject a canonical encoding")
			require.Equal(t, canonicalV1(&g), canonicalRequest(&r2))
		}
		if err == nil {
			checkWritePath(t, &r, data)
		}
	})
}

func FuzzDecodeRW2(f *testing.F) {
	for _, seed := range rw2Seeds(f) {
		f.Add(seed)
	}
	for _, seed := range edgeSeeds() {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var r request
		err := r.decodeV2(data)

		var g writev2.Request
		gerr := g.Unmarshal(data)
		if err == nil {
			require.NoError(t, gerr, "we accept what gogo rejects")
			require.Equal(t, canonicalV2(&g), canonicalRequest(&r))
		}
		if gerr == nil {
			again, merr := g.Marshal()
			require.NoError(t, merr)
			var r2 request
			err2 := r2.decodeV2(again)
			if len(g.Symbols) > 0 && g.Symbols[0] != "" {
				require.ErrorContains(t, err2, "first symbol")
			} else {
				require.NoError(t, err2, "we reject a canonical encoding")
				require.Equal(t, canonicalV2(&g), canonicalRequest(&r2))
			}
		}
		if err == nil {
			checkWritePath(t, &r, data)
		}
	})
}

// checkWritePath runs the decoded request through the write path into an
// appender that checks what it is given, then scribbles over the request body to
// prove that nothing storage kept aliases it.
func checkWritePath(t *testing.T, r *request, data []byte) {
	// With exemplars disabled, the status must not change and nothing is lost
	// track of either.
	off := newBatch()
	off.req = *r
	require.NoError(t, off.write(&checkingAppender{t: t}, writeOptions{maxT: math.MaxInt64, disableExemplars: true}))
	require.Equal(t, len(r.exemplars), off.res.exemplarsDropped[exemplarDisabled])
	require.Zero(t, off.res.exemplars)

	b := newBatch()
	b.req = *r
	app := &checkingAppender{t: t}
	require.NoError(t, b.write(app, writeOptions{maxT: math.MaxInt64}))
	require.Equal(t, off.res.rejected(), b.res.rejected())
	require.Equal(t, off.res.rejectedSamples, b.res.rejectedSamples)

	res := &b.res
	require.Equal(t, len(r.samples)+len(r.histograms), res.samples+res.histograms+res.rejectedSamples, "samples not accounted for")
	dropped := 0
	for _, n := range res.exemplarsDropped {
		dropped += n
	}
	require.Equal(t, len(r.exemplars), res.exemplars+dropped, "exemplars not accounted for")
	require.Equal(t, res.samples, app.floats)
	require.Equal(t, res.histograms, app.histograms)
	require.Equal(t, res.exemplars, app.exemplars)
	if res.rejected() {
		require.NotEmpty(t, res.firstError)
	}

	for i := range data {
		data[i] = 0xa5
	}
	for i, ls := range app.kept {
		require.Equal(t, app.keptStrings[i], ls.String(), "stored labels alias the request body")
	}
	require.Equal(t, app.keptMetaCopy, app.keptMeta, "stored metadata aliases the request body")
}

// checkingAppender is a storage.AppenderV2 that accepts everything and checks
// that what it gets is valid. It stands in for storage only in the fuzz targets,
// where the property under test is the input storage receives.
type checkingAppender struct {
	t                             *testing.T
	refs                          int
	floats, histograms, exemplars int
	kept                          []labels.Labels
	keptStrings                   []string
	keptMeta, keptMetaCopy        []string
}

func (a *checkingAppender) Append(ref storage.SeriesRef, ls labels.Labels, _, _ int64, _ float64, h *histogram.Histogram, fh *histogram.FloatHistogram, o storage.AOptions) (storage.SeriesRef, error) {
	t := a.t
	require.False(t, h != nil && fh != nil, "both histogram kinds")
	if ref == 0 {
		checkStoredLabels(t, ls)
		a.kept = append(a.kept, ls)
		a.keptStrings = append(a.keptStrings, ls.String())
		a.refs++
		ref = storage.SeriesRef(a.refs)
	}
	switch {
	case h != nil:
		require.NoError(t, h.Validate())
		a.histograms++
	case fh != nil:
		require.NoError(t, fh.Validate())
		a.histograms++
	default:
		a.floats++
	}
	require.True(t, slices.IsSortedFunc(o.Exemplars, compareExemplarTs), "exemplars not sorted")
	for _, e := range o.Exemplars {
		require.True(t, e.Labels.IsValid(model.UTF8Validation), "invalid exemplar labels %s", e.Labels)
		a.kept = append(a.kept, e.Labels)
		a.keptStrings = append(a.keptStrings, e.Labels.String())
	}
	a.exemplars += len(o.Exemplars)
	if !o.Metadata.IsEmpty() {
		require.True(t, utf8.ValidString(o.Metadata.Help) && utf8.ValidString(o.Metadata.Unit))
		a.keptMeta = append(a.keptMeta, o.Metadata.Help, o.Metadata.Unit)
		a.keptMetaCopy = append(a.keptMetaCopy, strings.Clone(o.Metadata.Help), strings.Clone(o.Metadata.Unit))
	}
	return ref, nil
}

func (*checkingAppender) Commit() error   { return nil }
func (*checkingAppender) Rollback() error { return nil }

func checkStoredLabels(t *testing.T, ls labels.Labels) {
	require.True(t, ls.IsValid(model.UTF8Validation), "invalid labels %s", ls)
	require.NotEmpty(t, ls.Get(model.MetricNameLabel), "no metric name in %s", ls)
	_, dup := ls.HasDuplicateLabelNames()
	require.False(t, dup, "duplicate label in %s", ls)
	prev := ""
	ls.Range(func(l labels.Label) {
		require.NotEmpty(t, l.Value, "empty value in %s", ls)
		require.Greater(t, l.Name, prev, "unsorted %s", ls)
		prev = l.Name
	})
}

// canonical forms: one string per series, identical for our decoder and gogo's.

func fbits(v float64) string { return strconv.FormatUint(math.Float64bits(v), 16) }

func writeLabels(sb *strings.Builder, ls []wireLabel) {
	for _, l := range ls {
		fmt.Fprintf(sb, "%q=%q,", l.name, l.value)
	}
}

func writeHistogram(sb *strings.Builder, h *histogram.Histogram, fh *histogram.FloatHistogram, t, st int64, hint int32) {
	fmt.Fprintf(sb, " H(t=%d st=%d hint=%d ", t, st, hint)
	spans := func(ss []histogram.Span) {
		for _, s := range ss {
			fmt.Fprintf(sb, "[%d,%d]", s.Offset, s.Length)
		}
		sb.WriteByte(' ')
	}
	floats := func(fs []float64) {
		for _, f := range fs {
			sb.WriteString(fbits(f) + ",")
		}
		sb.WriteByte(' ')
	}
	if fh != nil {
		fmt.Fprintf(sb, "float schema=%d zt=%s zc=%s c=%s sum=%s ", fh.Schema, fbits(fh.ZeroThreshold), fbits(fh.ZeroCount), fbits(fh.Count), fbits(fh.Sum))
		spans(fh.PositiveSpans)
		floats(fh.PositiveBuckets)
		spans(fh.NegativeSpans)
		floats(fh.NegativeBuckets)
		floats(fh.CustomValues)
	} else {
		fmt.Fprintf(sb, "int schema=%d zt=%s zc=%d c=%d sum=%s %v %v %v %v ", h.Schema, fbits(h.ZeroThreshold), h.ZeroCount, h.Count, fbits(h.Sum), h.PositiveSpans, h.PositiveBuckets, h.NegativeSpans, h.NegativeBuckets)
		floats(h.CustomValues)
	}
	sb.WriteByte(')')
}

func canonicalRequest(r *request) []string {
	var out []string
	for _, sym := range r.symbols {
		out = append(out, "sym "+strconv.Quote(sym))
	}
	for _, m := range r.metadata {
		out = append(out, fmt.Sprintf("meta %d %q %q %q", m.typ, m.family, m.help, m.unit))
	}
	for _, s := range r.series {
		var sb strings.Builder
		if r.proto == protoV2 {
			fmt.Fprintf(&sb, "refs %v meta %v ", r.refs[s.refs.lo:s.refs.hi], s.meta)
		} else {
			writeLabels(&sb, r.labels[s.labels.lo:s.labels.hi])
		}
		for _, smp := range r.samples[s.samples.lo:s.samples.hi] {
			fmt.Fprintf(&sb, " S(%s,%d,%d)", fbits(smp.v), smp.t, smp.st)
		}
		for _, h := range r.histograms[s.histograms.lo:s.histograms.hi] {
			hh, hfh := h.h, h.fh
			if hh != nil {
				hh = hh.Copy()
				hh.CounterResetHint = 0
			}
			writeHistogram(&sb, hh, hfh, h.t, h.st, h.hint)
		}
		for _, e := range r.exemplars[s.exemplars.lo:s.exemplars.hi] {
			sb.WriteString(" E(")
			if r.proto == protoV2 {
				fmt.Fprintf(&sb, "%v", r.exRefs[e.refs.lo:e.refs.hi])
			} else {
				writeLabels(&sb, r.exLabels[e.labels.lo:e.labels.hi])
			}
			fmt.Fprintf(&sb, " %s %d)", fbits(e.v), e.t)
		}
		out = append(out, sb.String())
	}
	return out
}

func canonicalV1(g *prompb.WriteRequest) []string {
	var out []string
	for _, m := range g.Metadata {
		out = append(out, fmt.Sprintf("meta %d %q %q %q", int32(m.Type), m.MetricFamilyName, m.Help, m.Unit))
	}
	for _, ts := range g.Timeseries {
		var sb strings.Builder
		for _, l := range ts.Labels {
			fmt.Fprintf(&sb, "%q=%q,", l.Name, l.Value)
		}
		for _, smp := range ts.Samples {
			fmt.Fprintf(&sb, " S(%s,%d,%d)", fbits(smp.Value), smp.Timestamp, 0)
		}
		for _, hp := range ts.Histograms {
			if hp.IsFloatHistogram() {
				fh := hp.ToFloatHistogram()
				writeHistogram(&sb, nil, fh, hp.Timestamp, 0, int32(hp.ResetHint))
			} else {
				h := hp.ToIntHistogram()
				h.CounterResetHint = 0
				writeHistogram(&sb, h, nil, hp.Timestamp, 0, int32(hp.ResetHint))
			}
		}
		for _, e := range ts.Exemplars {
			sb.WriteString(" E(")
			for _, l := range e.Labels {
				fmt.Fprintf(&sb, "%q=%q,", l.Name, l.Value)
			}
			fmt.Fprintf(&sb, " %s %d)", fbits(e.Value), e.Timestamp)
		}
		out = append(out, sb.String())
	}
	return out
}

func canonicalV2(g *writev2.Request) []string {
	var out []string
	for _, sym := range g.Symbols {
		out = append(out, "sym "+strconv.Quote(sym))
	}
	for _, ts := range g.Timeseries {
		var sb strings.Builder
		refs := ts.LabelsRefs
		if refs == nil {
			refs = []uint32{}
		}
		fmt.Fprintf(&sb, "refs %v meta %v ", refs, wireMetadata{typ: int32(ts.Metadata.Type), helpRef: ts.Metadata.HelpRef, unitRef: ts.Metadata.UnitRef})
		for _, smp := range ts.Samples {
			fmt.Fprintf(&sb, " S(%s,%d,%d)", fbits(smp.Value), smp.Timestamp, smp.StartTimestamp)
		}
		for _, hp := range ts.Histograms {
			if hp.IsFloatHistogram() {
				fh := hp.ToFloatHistogram()
				writeHistogram(&sb, nil, fh, hp.Timestamp, hp.StartTimestamp, int32(hp.ResetHint))
			} else {
				h := hp.ToIntHistogram()
				h.CounterResetHint = 0
				writeHistogram(&sb, h, nil, hp.Timestamp, hp.StartTimestamp, int32(hp.ResetHint))
			}
		}
		for _, e := range ts.Exemplars {
			erefs := e.LabelsRefs
			if erefs == nil {
				erefs = []uint32{}
			}
			fmt.Fprintf(&sb, " E(%v %s %d)", erefs, fbits(e.Value), e.Timestamp)
		}
		out = append(out, sb.String())
	}
	return out
}

// Seeds.

func rw1Seeds(tb testing.TB) [][]byte {
	stale := math.Float64frombits(value.StaleNaN)
	reqs := []*prompb.WriteRequest{
		{},
		{Timeseries: []prompb.TimeSeries{{
			Labels:  lbls("__name__", "up", "instance", "a:9100", "job", "node"),
			Samples: []prompb.Sample{{Value: 1, Timestamp: 1000}, {Value: stale, Timestamp: 2000}, {Value: math.NaN(), Timestamp: 3000}},
		}}},
		{Timeseries: []prompb.TimeSeries{
			{Labels: lbls("__name__", "h"), Histograms: []prompb.Histogram{prompb.FromIntHistogram(10, testHistogram(1)), prompb.FromFloatHistogram(20, testHistogram(2).ToFloat(nil))}},
			{Labels: lbls("__name__", "c", "le", "1"), Exemplars: []prompb.Exemplar{{Labels: lbls("trace_id", "x"), Value: 1, Timestamp: 5}}},
			{Labels: lbls("__name__", "c", "le", "1"), Samples: []prompb.Sample{{Value: 1, Timestamp: 5}}},
		}, Metadata: []prompb.MetricMetadata{{Type: prompb.MetricMetadata_HISTOGRAM, MetricFamilyName: "c", Help: "help", Unit: "s"}}},
		{Timeseries: []prompb.TimeSeries{
			{Labels: lbls("job", "a", "__name__", "unsorted"), Samples: []prompb.Sample{{Value: 1, Timestamp: 1}}},
			{Labels: lbls("__name__", "dup", "a", "1", "a", "2"), Samples: []prompb.Sample{{Value: 1, Timestamp: 1}}},
			{Labels: lbls("__name__", "", "a", "1"), Samples: []prompb.Sample{{Value: 1, Timestamp: 1}}},
			{Labels: lbls("__name__", "x", "empty", ""), Samples: []prompb.Sample{{Value: 1, Timestamp: 1}}},
			{Labels: lbls("__name__", "bad\xff"), Samples: []prompb.Sample{{Value: 1, Timestamp: 1}}},
			{Samples: []prompb.Sample{{Value: 1, Timestamp: 1}}},
		}},
		{Timeseries: []prompb.TimeSeries{{
			Labels: lbls("__name__", "nhcb"),
			Histograms: []prompb.Histogram{prompb.FromIntHistogram(1, &histogram.Histogram{
				Schema: histogram.CustomBucketsSchema, Count: 2, Sum: 3,
				PositiveSpans: []histogram.Span{{Length: 2}}, PositiveBuckets: []int64{1, 0}, CustomValues: []float64{1, 2},
			})},
		}}},
	}
	var out [][]byte
	for _, r := range reqs {
		b, err := r.Marshal()
		require.NoError(tb, err)
		out = append(out, b)
	}
	return out
}

func rw2Seeds(tb testing.TB) [][]byte {
	b := newV2Builder()
	b.add(writev2.TimeSeries{
		LabelsRefs: b.refs("__name__", "up", "job", "node"),
		Samples:    []writev2.Sample{{Value: 1, Timestamp: 1000, StartTimestamp: 500}},
		Exemplars:  []writev2.Exemplar{{LabelsRefs: b.refs("trace_id", "t"), Value: 1, Timestamp: 1000}},
		Metadata:   b.meta(writev2.Metadata_METRIC_TYPE_COUNTER, "help", "unit"),
	})
	b.add(writev2.TimeSeries{
		LabelsRefs: b.refs("__name__", "h"),
		Histograms: []writev2.Histogram{writev2.FromIntHistogram(10, testHistogram(1)), writev2.FromFloatHistogram(20, testHistogram(2).ToFloat(nil))},
	})
	b.add(writev2.TimeSeries{LabelsRefs: b.refs("__name__", "up", "job", "node"), Exemplars: []writev2.Exemplar{{LabelsRefs: b.refs("a", "b"), Value: 2, Timestamp: 999}}})
	good := b.build()

	reqs := []*writev2.Request{
		{},
		good,
		{Symbols: []string{"", "__name__", "x"}, Timeseries: []writev2.TimeSeries{
			{LabelsRefs: []uint32{1, 2, 7, 8}, Samples: []writev2.Sample{{Value: 1, Timestamp: 1}}},
			{LabelsRefs: []uint32{1}, Samples: []writev2.Sample{{Value: 1, Timestamp: 1}}},
			{LabelsRefs: []uint32{1, 2}, Samples: []writev2.Sample{{Value: 1, Timestamp: 1}}, Metadata: writev2.Metadata{HelpRef: 99}},
		}},
		{Symbols: []string{"x"}, Timeseries: []writev2.TimeSeries{{LabelsRefs: []uint32{0, 0}}}},
	}
	var out [][]byte
	for _, r := range reqs {
		bs, err := r.Marshal()
		require.NoError(tb, err)
		out = append(out, bs)
	}
	return out
}

// edgeSeeds are malformed wire-format snippets.
func edgeSeeds() [][]byte {
	return [][]byte{
		nil,
		{0x00},             // field 0
		{0x0a},             // missing length
		{0x0a, 0x05, 0x01}, // length past the end
		{0x0b, 0x0c},       // group start/end
		{0x0c},             // end group
		{0x0a, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01}, // varint overflow
		{0x22, 0x00, 0x2a, 0x02, 0x0a, 0x00},                                     // rw2: empty symbol, series with empty refs
		{0x0a, 0x04, 0x22, 0x02, 0x0a, 0x00},                                     // rw1: series with an empty histogram... of sorts
		{0x0f, 0x00},                                                             // wire type 7
	}
}

// FuzzForwardedRequest feeds the replication server's decoding of a forwarded
// request arbitrary frames: it must never panic, and a frame it accepts must
// decode the same way again.
func FuzzForwardedRequest(f *testing.F) {
	for _, seed := range rw1Seeds(f) {
		f.Add(appendForwardRequest(nil, "tenant-a", snappy.Encode(nil, seed), forwardSnappy1))
	}
	for _, seed := range rw2Seeds(f) {
		f.Add(appendForwardRequest(nil, "tenant-a", seed, forwardV2))
		f.Add(appendForwardRequest(nil, "tenant-a", snappy.Encode(nil, seed), forwardSnappy2))
	}
	for _, seed := range edgeSeeds() {
		f.Add(seed)
	}
	h := NewHandler(Options{MaxDecompressedBytes: 1 << 20}, nil, nil, nil)
	f.Fuzz(func(t *testing.T, frame []byte) {
		tenant, payload, enc, err := parseForwardRequest(frame)
		if err != nil {
			return
		}
		b := newBatch()
		err = h.decodeForwarded(b, payload, enc)
		again := newBatch()
		errAgain := h.decodeForwarded(again, payload, enc)
		if (err == nil) != (errAgain == nil) {
			t.Fatalf("tenant %q: decoding twice disagrees: %v, then %v", tenant, err, errAgain)
		}
		if err == nil && len(b.req.series) != len(again.req.series) {
			t.Fatalf("decoding twice gives %d, then %d series", len(b.req.series), len(again.req.series))
		}
	})
}
