package bucketstore_test

import (
	"bytes"
	"context"
	"fmt"
	"path"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/stratametrics/strata/block"
	"github.com/stratametrics/strata/objstore"
	"github.com/stratametrics/strata/storeapi/infopb"
	"github.com/stratametrics/strata/storeapi/storeapitest"
	"github.com/stratametrics/strata/storeapi/storepb"
	"github.com/stratametrics/strata/storegw/bucketstore"
)

const (
	res5m = block.Resolution5m
	res1h = block.Resolution1h
	hour  = int64(60 * 60 * 1000)
	// dsWindows windows of 5m, cut every dsPerChunk samples: 3 chunks.
	dsWindows  = 250
	dsPerChunk = 100
)

// dsFixture is a bucket with one 5m block (see dsSeries) and a store serving it.
type dsFixture struct {
	bkt    objstore.Bucket
	meta   *block.Meta
	series []aggrSeries
}

// dsSeries are the series of the 5m test block:
//   - cpu{i="0"} and cpu{i="1"} with all five aggregates, cut at the same windows;
//   - hist with count, sum and counter only, as native histograms have;
//   - uneven, whose counter starts one sample earlier and is cut elsewhere;
//   - 100 bulk series, so that the aggregates of one series lie far apart.
func dsSeries() []aggrSeries {
	out := []aggrSeries{
		uniform(metric("cpu", "i", "0"), bigMint, res5m, dsWindows, dsPerChunk, 0, allAggregates...),
		uniform(metric("cpu", "i", "1"), bigMint, res5m, dsWindows, dsPerChunk, 1000, allAggregates...),
		uniform(metric("hist"), bigMint, res5m, dsWindows, dsPerChunk, 0, block.AggregateCount, block.AggregateSum, block.AggregateCounter),
	}
	uneven := uniform(metric("uneven"), bigMint, res5m, dsWindows, dsPerChunk, 0, block.AggregateCount, block.AggregateSum)
	counter := append([]sample{{T: bigMint, V: 0}}, windowSamples(block.AggregateCounter, bigMint, res5m, dsWindows, 0)...)
	uneven.chunks[block.AggregateCounter] = cut(counter, 60)
	out = append(out, uneven)
	for i := range 100 {
		out = append(out, uniform(metric("bulk", "i", fmt.Sprint(i)), bigMint, res5m, dsWindows, dsPerChunk, float64(i), allAggregates...))
	}
	return out
}

func newDSFixture(t *testing.T) dsFixture {
	t.Helper()
	series := dsSeries()
	bkt := newBucket(t)
	m := upload(t, bkt, downsampledBlock(t, res5m, bigMint, bigMint+dsWindows*res5m, series), labels.FromStrings("tenant_id", "t1"))
	require.Equal(t, res5m, m.Thanos.Downsample.Resolution)
	return dsFixture{bkt: bkt, meta: m, series: series}
}

func (f dsFixture) serve(t *testing.T, reg prometheus.Registerer, opts ...bucketstore.Option) (*bucketstore.Store, storepb.StoreClient, infopb.InfoClient) {
	t.Helper()
	s := bucketstore.NewStore(f.bkt, t.TempDir(), reg, nil, opts...)
	require.NoError(t, s.Add(context.Background(), f.meta))
	c, i := storeapitest.Serve(t, s, s)
	return s, c, i
}

// dsRequest asks for the whole 5m block with the given aggregates.
func dsRequest(aggrs []storepb.Aggr, ms ...*storepb.LabelMatcher) *storepb.SeriesRequest {
	return &storepb.SeriesRequest{
		MinTime: bigMint, MaxTime: bigMint + dsWindows*res5m,
		MaxResolutionWindow: res5m, Aggregates: aggrs, Matchers: ms,
	}
}

var fiveAggrs = []storepb.Aggr{storepb.Aggr_COUNT, storepb.Aggr_SUM, storepb.Aggr_MIN, storepb.Aggr_MAX, storepb.Aggr_COUNTER}

// TestDownsampledBlockServesAggregates reads every series of a 5m block with
// all five aggregates, decodes the chunks and compares them with what was
// written.
func TestDownsampledBlockServesAggregates(t *testing.T) {
	f := newDSFixture(t)
	_, client, _ := f.serve(t, nil)
	got, err := readAll(t, client, dsRequest(fiveAggrs, &storepb.LabelMatcher{Type: storepb.LabelMatcher_RE, Name: "__name__", Value: ".+"}))
	require.NoError(t, err)
	require.Len(t, got, len(f.series))
	series := bySeries(got)

	for _, want := range f.series {
		lset := labels.NewBuilder(want.lset).Set("tenant_id", "t1").Labels()
		s, ok := series[lset.String()]
		require.True(t, ok, "series %s missing", lset)
		var present []string
		for _, a := range allAggregates {
			if want.chunks[a] != nil {
				present = append(present, a)
			}
		}
		paired := true
		for _, a := range present {
			paired = paired && len(want.chunks[a]) == len(want.chunks[present[0]])
		}
		if paired {
			require.Len(t, s.GetChunks(), len(want.chunks[present[0]]), lset.String())
			for i, c := range s.GetChunks() {
				require.Equal(t, present, fieldsSet(c), "chunk %d of %s", i, lset)
				mint, maxt := int64(1<<62), int64(-1<<62)
				for _, a := range present {
					w := want.chunks[a][i]
					require.Equal(t, fmtSamples(w), fmtSamples(decode(t, field(c, a))), "%s of chunk %d of %s", a, i, lset)
					mint, maxt = min(mint, w[0].T), max(maxt, w[len(w)-1].T)
				}
				require.Equal(t, mint, c.GetMinTime())
				require.Equal(t, maxt, c.GetMaxTime())
			}
			continue
		}
		// Not paired: one aggregate per AggrChunk, in time order.
		got := map[string][]sample{}
		n := 0
		for _, c := range s.GetChunks() {
			fs := fieldsSet(c)
			require.Len(t, fs, 1, lset.String())
			smp := decode(t, field(c, fs[0]))
			require.Equal(t, smp[0].T, c.GetMinTime())
			require.Equal(t, smp[len(smp)-1].T, c.GetMaxTime())
			got[fs[0]] = append(got[fs[0]], smp...)
			n++
		}
		wantN := 0
		for _, a := range present {
			var all []sample
			for _, c := range want.chunks[a] {
				all = append(all, c...)
			}
			wantN += len(want.chunks[a])
			require.Equal(t, fmtSamples(all), fmtSamples(got[a]), "%s of %s", a, lset)
		}
		require.Equal(t, wantN, n)
	}
	require.Len(t, series[`{__name__="uneven", tenant_id="t1"}`].GetChunks(), 3+3+5, "count, sum and counter unpaired")
	require.Len(t, series[`{__name__="hist", tenant_id="t1"}`].GetChunks(), 3, "count, sum and counter paired")
}

// TestDownsampledAggregatesFilter checks which AggrChunk fields each choice of
// aggregates fills, and that asking for the counter alone reads far less from
// the bucket than asking for all five.
func TestDownsampledAggregatesFilter(t *testing.T) {
	f := newDSFixture(t)
	reg := prometheus.NewRegistry()
	s, client, _ := f.serve(t, reg)
	cases := []struct {
		name  string
		aggrs []storepb.Aggr
		cpu   []string // fields of cpu's chunks
		hist  []string // fields of hist's chunks; nil: hist is not sent
	}{
		{name: "none asks for count and sum", cpu: []string{"count", "sum"}, hist: []string{"count", "sum"}},
		{name: "raw asks for count and sum", aggrs: []storepb.Aggr{storepb.Aggr_RAW}, cpu: []string{"count", "sum"}, hist: []string{"count", "sum"}},
		{name: "counter", aggrs: []storepb.Aggr{storepb.Aggr_COUNTER}, cpu: []string{"counter"}, hist: []string{"counter"}},
		{name: "raw is ignored beside others", aggrs: []storepb.Aggr{storepb.Aggr_RAW, storepb.Aggr_COUNTER}, cpu: []string{"counter"}, hist: []string{"counter"}},
		{name: "min and max; hist has neither", aggrs: []storepb.Aggr{storepb.Aggr_MAX, storepb.Aggr_MIN}, cpu: []string{"min", "max"}},
		{name: "all five", aggrs: fiveAggrs, cpu: allAggregates, hist: []string{"count", "sum", "counter"}},
		{name: "duplicates", aggrs: []storepb.Aggr{storepb.Aggr_SUM, storepb.Aggr_SUM}, cpu: []string{"sum"}, hist: []string{"sum"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := readAll(t, client, dsRequest(c.aggrs, &storepb.LabelMatcher{Type: storepb.LabelMatcher_RE, Name: "__name__", Value: "cpu|hist"}))
			require.NoError(t, err)
			series := bySeries(got)
			check := func(name string, want []string) {
				s, ok := series[name]
				if want == nil {
					require.False(t, ok, "%s must not be sent", name)
					return
				}
				require.True(t, ok, "%s missing", name)
				require.Len(t, s.GetChunks(), 3, name)
				for _, ch := range s.GetChunks() {
					require.Equal(t, want, fieldsSet(ch), name)
				}
			}
			check(`{__name__="cpu", i="0", tenant_id="t1"}`, c.cpu)
			check(`{__name__="cpu", i="1", tenant_id="t1"}`, c.cpu)
			check(`{__name__="hist", tenant_id="t1"}`, c.hist)
		})
	}

	read := func(aggrs []storepb.Aggr) int64 {
		before := s.ReadStats()
		got, err := readAll(t, client, dsRequest(aggrs, eqMatcher("__name__", "cpu"), eqMatcher("i", "0")))
		require.NoError(t, err)
		require.Len(t, got, 1)
		after := s.ReadStats()
		require.Equal(t, float64(after.Bytes), gathered(t, reg, "strata_bucketstore_bucket_bytes_read_total"))
		return after.Bytes - before.Bytes
	}
	counter, all := read([]storepb.Aggr{storepb.Aggr_COUNTER}), read(fiveAggrs)
	t.Logf("counter only: %d bytes; all five aggregates: %d bytes", counter, all)
	require.Less(t, 2*counter, all, "one aggregate reads a fraction of what five do")
}

// TestDownsampledMatchersAndLabels checks that clients see a downsampled
// block's series without the aggregate label, whatever they match on it.
func TestDownsampledMatchersAndLabels(t *testing.T) {
	ctx := context.Background()
	f := newDSFixture(t)
	_, client, _ := f.serve(t, nil)
	matchers := func(ms ...*storepb.LabelMatcher) []*storepb.LabelMatcher {
		return append([]*storepb.LabelMatcher{eqMatcher("__name__", "cpu")}, ms...)
	}
	cases := []struct {
		name       string
		matchers   []*storepb.LabelMatcher
		skipChunks bool
		want       int
	}{
		{name: "no aggregate matcher", matchers: matchers(), want: 2},
		{name: "equal to an aggregate", matchers: matchers(eqMatcher(block.AggregateLabel, "count"))},
		{name: "regexp of aggregates", matchers: matchers(&storepb.LabelMatcher{Type: storepb.LabelMatcher_RE, Name: block.AggregateLabel, Value: "count|sum"})},
		{name: "equal to empty", matchers: matchers(eqMatcher(block.AggregateLabel, "")), want: 2},
		{name: "not equal to an aggregate", matchers: matchers(&storepb.LabelMatcher{Type: storepb.LabelMatcher_NEQ, Name: block.AggregateLabel, Value: "count"}), want: 2},
		{name: "skip chunks", matchers: matchers(), skipChunks: true, want: 2},
		{name: "skip chunks, other series labels", matchers: matchers(eqMatcher("i", "1")), skipChunks: true, want: 1},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			req := dsRequest(nil, c.matchers...)
			req.SkipChunks = c.skipChunks
			got, err := readAll(t, client, req)
			require.NoError(t, err)
			require.Len(t, got, c.want)
			for _, s := range got {
				require.NotContains(t, labelsString(s), block.AggregateLabel)
				if c.skipChunks {
					require.Empty(t, s.GetChunks())
				} else {
					require.NotEmpty(t, s.GetChunks())
				}
			}
		})
	}

	end := bigMint + dsWindows*res5m
	names, err := client.LabelNames(ctx, &storepb.LabelNamesRequest{Start: bigMint, End: end})
	require.NoError(t, err)
	require.Equal(t, []string{"__name__", "i", "tenant_id"}, names.GetNames())
	names, err = client.LabelNames(ctx, &storepb.LabelNamesRequest{Start: bigMint, End: end, Matchers: matchers()})
	require.NoError(t, err)
	require.Equal(t, []string{"__name__", "i", "tenant_id"}, names.GetNames())
	for _, ms := range [][]*storepb.LabelMatcher{nil, matchers()} {
		values, err := client.LabelValues(ctx, &storepb.LabelValuesRequest{Label: block.AggregateLabel, Start: bigMint, End: end, Matchers: ms})
		require.NoError(t, err)
		require.Empty(t, values.GetValues())
	}
	values, err := client.LabelValues(ctx, &storepb.LabelValuesRequest{Label: "i", Start: bigMint, End: end, Matchers: matchers()})
	require.NoError(t, err)
	require.Equal(t, []string{"0", "1"}, values.GetValues())
}

// TestDownsampledLimitsAndCaches checks that the samples limit counts the
// aggregate chunks served, and that a cached downsampled query reads nothing
// the second time.
func TestDownsampledLimitsAndCaches(t *testing.T) {
	f := newDSFixture(t)
	one := []*storepb.LabelMatcher{eqMatcher("__name__", "cpu"), eqMatcher("i", "0")}
	t.Run("samples limit", func(t *testing.T) {
		_, client, _ := f.serve(t, nil, bucketstore.WithLimits(0, dsWindows))
		_, err := readAll(t, client, dsRequest([]storepb.Aggr{storepb.Aggr_COUNTER}, one...))
		require.NoError(t, err, "one aggregate: exactly the limit")
		_, err = readAll(t, client, dsRequest([]storepb.Aggr{storepb.Aggr_COUNT, storepb.Aggr_SUM}, one...))
		require.Equal(t, codes.ResourceExhausted, status.Code(err), "two aggregates: twice the limit")
	})
	t.Run("series limit", func(t *testing.T) {
		// Each aggregate series read counts: the limit trips before the
		// entries that would tell which series they belong to are read.
		_, client, _ := f.serve(t, nil, bucketstore.WithLimits(2, 0))
		_, err := readAll(t, client, dsRequest([]storepb.Aggr{storepb.Aggr_COUNTER}, eqMatcher("__name__", "cpu")))
		require.NoError(t, err, "two series, one aggregate each")
		_, err = readAll(t, client, dsRequest([]storepb.Aggr{storepb.Aggr_COUNT, storepb.Aggr_SUM}, eqMatcher("__name__", "cpu")))
		require.Equal(t, codes.ResourceExhausted, status.Code(err), "two series, two aggregates each")
	})
	t.Run("caches", func(t *testing.T) {
		reg := prometheus.NewRegistry()
		s, client, _ := f.serve(t, reg, bucketstore.WithCaches(newCaches(reg)))
		req := dsRequest(fiveAggrs, eqMatcher("__name__", "cpu"))
		first, err := readAll(t, client, req)
		require.NoError(t, err)
		before := s.ReadStats()
		second, err := readAll(t, client, req)
		require.NoError(t, err)
		require.Equal(t, before, s.ReadStats(), "the second query reads nothing")
		require.Equal(t, summaryAggr(first), summaryAggr(second))
	})
}

// summaryAggr renders series with every field of every chunk.
func summaryAggr(ss []*storepb.Series) []string {
	var out []string
	for _, s := range ss {
		line := labelsString(s)
		for _, c := range s.GetChunks() {
			line += fmt.Sprintf(" [%d,%d", c.GetMinTime(), c.GetMaxTime())
			for _, f := range fieldsSet(c) {
				line += fmt.Sprintf(" %s:%x", f, field(c, f).GetHash())
			}
			line += "]"
		}
		out = append(out, line)
	}
	return out
}

// TestCorruptDownsampledBlock flips a byte in a 5m block's chunks: a query
// fails naming the block.
func TestCorruptDownsampledBlock(t *testing.T) {
	ctx := context.Background()
	f := newDSFixture(t)
	_, client, _ := f.serve(t, nil)
	seg := path.Join(f.meta.ULID.String(), block.ChunksDirname, "000001")
	b := readObject(t, f.bkt, seg)
	b[len(b)/2] ^= 0xff
	require.NoError(t, f.bkt.Upload(ctx, seg, bytes.NewReader(b)))

	_, err := readAll(t, client, dsRequest(fiveAggrs, &storepb.LabelMatcher{Type: storepb.LabelMatcher_RE, Name: "__name__", Value: ".+"}))
	require.Error(t, err)
	require.Equal(t, codes.Internal, status.Code(err))
	require.Contains(t, err.Error(), f.meta.ULID.String())
	require.Contains(t, err.Error(), bucketstore.ErrCorrupt.Error())
}
