package querier_test

import (
	"context"
	"fmt"
	"math"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/histogram"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql"
	"github.com/prometheus/prometheus/promql/promqltest"
	"github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/tsdb/chunkenc"
	"github.com/prometheus/prometheus/tsdb/tsdbutil"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"

	"github.com/stratametrics/strata/querier"
	"github.com/stratametrics/strata/storeapi"
	"github.com/stratametrics/strata/storeapi/infopb"
	"github.com/stratametrics/strata/storeapi/storeapitest"
	"github.com/stratametrics/strata/storeapi/storepb"
)

// The downsampling tests' data: 12 hours scraped every 15 seconds from dsBase,
// which is aligned to the hour, so 5m windows hold 20 samples each.
const (
	dsBase    = base - base%(3_600_000)
	dsScrape  = 15 * sec
	dsRes5m   = int64(5 * 60 * 1000)
	dsHour    = int64(3_600_000)
	dsEnd     = dsBase + 12*dsHour
	dsPerWin  = dsRes5m / dsScrape
	dsResetAt = dsBase + 3*dsHour + 31*60*sec + 45*sec // the counter's reset, mid-window
)

// dsCounter is a counter that grows by 1 per scrape from 1000 and resets once,
// to 1, at dsResetAt; with the reset applied it is a straight line, so rate is
// exact on raw and downsampled data alike.
func dsCounter() []storeapitest.Sample {
	var out []storeapitest.Sample
	v := 1000.0
	for ts := dsBase; ts < dsEnd; ts += dsScrape {
		switch {
		case ts == dsResetAt:
			v = 1
		case ts > dsBase:
			v++
		}
		out = append(out, storeapitest.Sample{T: ts, F: v})
	}
	return out
}

// dsGauge is a gauge of integer values in [0, 1000), so that sums are exact.
func dsGauge() []storeapitest.Sample {
	return floats(dsBase, dsEnd, dsScrape, func(ts int64) float64 {
		return float64(((ts - dsBase) / dsScrape * 7919) % 1000)
	})
}

// dsHistograms is a native histogram counter that grows linearly.
func dsHistograms() []storeapitest.Sample {
	var out []storeapitest.Sample
	for i, ts := int64(0), dsBase; ts < dsEnd; i, ts = i+1, ts+dsScrape {
		out = append(out, storeapitest.Sample{T: ts, FH: tsdbutil.GenerateTestFloatHistogram(i)})
	}
	return out
}

func dsFixture() []storeapitest.Series {
	return []storeapitest.Series{
		series("c", []string{"job", "a"}, dsCounter()),
		series("g", []string{"job", "a"}, dsGauge()),
		series("h", []string{"job", "a"}, dsHistograms()),
	}
}

// dsWindow is the aggregates of one resolution window, stamped at the window's
// last raw sample. Histogram windows have fhSum and fhCounter instead of sum,
// min, max and counter.
type dsWindow struct {
	t                             int64
	count, sum, min, max, counter float64
	fhSum, fhCounter              *histogram.FloatHistogram
}

// downsample aggregates samples into windows of res, as the compactor does:
// the counter has its resets applied and is anchored at the end, so that its
// last value is the last raw value.
func downsample(t *testing.T, samples []storeapitest.Sample, res int64) []dsWindow {
	t.Helper()
	var out []dsWindow
	var corr, last float64
	for i, s := range samples {
		if i == 0 || s.T/res != samples[i-1].T/res {
			out = append(out, dsWindow{min: math.Inf(1), max: math.Inf(-1)})
		}
		w := &out[len(out)-1]
		w.t = s.T
		w.count++
		if s.FH != nil {
			if w.fhSum == nil {
				w.fhSum = s.FH.Copy()
			} else {
				_, _, _, err := w.fhSum.Add(s.FH)
				require.NoError(t, err)
			}
			w.fhCounter = s.FH.Copy() // the fixture's histograms never reset
			continue
		}
		w.sum += s.F
		w.min, w.max = min(w.min, s.F), max(w.max, s.F)
		switch {
		case i == 0:
			corr = s.F
		case s.F < last:
			corr += s.F
		default:
			corr += s.F - last
		}
		last = s.F
		w.counter = corr
	}
	for i := range out {
		out[i].counter -= corr - last
	}
	return out
}

// aggrChunk encodes windows as one aggregate chunk with the given aggregates.
func aggrChunk(t *testing.T, ws []dsWindow, aggrs []storepb.Aggr) *storepb.AggrChunk {
	t.Helper()
	c := &storepb.AggrChunk{MinTime: ws[0].t, MaxTime: ws[len(ws)-1].t}
	hist := ws[0].fhSum != nil
	for _, a := range aggrs {
		var ch *storepb.Chunk
		switch a {
		case storepb.Aggr_COUNT:
			ch = xorChunk(t, ws, func(w dsWindow) float64 { return w.count })
			c.Count = ch
		case storepb.Aggr_SUM:
			if hist {
				ch = fhChunk(t, ws, func(w dsWindow) *histogram.FloatHistogram { return w.fhSum })
			} else {
				ch = xorChunk(t, ws, func(w dsWindow) float64 { return w.sum })
			}
			c.Sum = ch
		case storepb.Aggr_MIN:
			if !hist {
				c.Min = xorChunk(t, ws, func(w dsWindow) float64 { return w.min })
			}
		case storepb.Aggr_MAX:
			if !hist {
				c.Max = xorChunk(t, ws, func(w dsWindow) float64 { return w.max })
			}
		case storepb.Aggr_COUNTER:
			if hist {
				c.Counter = fhChunk(t, ws, func(w dsWindow) *histogram.FloatHistogram { return w.fhCounter })
			} else {
				c.Counter = xorChunk(t, ws, func(w dsWindow) float64 { return w.counter })
			}
		}
	}
	return c
}

func xorChunk(t *testing.T, ws []dsWindow, v func(dsWindow) float64) *storepb.Chunk {
	t.Helper()
	c := chunkenc.NewXORChunk()
	app, err := c.Appender()
	require.NoError(t, err)
	for _, w := range ws {
		app.Append(0, w.t, v(w))
	}
	pc, err := storeapi.ChunkToProto(c)
	require.NoError(t, err)
	return pc
}

func fhChunk(t *testing.T, ws []dsWindow, v func(dsWindow) *histogram.FloatHistogram) *storepb.Chunk {
	t.Helper()
	var c chunkenc.Chunk = chunkenc.NewFloatHistogramChunk()
	app, err := c.Appender()
	require.NoError(t, err)
	for _, w := range ws {
		nc, recoded, napp, err := app.AppendFloatHistogram(nil, 0, w.t, v(w), false)
		require.NoError(t, err)
		require.True(t, nc == nil || recoded, "the test's histograms fit one chunk")
		if nc != nil {
			c = nc
		}
		app = napp
	}
	pc, err := storeapi.ChunkToProto(c)
	require.NoError(t, err)
	return pc
}

// rawChunks encodes samples as raw chunks of at most 120 samples.
func rawChunks(t *testing.T, samples []storeapitest.Sample) []*storepb.AggrChunk {
	t.Helper()
	var out []*storepb.AggrChunk
	for len(samples) > 0 {
		n := min(len(samples), 120)
		part := samples[:n]
		samples = samples[n:]
		var c chunkenc.Chunk
		if part[0].FH != nil {
			c = chunkenc.NewFloatHistogramChunk()
		} else {
			c = chunkenc.NewXORChunk()
		}
		app, err := c.Appender()
		require.NoError(t, err)
		for _, s := range part {
			if s.FH != nil {
				nc, recoded, napp, err := app.AppendFloatHistogram(nil, 0, s.T, s.FH, false)
				require.NoError(t, err)
				require.True(t, nc == nil || recoded)
				if nc != nil {
					c = nc
				}
				app = napp
				continue
			}
			app.Append(0, s.T, s.F)
		}
		pc, err := storeapi.ChunkToProto(c)
		require.NoError(t, err)
		out = append(out, &storepb.AggrChunk{MinTime: part[0].T, MaxTime: part[len(part)-1].T, Raw: pc})
	}
	return out
}

// dsStore is a Store API server over raw series that behaves like a store
// gateway holding a block downsampled to res for [from, split) and raw blocks
// for the rest: when the request allows res, the samples in [from, split) come
// as aggregate chunks of 24 windows with only the requested aggregates, and
// everything else as raw chunks. It records every request.
type dsStore struct {
	storepb.UnimplementedStoreServer
	infopb.UnimplementedInfoServer
	t           *testing.T
	data        []storeapitest.Series // sorted by labels
	res         int64
	from, split int64
	// edit, if set, changes every aggregate chunk before it is sent.
	edit func(*storepb.AggrChunk)

	mu   sync.Mutex
	reqs []*storepb.SeriesRequest
}

func newDSStore(t *testing.T, data []storeapitest.Series, from, split int64) *dsStore {
	return &dsStore{t: t, data: data, res: dsRes5m, from: from, split: split}
}

func (s *dsStore) Info(context.Context, *infopb.InfoRequest) (*infopb.InfoResponse, error) {
	return &infopb.InfoResponse{
		ComponentType: "store",
		Store:         &infopb.StoreInfo{MinTime: math.MinInt64, MaxTime: math.MaxInt64},
	}, nil
}

func (s *dsStore) Series(req *storepb.SeriesRequest, srv grpc.ServerStreamingServer[storepb.SeriesResponse]) error {
	s.mu.Lock()
	s.reqs = append(s.reqs, proto.Clone(req).(*storepb.SeriesRequest))
	s.mu.Unlock()
	ms, err := storeapi.MatchersFromProto(req.GetMatchers())
	if err != nil {
		return err
	}
	for _, sr := range s.data {
		if !matchesAll(sr.Labels, ms) {
			continue
		}
		var chunks []*storepb.AggrChunk
		samples := sr.Samples
		if req.GetMaxResolutionWindow() >= s.res {
			i := slices.IndexFunc(samples, func(x storeapitest.Sample) bool { return x.T >= s.from })
			j := slices.IndexFunc(samples, func(x storeapitest.Sample) bool { return x.T >= s.split })
			if i < 0 {
				i = len(samples)
			}
			if j < 0 {
				j = len(samples)
			}
			chunks = append(chunks, rawChunks(s.t, samples[:i])...)
			ws := downsample(s.t, samples[i:j], s.res)
			for len(ws) > 0 {
				n := min(len(ws), 24)
				c := aggrChunk(s.t, ws[:n], req.GetAggregates())
				if s.edit != nil {
					s.edit(c)
				}
				chunks = append(chunks, c)
				ws = ws[n:]
			}
			samples = samples[j:]
		}
		chunks = append(chunks, rawChunks(s.t, samples)...)
		if err := srv.Send(&storepb.SeriesResponse{Result: &storepb.SeriesResponse_Series{Series: &storepb.Series{
			Labels: storeapi.LabelsToProto(sr.Labels),
			Chunks: chunks,
		}}}); err != nil {
			return err
		}
	}
	return nil
}

// takeRequests returns the requests received since the last call.
func (s *dsStore) takeRequests() []*storepb.SeriesRequest {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := s.reqs
	s.reqs = nil
	return out
}

func matchesAll(ls labels.Labels, ms []*labels.Matcher) bool {
	for _, m := range ms {
		if !m.Matches(ls.Get(m.Name)) {
			return false
		}
	}
	return true
}

// dsQueryable serves st and returns a Queryable over it.
func dsQueryable(t *testing.T, st *dsStore) *querier.Queryable {
	t.Helper()
	ts := serveStore(t, st, st)
	return querier.NewQueryable(newEndpointSet(t, ts.addr), querier.Options{DisablePartialResponse: true}, nil, nil)
}

// rangeQuery runs qs from start to end and returns its matrix.
func rangeQuery(t *testing.T, ctx context.Context, q storage.Queryable, qs string, start, end int64, step time.Duration) (promql.Matrix, error) {
	t.Helper()
	engine := promqltest.NewTestEngine(t, false, 0, promqltest.DefaultMaxSamplesPerQuery)
	qry, err := engine.NewRangeQuery(ctx, q, nil, qs, time.UnixMilli(start), time.UnixMilli(end), step)
	require.NoError(t, err)
	defer qry.Close()
	res := qry.Exec(ctx)
	if res.Err != nil {
		return nil, res.Err
	}
	m, err := res.Matrix()
	require.NoError(t, err)
	// Close hands the points back to the engine's pools: copy them.
	out := make(promql.Matrix, len(m))
	for i, s := range m {
		out[i] = promql.Series{Metric: s.Metric, Floats: slices.Clone(s.Floats), Histograms: slices.Clone(s.Histograms)}
	}
	return out, nil
}

func TestDownsampledPromQLMatchesRaw(t *testing.T) {
	st := newDSStore(t, dsFixture(), math.MinInt64, math.MaxInt64)
	q := dsQueryable(t, st)
	rawCtx := querier.WithMaxSourceResolution(context.Background(), 0)
	dsCtx := querier.WithMaxSourceResolution(context.Background(), 5*time.Minute)
	// Evaluation one millisecond before each full hour: the 1h ranges then
	// hold exactly twelve whole 5m windows, raw and downsampled.
	start, end := dsBase+2*dsHour-1, dsBase+12*dsHour-1

	for _, tc := range []struct {
		query    string
		rawQuery string // the query over raw data to compare with; query if empty
		aggrs    []storepb.Aggr
		// scale multiplies the downsampled result before the comparison.
		scale float64
		// relTol is the relative tolerance; zero means exactly equal.
		relTol float64
	}{
		// Exact up to extrapolation: the counter is a straight line with its reset
		// applied, and extrapolating a straight line is exact.
		{query: "rate(c[1h])", aggrs: []storepb.Aggr{storepb.Aggr_COUNTER}, relTol: 1e-9},
		{query: "increase(c[1h])", aggrs: []storepb.Aggr{storepb.Aggr_COUNTER}, relTol: 1e-9},
		{query: "sum(rate(c[1h]))", aggrs: []storepb.Aggr{storepb.Aggr_COUNTER}, relTol: 1e-9},
		{query: "min_over_time(g[1h])", aggrs: []storepb.Aggr{storepb.Aggr_MIN}},
		{query: "max_over_time(g[1h])", aggrs: []storepb.Aggr{storepb.Aggr_MAX}},
		{query: "sum_over_time(g[1h])", aggrs: []storepb.Aggr{storepb.Aggr_SUM}},
		// Every window holds 20 samples, so the mean of the window means is the
		// mean of the samples.
		{query: "avg_over_time(g[1h])", aggrs: []storepb.Aggr{storepb.Aggr_COUNT, storepb.Aggr_SUM}, relTol: 1e-12},
		// count_over_time counts the points it sees: one per window.
		{query: "count_over_time(g[1h])", aggrs: []storepb.Aggr{storepb.Aggr_COUNT}, scale: float64(dsPerWin)},
		// A plain selector reads the average of the latest window.
		{query: "g", rawQuery: "avg_over_time(g[5m])", aggrs: []storepb.Aggr{storepb.Aggr_COUNT, storepb.Aggr_SUM}, relTol: 1e-12},
	} {
		t.Run(tc.query, func(t *testing.T) {
			rawQuery := cmpOr(tc.rawQuery, tc.query)
			st.takeRequests()
			want, err := rangeQuery(t, rawCtx, q, rawQuery, start, end, time.Hour)
			require.NoError(t, err)
			reqs := st.takeRequests()
			require.Len(t, reqs, 1)
			require.Zero(t, reqs[0].GetMaxResolutionWindow())

			got, err := rangeQuery(t, dsCtx, q, tc.query, start, end, time.Hour)
			require.NoError(t, err)
			reqs = st.takeRequests()
			require.Len(t, reqs, 1)
			require.Equal(t, dsRes5m, reqs[0].GetMaxResolutionWindow())
			require.Equal(t, tc.aggrs, reqs[0].GetAggregates())

			require.Len(t, got, len(want))
			for i := range want {
				require.Len(t, got[i].Floats, len(want[i].Floats), "series %s", want[i].Metric)
				require.Len(t, got[i].Floats, 11)
				for j, w := range want[i].Floats {
					g := got[i].Floats[j]
					require.Equal(t, w.T, g.T)
					v := g.F
					if tc.scale != 0 {
						v *= tc.scale
					}
					if tc.relTol == 0 {
						require.Equal(t, w.F, v, "at %d", w.T)
					} else {
						require.InEpsilon(t, w.F, v, tc.relTol, "at %d", w.T)
					}
				}
			}
		})
	}

	t.Run("native histograms", func(t *testing.T) {
		want, err := rangeQuery(t, rawCtx, q, "rate(h[1h])", start, end, time.Hour)
		require.NoError(t, err)
		got, err := rangeQuery(t, dsCtx, q, "rate(h[1h])", start, end, time.Hour)
		require.NoError(t, err)
		require.Len(t, want, 1)
		require.Len(t, got, 1)
		require.Len(t, got[0].Histograms, 11)
		require.Len(t, got[0].Histograms, len(want[0].Histograms))
		for j, w := range want[0].Histograms {
			g := got[0].Histograms[j]
			require.Equal(t, w.T, g.T)
			require.InEpsilon(t, w.H.Count, g.H.Count, 1e-9)
			require.InEpsilon(t, w.H.Sum, g.H.Sum, 1e-9)
		}
	})
}

// cmpOr returns a unless it is empty, else b.
func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// TestDownsampledSelectReadsAggregates checks the samples Select reads from
// aggregate chunks, float and histogram, against the windows they were made of.
func TestDownsampledSelectReadsAggregates(t *testing.T) {
	st := newDSStore(t, dsFixture(), math.MinInt64, math.MaxInt64)
	q := dsQueryable(t, st)
	ctx := querier.WithMaxSourceResolution(context.Background(), 5*time.Minute)

	for _, tc := range []struct {
		fn   string
		want func(dsWindow) float64
	}{
		{"", func(w dsWindow) float64 { return w.sum / w.count }},
		{"rate", func(w dsWindow) float64 { return w.counter }},
		{"min_over_time", func(w dsWindow) float64 { return w.min }},
		{"max_over_time", func(w dsWindow) float64 { return w.max }},
		{"sum_over_time", func(w dsWindow) float64 { return w.sum }},
		{"count_over_time", func(w dsWindow) float64 { return w.count }},
	} {
		t.Run("func="+tc.fn, func(t *testing.T) {
			got := selectSamples(t, ctx, q, tc.fn, "c")
			var want []smp
			for _, w := range downsample(t, dsCounter(), dsRes5m) {
				want = append(want, smp{w.t, tc.want(w)})
			}
			require.Equal(t, want, got)
		})
	}

	t.Run("histogram average", func(t *testing.T) {
		ws := downsample(t, dsHistograms(), dsRes5m)
		got := selectHistograms(t, ctx, q, "", "h")
		require.Len(t, got, len(ws))
		for i, w := range ws {
			require.Equal(t, w.t, got[i].T)
			require.Equal(t, w.fhSum.Copy().Div(w.count).String(), got[i].FH.String(), "window at %d", w.t)
		}
	})
	t.Run("histogram counter", func(t *testing.T) {
		ws := downsample(t, dsHistograms(), dsRes5m)
		got := selectHistograms(t, ctx, q, "increase", "h")
		require.Len(t, got, len(ws))
		for i, w := range ws {
			require.Equal(t, w.t, got[i].T)
			require.True(t, w.fhCounter.Equals(got[i].FH), "window at %d", w.t)
		}
	})
}

// selectSamples selects the float samples of the series named name over the
// whole data, with hints.Func fn.
func selectSamples(t *testing.T, ctx context.Context, q storage.Queryable, fn, name string) []smp {
	t.Helper()
	var out []smp
	for _, s := range selectSeries(t, ctx, q, fn, name) {
		require.Nil(t, s.FH)
		out = append(out, smp{s.T, s.F})
	}
	return out
}

// selectHistograms is selectSamples for histogram series.
func selectHistograms(t *testing.T, ctx context.Context, q storage.Queryable, fn, name string) []storeapitest.Sample {
	t.Helper()
	out := selectSeries(t, ctx, q, fn, name)
	for _, s := range out {
		require.NotNil(t, s.FH)
	}
	return out
}

func selectSeries(t *testing.T, ctx context.Context, q storage.Queryable, fn, name string) []storeapitest.Sample {
	t.Helper()
	out, err := trySelect(t, ctx, q, fn, name)
	require.NoError(t, err)
	return out
}

// trySelect selects the one series named name and reads its samples, or the
// error of its iterator.
func trySelect(t *testing.T, ctx context.Context, q storage.Queryable, fn, name string) ([]storeapitest.Sample, error) {
	t.Helper()
	qr, err := q.Querier(dsBase, dsEnd)
	require.NoError(t, err)
	defer func() { require.NoError(t, qr.Close()) }()
	set := qr.Select(ctx, true, &storage.SelectHints{Start: dsBase, End: dsEnd, Func: fn}, eq("__name__", name))
	require.True(t, set.Next(), "no series %s: %v", name, set.Err())
	var out []storeapitest.Sample
	it := set.At().Iterator(nil)
	for vt := it.Next(); vt != chunkenc.ValNone; vt = it.Next() {
		switch vt {
		case chunkenc.ValFloat:
			ts, v := it.At()
			out = append(out, storeapitest.Sample{T: ts, F: v})
		case chunkenc.ValFloatHistogram:
			ts, fh := it.AtFloatHistogram(nil)
			out = append(out, storeapitest.Sample{T: ts, FH: fh})
		default:
			t.Fatalf("unexpected value type %s", vt)
		}
	}
	if err := it.Err(); err != nil {
		return out, err
	}
	require.False(t, set.Next())
	require.NoError(t, set.Err())
	return out, nil
}

// TestDownsampledMixedWithRaw serves a series as aggregates for its old part
// and raw chunks for its recent part, as a store gateway does once the old
// blocks are downsampled, and a second store with raw data that overlaps the
// aggregates, as a receiver's or an undeleted raw block's: Select reads them in
// time order, raw data winning where both exist, and rate across the boundary
// equals rate over raw data.
func TestDownsampledMixedWithRaw(t *testing.T) {
	split := dsBase + 6*dsHour
	old := newDSStore(t, dsFixture(), math.MinInt64, split)
	oldTS := serveStore(t, old, old)
	ctx := querier.WithMaxSourceResolution(context.Background(), 5*time.Minute)

	aggregated := func(samples []storeapitest.Sample, from, to int64) []smp {
		var out []smp
		for _, w := range downsample(t, samples, dsRes5m) {
			if w.t >= from && w.t < to {
				out = append(out, smp{w.t, w.sum / w.count})
			}
		}
		return out
	}
	rawPart := func(samples []storeapitest.Sample, from, to int64) []smp {
		var out []smp
		for _, s := range samples {
			if s.T >= from && s.T < to {
				out = append(out, smp{s.T, s.F})
			}
		}
		return out
	}

	t.Run("one store", func(t *testing.T) {
		q := querier.NewQueryable(newEndpointSet(t, oldTS.addr), querier.Options{}, nil, nil)
		got := selectSamples(t, ctx, q, "", "g")
		want := append(aggregated(dsGauge()[:(split-dsBase)/dsScrape], math.MinInt64, split), rawPart(dsGauge(), split, math.MaxInt64)...)
		require.Equal(t, want, got)
		require.True(t, slices.IsSortedFunc(got, func(a, b smp) int { return int(a.T - b.T) }))

		// rate across the boundary: exact where its range is all downsampled or
		// all raw; where it holds both, the irregular sample spacing changes
		// only the extrapolation at the range's start. resets sees no false
		// reset where the aggregates end and the raw data begins.
		rawCtx := querier.WithMaxSourceResolution(context.Background(), 0)
		start, end := split-dsHour-1, split+dsHour-1
		for _, qs := range []string{"rate(c[1h])", "resets(c[1h])"} {
			want, err := rangeQuery(t, rawCtx, q, qs, start, end, 5*time.Minute)
			require.NoError(t, err)
			got, err := rangeQuery(t, ctx, q, qs, start, end, 5*time.Minute)
			require.NoError(t, err)
			require.Len(t, got, 1)
			require.Len(t, want, 1)
			require.Len(t, got[0].Floats, 25)
			require.Len(t, got[0].Floats, len(want[0].Floats))
			for j, w := range want[0].Floats {
				g := got[0].Floats[j]
				require.Equal(t, w.T, g.T)
				switch {
				case qs == "resets(c[1h])":
					require.Zero(t, g.F, "at %d", w.T)
					require.Zero(t, w.F, "at %d", w.T)
				case w.T < split || w.T-dsHour+1 >= split:
					require.InEpsilon(t, w.F, g.F, 1e-9, "%s at %d", qs, w.T)
				default:
					require.InEpsilon(t, w.F, g.F, 0.1, "%s at %d", qs, w.T)
				}
			}
		}
	})

	t.Run("raw store overlapping the aggregates", func(t *testing.T) {
		// A raw-only store with the gauge for [4h, 6h).
		var overlap []storeapitest.Sample
		for _, s := range dsGauge() {
			if s.T >= dsBase+4*dsHour && s.T < split {
				overlap = append(overlap, s)
			}
		}
		recent := newDSStore(t, []storeapitest.Series{series("g", []string{"job", "a"}, overlap)}, math.MaxInt64, math.MaxInt64)
		recentTS := serveStore(t, recent, recent)
		q := querier.NewQueryable(newEndpointSet(t, oldTS.addr, recentTS.addr), querier.Options{}, nil, nil)
		got := selectSamples(t, ctx, q, "", "g")
		want := append(aggregated(dsGauge()[:(split-dsBase)/dsScrape], math.MinInt64, dsBase+4*dsHour), rawPart(dsGauge(), dsBase+4*dsHour, math.MaxInt64)...)
		require.Equal(t, want, got)
	})

	t.Run("replicas with identical aggregates", func(t *testing.T) {
		twin := newDSStore(t, dsFixture(), math.MinInt64, split)
		twinTS := serveStore(t, twin, twin)
		q := querier.NewQueryable(newEndpointSet(t, oldTS.addr, twinTS.addr), querier.Options{}, nil, nil)
		got := selectSamples(t, ctx, q, "", "g")
		want := append(aggregated(dsGauge()[:(split-dsBase)/dsScrape], math.MinInt64, split), rawPart(dsGauge(), split, math.MaxInt64)...)
		require.Equal(t, want, got)
	})
}

func TestDownsampledMissingAggregate(t *testing.T) {
	ctx := querier.WithMaxSourceResolution(context.Background(), 5*time.Minute)
	for _, tc := range []struct {
		name    string
		edit    func(*storepb.AggrChunk)
		fn      string
		metric  string
		wantErr []string
	}{
		{
			name:    "average without count",
			edit:    func(c *storepb.AggrChunk) { c.Count = nil },
			metric:  "g",
			wantErr: []string{`{__name__="g", job="a"}`, "no COUNT aggregate"},
		},
		{
			name:    "counter without counter",
			edit:    func(c *storepb.AggrChunk) { c.Counter = nil },
			fn:      "rate",
			metric:  "c",
			wantErr: []string{`{__name__="c", job="a"}`, "no COUNTER aggregate"},
		},
		{
			name:    "min of native histograms",
			fn:      "min_over_time",
			metric:  "h",
			wantErr: []string{`{__name__="h", job="a"}`, "no MIN aggregate"},
		},
		{
			name: "count one window short",
			edit: func(c *storepb.AggrChunk) {
				// Re-encode the count without its last sample.
				chk, err := chunkenc.FromData(chunkenc.EncXOR, c.Count.Data)
				require.NoError(t, err)
				x := chunkenc.NewXORChunk()
				app, err := x.Appender()
				require.NoError(t, err)
				it := chk.Iterator(nil)
				for i := 0; i < chk.NumSamples()-1 && it.Next() == chunkenc.ValFloat; i++ {
					ts, v := it.At()
					app.Append(0, ts, v)
				}
				c.Count, err = storeapi.ChunkToProto(x)
				require.NoError(t, err)
			},
			metric:  "g",
			wantErr: []string{`{__name__="g", job="a"}`, "the COUNT aggregate has no sample for the SUM sample"},
		},
		{
			name: "count at other timestamps",
			edit: func(c *storepb.AggrChunk) {
				chk, err := chunkenc.FromData(chunkenc.EncXOR, c.Count.Data)
				require.NoError(t, err)
				x := chunkenc.NewXORChunk()
				app, err := x.Appender()
				require.NoError(t, err)
				it := chk.Iterator(nil)
				for it.Next() == chunkenc.ValFloat {
					ts, v := it.At()
					app.Append(0, ts+1, v)
				}
				c.Count, err = storeapi.ChunkToProto(x)
				require.NoError(t, err)
			},
			metric:  "g",
			wantErr: []string{`{__name__="g", job="a"}`, "the SUM aggregate has a sample at", "where the COUNT aggregate has one at"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st := newDSStore(t, dsFixture(), math.MinInt64, math.MaxInt64)
			st.edit = tc.edit
			q := dsQueryable(t, st)
			_, err := trySelect(t, ctx, q, tc.fn, tc.metric)
			require.ErrorIs(t, err, querier.ErrMissingAggregate)
			for _, s := range tc.wantErr {
				require.ErrorContains(t, err, s)
			}

			// The engine reports the same error.
			qs := tc.metric
			if tc.fn != "" {
				qs = fmt.Sprintf("%s(%s[1h])", tc.fn, tc.metric)
			}
			_, err = rangeQuery(t, ctx, q, qs, dsBase+dsHour, dsBase+2*dsHour, time.Hour)
			require.ErrorIs(t, err, querier.ErrMissingAggregate)
		})
	}
}

// TestMaxResolutionWindowSent checks the max_resolution_window and aggregates
// the API's requests reach the store with.
func TestMaxResolutionWindowSent(t *testing.T) {
	st := newDSStore(t, dsFixture(), math.MinInt64, math.MaxInt64)
	q := dsQueryable(t, st)
	newAPI := func(auto bool) http.Handler {
		opts := querier.DefaultAPIOptions()
		opts.AutoDownsampling = auto
		opts.Context = querier.WithRequestParams
		mux := http.NewServeMux()
		querier.NewAPI(q, opts, nil, nil).Register(mux)
		return mux
	}
	raw, auto := newAPI(false), newAPI(true)
	const (
		minute = int64(60 * 1000)
		hour   = 60 * minute
	)
	counter := []storepb.Aggr{storepb.Aggr_COUNTER}
	avg := []storepb.Aggr{storepb.Aggr_COUNT, storepb.Aggr_SUM}

	for _, tc := range []struct {
		name      string
		api       http.Handler
		query     string
		step      string // empty for an instant query
		res       string // max_source_resolution; empty leaves it out
		wantRes   int64
		wantAggrs []storepb.Aggr
	}{
		{name: "default raw", api: raw, query: "g", step: "60", wantRes: 0, wantAggrs: avg},
		{name: "0", api: raw, query: "g", step: "60", res: "0", wantRes: 0, wantAggrs: avg},
		{name: "raw", api: auto, query: "g", step: "60", res: "raw", wantRes: 0, wantAggrs: avg},
		{name: "5m", api: raw, query: "g", step: "60", res: "5m", wantRes: 5 * minute, wantAggrs: avg},
		{name: "1h", api: raw, query: "max_over_time(g[2h])", step: "60", res: "1h", wantRes: hour, wantAggrs: []storepb.Aggr{storepb.Aggr_MAX}},
		{name: "seconds", api: raw, query: "g", res: "3600", wantRes: hour, wantAggrs: avg},
		{name: "1h instant", api: raw, query: "g", res: "1h", wantRes: hour, wantAggrs: avg},
		{name: "rate capped at half its range", api: raw, query: "rate(c[1h])", step: "60", res: "1h", wantRes: 30 * minute, wantAggrs: counter},
		{name: "rate under the cap", api: raw, query: "rate(c[4h])", step: "60", res: "1h", wantRes: hour, wantAggrs: counter},
		{name: "auto step 60s", api: raw, query: "g", step: "60", res: "auto", wantRes: 12 * 1000, wantAggrs: avg},
		{name: "auto step 1h", api: raw, query: "g", step: "3600", res: "auto", wantRes: 12 * minute, wantAggrs: avg},
		{name: "auto step 6h", api: raw, query: "sum_over_time(g[1d])", step: "21600", res: "auto", wantRes: 72 * minute, wantAggrs: []storepb.Aggr{storepb.Aggr_SUM}},
		{name: "auto by option", api: auto, query: "g", step: "3600", wantRes: 12 * minute, wantAggrs: avg},
		{name: "auto range finer than step", api: auto, query: "rate(c[5m])", step: "3600", wantRes: minute, wantAggrs: counter},
		{name: "auto instant selector", api: auto, query: "g", wantRes: 0, wantAggrs: avg},
		{name: "auto instant range", api: auto, query: "rate(c[1d])", wantRes: 24 * hour / 5, wantAggrs: counter},
		{name: "auto subquery step", api: auto, query: "max_over_time(g[1d:1h])", wantRes: 12 * minute, wantAggrs: []storepb.Aggr{storepb.Aggr_MAX}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			params := url.Values{"query": {tc.query}}
			path := "/api/v1/query"
			if tc.step != "" {
				path = "/api/v1/query_range"
				params.Set("start", fmt.Sprint((dsBase+6*dsHour)/1000))
				params.Set("end", fmt.Sprint((dsBase+12*dsHour)/1000))
				params.Set("step", tc.step)
			} else {
				params.Set("time", fmt.Sprint((dsBase+12*dsHour)/1000))
			}
			if tc.res != "" {
				params.Set("max_source_resolution", tc.res)
			}
			st.takeRequests()
			rec := httptest.NewRecorder()
			tc.api.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path+"?"+params.Encode(), nil))
			require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
			require.True(t, strings.Contains(rec.Body.String(), `"status":"success"`), rec.Body.String())
			reqs := st.takeRequests()
			require.Len(t, reqs, 1)
			require.Equal(t, tc.wantRes, reqs[0].GetMaxResolutionWindow())
			require.Equal(t, tc.wantAggrs, reqs[0].GetAggregates())
		})
	}
}
