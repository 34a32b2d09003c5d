package downsample_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/histogram"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/value"
	"github.com/prometheus/prometheus/tsdb"
	"github.com/prometheus/prometheus/tsdb/chunkenc"
	"github.com/prometheus/prometheus/tsdb/chunks"
	"github.com/prometheus/prometheus/tsdb/index"
	"github.com/stretchr/testify/require"

	"github.com/stratametrics/strata/block"
)

// sample is one input or output sample: a float, or a histogram when h or fh is
// set.
type sample struct {
	t  int64
	f  float64
	h  *histogram.Histogram
	fh *histogram.FloatHistogram
}

type series struct {
	lset    labels.Labels
	samples []sample
}

var staleNaN = math.Float64frombits(value.StaleNaN)

// writeRawBlock writes ss as a raw block into dir, with the given time range in
// its meta.json (zero values keep the range Prometheus computes), and returns the
// block's directory and meta.
func writeRawBlock(t testing.TB, dir string, mint, maxt int64, ss []series) (string, *block.Meta) {
	t.Helper()
	w, err := tsdb.NewBlockWriter(slog.New(slog.DiscardHandler), dir, 2*24*3600*1000)
	require.NoError(t, err)
	app := w.Appender(context.Background())
	for _, s := range ss {
		for _, smp := range s.samples {
			switch {
			case smp.h != nil:
				_, err = app.AppendHistogram(0, s.lset, smp.t, smp.h, nil)
			case smp.fh != nil:
				_, err = app.AppendHistogram(0, s.lset, smp.t, nil, smp.fh)
			default:
				_, err = app.Append(0, s.lset, smp.t, smp.f)
			}
			require.NoError(t, err)
		}
	}
	require.NoError(t, app.Commit())
	id, err := w.Flush(context.Background())
	require.NoError(t, err)
	require.NoError(t, w.Close())

	bdir := filepath.Join(dir, id.String())
	raw, err := os.ReadFile(filepath.Join(bdir, block.MetaFilename))
	require.NoError(t, err)
	var pm tsdb.BlockMeta
	require.NoError(t, json.Unmarshal(raw, &pm))
	m := &block.Meta{BlockMeta: pm, Thanos: block.ThanosMeta{
		Version: block.ThanosVersion1,
		Labels:  map[string]string{"tenant_id": "t1", "receive_replica": "r0"},
		Source:  block.SourceTest,
	}}
	if mint != 0 || maxt != 0 {
		m.MinTime, m.MaxTime = mint, maxt
	}
	m.Compaction.Level = 2
	require.NoError(t, m.WriteToDir(nil, bdir))
	return bdir, m
}

// readBlock returns every series of the block in dir by its labels' string form,
// histograms as float histograms.
func readBlock(t testing.TB, dir string) map[string][]sample {
	t.Helper()
	b, err := tsdb.OpenBlock(slog.New(slog.DiscardHandler), dir, nil, nil)
	require.NoError(t, err)
	defer func() { require.NoError(t, b.Close()) }()
	q, err := tsdb.NewBlockQuerier(b, math.MinInt64, math.MaxInt64)
	require.NoError(t, err)
	defer func() { require.NoError(t, q.Close()) }()

	out := map[string][]sample{}
	ss := q.Select(context.Background(), true, nil, labels.MustNewMatcher(labels.MatchRegexp, model.MetricNameLabel, ".*"))
	var it chunkenc.Iterator
	for ss.Next() {
		s := ss.At()
		it = s.Iterator(it)
		var got []sample
		for typ := it.Next(); typ != chunkenc.ValNone; typ = it.Next() {
			switch typ {
			case chunkenc.ValFloat:
				ts, v := it.At()
				got = append(got, sample{t: ts, f: v})
			default:
				ts, fh := it.AtFloatHistogram(nil)
				got = append(got, sample{t: ts, fh: fh})
			}
		}
		require.NoError(t, it.Err())
		out[s.Labels().String()] = got
	}
	require.NoError(t, ss.Err())
	return out
}

// chunkMetas returns the chunk metas of every series of the block in dir, by the
// labels' string form.
func chunkMetas(t testing.TB, dir string) map[string][]chunks.Meta {
	t.Helper()
	b, err := tsdb.OpenBlock(slog.New(slog.DiscardHandler), dir, nil, nil)
	require.NoError(t, err)
	defer func() { require.NoError(t, b.Close()) }()
	ir, err := b.Index()
	require.NoError(t, err)
	defer func() { require.NoError(t, ir.Close()) }()

	out := map[string][]chunks.Meta{}
	name, val := index.AllPostingsKey()
	p, err := ir.Postings(context.Background(), name, val)
	require.NoError(t, err)
	var sb labels.ScratchBuilder
	for p.Next() {
		var chks []chunks.Meta
		require.NoError(t, ir.Series(p.At(), &sb, &chks))
		out[sb.Labels().String()] = chks
	}
	require.NoError(t, p.Err())
	return out
}

// aggLabels returns lset with the aggregate label set to agg, in string form.
func aggLabels(lset labels.Labels, agg string) string {
	return labels.NewBuilder(lset).Set(block.AggregateLabel, agg).Labels().String()
}

// floorDiv is floor(t / res).
func floorDiv(t, res int64) int64 {
	q := t / res
	if t%res != 0 && t < 0 {
		q--
	}
	return q
}

// expectedFloats computes, straight from the raw samples, the five aggregate
// series Downsample must write for a float series.
func expectedFloats(raw []sample, res int64) map[string][]sample {
	var in []sample
	for _, s := range raw {
		if math.Float64bits(s.f) == value.StaleNaN {
			continue
		}
		in = append(in, s)
	}
	out := map[string][]sample{}
	if len(in) == 0 {
		return out
	}
	// Running counter with resets applied, per input sample.
	c := make([]float64, len(in))
	for i, s := range in {
		switch {
		case i == 0:
			c[i] = s.f
		case s.f < in[i-1].f:
			c[i] = c[i-1] + s.f
		default:
			c[i] = c[i-1] + s.f - in[i-1].f
		}
	}
	// The last reset: from it on the stored counter is the raw value, before it
	// the running counter.
	lastReset := -1
	for i := 1; i < len(in); i++ {
		if in[i].f < in[i-1].f {
			lastReset = i
		}
	}
	stored := func(i int) float64 {
		if lastReset >= 0 && i >= lastReset {
			return in[i].f
		}
		return c[i]
	}

	for i := 0; i < len(in); {
		j := i
		for j+1 < len(in) && floorDiv(in[j+1].t, res) == floorDiv(in[i].t, res) {
			j++
		}
		win := in[i : j+1]
		last := win[len(win)-1].t
		if i == 0 && len(win) > 1 {
			out[block.AggregateCounter] = append(out[block.AggregateCounter], sample{t: in[0].t, f: stored(0)})
		}
		// The sample before the last reset, when the reset is inside this window
		// and not at its start.
		if lastReset > i && lastReset <= j && lastReset-1 > 0 {
			out[block.AggregateCounter] = append(out[block.AggregateCounter], sample{t: in[lastReset-1].t, f: c[lastReset-1]})
		}
		sum, lo, hi := 0.0, win[0].f, win[0].f
		for _, s := range win {
			sum += s.f
			lo = math.Min(lo, s.f)
			hi = math.Max(hi, s.f)
		}
		out[block.AggregateCount] = append(out[block.AggregateCount], sample{t: last, f: float64(len(win))})
		out[block.AggregateSum] = append(out[block.AggregateSum], sample{t: last, f: sum})
		out[block.AggregateMin] = append(out[block.AggregateMin], sample{t: last, f: lo})
		out[block.AggregateMax] = append(out[block.AggregateMax], sample{t: last, f: hi})
		out[block.AggregateCounter] = append(out[block.AggregateCounter], sample{t: last, f: stored(j)})
		i = j + 1
	}
	return out
}

// increase is what PromQL's increase sees in vals, without extrapolation: the
// sum of the rises, where a fall is a reset that adds the new value.
func increase(vals []float64) float64 {
	total := 0.0
	for i := 1; i < len(vals); i++ {
		if vals[i] < vals[i-1] {
			total += vals[i]
		} else {
			total += vals[i] - vals[i-1]
		}
	}
	return total
}

func floatsOf(ss []sample) []float64 {
	out := make([]float64, 0, len(ss))
	for _, s := range ss {
		out = append(out, s.f)
	}
	return out
}

// requireSamples compares float samples exactly in time and within delta in value.
func requireSamples(t testing.TB, want, got []sample, delta float64, msg string) {
	t.Helper()
	require.Len(t, got, len(want), msg)
	for i := range want {
		require.Equal(t, want[i].t, got[i].t, "%s: sample %d", msg, i)
		require.Nil(t, got[i].fh, "%s: sample %d is a histogram", msg, i)
		if delta == 0 {
			require.Equal(t, want[i].f, got[i].f, "%s: sample %d at %d", msg, i, want[i].t)
		} else {
			require.InDelta(t, want[i].f, got[i].f, delta, "%s: sample %d at %d", msg, i, want[i].t)
		}
	}
}

// selectKeys returns the labels of the series of the block in dir that match ms,
// through the index's postings.
func selectKeys(t testing.TB, dir string, ms ...*labels.Matcher) []string {
	t.Helper()
	b, err := tsdb.OpenBlock(slog.New(slog.DiscardHandler), dir, nil, nil)
	require.NoError(t, err)
	defer func() { require.NoError(t, b.Close()) }()
	q, err := tsdb.NewBlockQuerier(b, math.MinInt64, math.MaxInt64)
	require.NoError(t, err)
	defer func() { require.NoError(t, q.Close()) }()
	var out []string
	ss := q.Select(context.Background(), true, nil, ms...)
	for ss.Next() {
		out = append(out, ss.At().Labels().String())
	}
	require.NoError(t, ss.Err())
	return out
}

func execLookPath(name string) (string, error) { return exec.LookPath(name) }

// runCommand runs name with args and returns its combined output.
func runCommand(t testing.TB, name string, args ...string) (string, error) {
	t.Helper()
	out, err := exec.CommandContext(t.Context(), name, args...).CombinedOutput()
	return string(out), err
}
