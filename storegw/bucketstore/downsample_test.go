package bucketstore_test

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"slices"
	"testing"

	"github.com/oklog/ulid/v2"
	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/tsdb"
	"github.com/prometheus/prometheus/tsdb/chunkenc"
	"github.com/prometheus/prometheus/tsdb/chunks"
	"github.com/prometheus/prometheus/tsdb/index"
	"github.com/stretchr/testify/require"

	"github.com/stratametrics/strata/block"
	"github.com/stratametrics/strata/storeapi/storepb"
)

// sample is one float sample.
type sample struct {
	T int64
	V float64
}

// aggrSeries is one raw series S of a downsampled test block: the samples of
// each of its aggregates, as the chunks to write.
type aggrSeries struct {
	lset   labels.Labels
	chunks map[string][][]sample // by block.Aggregate* value
}

// rawStep is the distance between the raw samples the test aggregates stand
// for, and between the samples of raw test blocks.
const rawStep = 30_000

// aggrValue is the value of aggregate aggr in window w of a series with offset
// off, for windows of res milliseconds of raw samples every rawStep.
func aggrValue(aggr string, w int, res int64, off float64) float64 {
	perWindow := float64(res / rawStep)
	switch aggr {
	case block.AggregateCount:
		return perWindow
	case block.AggregateSum:
		return float64(w)*perWindow + off
	case block.AggregateMin:
		return float64(w) + off
	case block.AggregateMax:
		return float64(w) + 1 + off
	case block.AggregateCounter:
		return float64(w+1)*perWindow + off
	}
	panic("unknown aggregate " + aggr)
}

// windowSamples returns aggregate aggr of n windows of res from start: one
// sample at the end of each window.
func windowSamples(aggr string, start, res int64, n int, off float64) []sample {
	out := make([]sample, n)
	for w := range n {
		out[w] = sample{T: start + int64(w+1)*res - 1, V: aggrValue(aggr, w, res, off)}
	}
	return out
}

// cut splits samples into chunks of per samples.
func cut(ss []sample, per int) [][]sample {
	return slices.Collect(slices.Chunk(ss, per))
}

// uniform returns a series with the aggregates aggrs of n windows of res from
// start, all cut every per samples.
func uniform(lset labels.Labels, start, res int64, n, per int, off float64, aggrs ...string) aggrSeries {
	s := aggrSeries{lset: lset, chunks: map[string][][]sample{}}
	for _, a := range aggrs {
		s.chunks[a] = cut(windowSamples(a, start, res, n, off), per)
	}
	return s
}

var allAggregates = []string{block.AggregateCount, block.AggregateSum, block.AggregateMin, block.AggregateMax, block.AggregateCounter}

// downsampledBlock writes a downsampled block of resolution res over
// [mint, maxt) in the format of block.AggregateLabel, with the chunk writer and
// index writer so that the test decides where chunks are cut, and returns its
// directory. Like the blocks of the compactor, it covers the time range of the
// raw block it stands for, not just that of its samples.
func downsampledBlock(t *testing.T, res, mint, maxt int64, series []aggrSeries) string {
	t.Helper()
	type entry struct {
		lset labels.Labels
		chks []chunks.Meta
	}
	var entries []entry
	symbols := map[string]struct{}{}
	for _, s := range series {
		for aggr, cs := range s.chunks {
			lset := labels.NewBuilder(s.lset).Set(block.AggregateLabel, aggr).Labels()
			e := entry{lset: lset}
			for _, c := range cs {
				xc := chunkenc.NewXORChunk()
				app, err := xc.Appender()
				require.NoError(t, err)
				for _, smp := range c {
					app.Append(0, smp.T, smp.V)
				}
				e.chks = append(e.chks, chunks.Meta{MinTime: c[0].T, MaxTime: c[len(c)-1].T, Chunk: xc})
				require.True(t, mint <= c[0].T && c[len(c)-1].T < maxt, "samples outside the block")
			}
			lset.Range(func(l labels.Label) { symbols[l.Name], symbols[l.Value] = struct{}{}, struct{}{} })
			entries = append(entries, e)
		}
	}
	slices.SortFunc(entries, func(a, b entry) int { return labels.Compare(a.lset, b.lset) })

	id := ulid.Make()
	dir := filepath.Join(t.TempDir(), id.String())
	cw, err := chunks.NewWriter(filepath.Join(dir, block.ChunksDirname))
	require.NoError(t, err)
	iw, err := index.NewWriter(context.Background(), filepath.Join(dir, block.IndexFilename))
	require.NoError(t, err)
	syms := make([]string, 0, len(symbols))
	for s := range symbols {
		syms = append(syms, s)
	}
	slices.Sort(syms)
	for _, s := range syms {
		require.NoError(t, iw.AddSymbol(s))
	}
	var stats tsdb.BlockStats
	for i, e := range entries {
		require.NoError(t, cw.WriteChunks(e.chks...))
		require.NoError(t, iw.AddSeries(storage.SeriesRef(i+1), e.lset, e.chks...))
		stats.NumSeries++
		stats.NumChunks += uint64(len(e.chks))
		for _, c := range e.chks {
			stats.NumSamples += uint64(c.Chunk.NumSamples())
		}
	}
	require.NoError(t, cw.Close())
	require.NoError(t, iw.Close())
	m := &block.Meta{BlockMeta: tsdb.BlockMeta{
		ULID: id, MinTime: mint, MaxTime: maxt, Version: block.TSDBVersion1, Stats: stats,
		Compaction: tsdb.BlockMetaCompaction{Level: 1, Sources: []ulid.ULID{id}},
	}}
	m.Thanos.Version = block.ThanosVersion1
	m.Thanos.Downsample.Resolution = res
	require.NoError(t, m.WriteToDir(nil, dir))

	// Prometheus itself reads the block as ordinary series.
	pb, err := tsdb.OpenBlock(nil, dir, nil, nil)
	require.NoError(t, err)
	require.Equal(t, uint64(len(entries)), pb.Meta().Stats.NumSeries)
	require.NoError(t, pb.Close())
	return dir
}

// rawBlock writes a raw block of series lsets with one sample every rawStep in
// [mint, maxt), value off(series) + minutes since mint, and returns its
// directory.
func rawBlock(t *testing.T, mint, maxt int64, lsets ...labels.Labels) string {
	t.Helper()
	dir := t.TempDir()
	w, err := tsdb.NewBlockWriter(slog.New(slog.DiscardHandler), dir, 10*tsdb.DefaultBlockDuration)
	require.NoError(t, err)
	defer func() { require.NoError(t, w.Close()) }()
	app := w.Appender(context.Background())
	for i, lset := range lsets {
		for ts := mint; ts < maxt; ts += rawStep {
			_, err := app.Append(0, lset, ts, float64(i)+float64(ts-mint)/60_000)
			require.NoError(t, err)
		}
	}
	require.NoError(t, app.Commit())
	id, err := w.Flush(context.Background())
	require.NoError(t, err)
	return filepath.Join(dir, id.String())
}

// decode returns the samples of a float wire chunk, or nil for nil.
func decode(t *testing.T, c *storepb.Chunk) []sample {
	t.Helper()
	if c == nil {
		return nil
	}
	require.Equal(t, storepb.Chunk_XOR, c.GetType())
	xc, err := chunkenc.FromData(chunkenc.EncXOR, c.GetData())
	require.NoError(t, err)
	var out []sample
	it := xc.Iterator(nil)
	for it.Next() == chunkenc.ValFloat {
		ts, v := it.At()
		out = append(out, sample{ts, v})
	}
	require.NoError(t, it.Err())
	return out
}

// field returns the chunk of aggregate aggr (a block.Aggregate* value, or "raw").
func field(c *storepb.AggrChunk, aggr string) *storepb.Chunk {
	switch aggr {
	case "raw":
		return c.GetRaw()
	case block.AggregateCount:
		return c.GetCount()
	case block.AggregateSum:
		return c.GetSum()
	case block.AggregateMin:
		return c.GetMin()
	case block.AggregateMax:
		return c.GetMax()
	case block.AggregateCounter:
		return c.GetCounter()
	}
	panic("unknown aggregate " + aggr)
}

// fieldsSet returns the names of the fields c has, in AggrChunk order.
func fieldsSet(c *storepb.AggrChunk) []string {
	var out []string
	for _, f := range append([]string{"raw"}, allAggregates...) {
		if field(c, f) != nil {
			out = append(out, f)
		}
	}
	return out
}

// bySeries returns the series of ss by labelsString.
func bySeries(ss []*storepb.Series) map[string]*storepb.Series {
	out := map[string]*storepb.Series{}
	for _, s := range ss {
		out[labelsString(s)] = s
	}
	return out
}

func metric(name string, kv ...string) labels.Labels {
	return labels.FromStrings(append([]string{model.MetricNameLabel, name}, kv...)...)
}

func eqMatcher(name, value string) *storepb.LabelMatcher {
	return &storepb.LabelMatcher{Type: storepb.LabelMatcher_EQ, Name: name, Value: value}
}

func fmtSamples(ss []sample) string { return fmt.Sprint(ss) }
