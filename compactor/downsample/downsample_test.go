package downsample_test

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/prometheus/prometheus/model/histogram"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/tsdb/tsdbutil"
	"github.com/stretchr/testify/require"

	"github.com/stratametrics/strata/block"
	"github.com/stratametrics/strata/compactor/downsample"
)

const (
	second = int64(1000)
	minute = 60 * second
	hour   = 60 * minute
)

// floatAggregates lists the aggregates of a float series.
var floatAggregates = []string{block.AggregateCount, block.AggregateCounter, block.AggregateMax, block.AggregateMin, block.AggregateSum}

// irregular returns samples from start to before end at random intervals of 1s
// to 70s, with a gap of gapLen at gapAt, values from next.
func irregular(rng *rand.Rand, start, end, gapAt, gapLen int64, next func(i int) float64) []sample {
	var out []sample
	for t, i := start, 0; t < end; i++ {
		if gapLen > 0 && t >= gapAt && t < gapAt+gapLen {
			t = gapAt + gapLen
			continue
		}
		out = append(out, sample{t: t, f: next(i)})
		t += second + rng.Int64N(70*second)
	}
	return out
}

// rawCounter returns a counter that grows by multiples of 0.25 and resets at
// each index in resets.
func rawCounter(rng *rand.Rand, resets map[int]bool) func(int) float64 {
	v := 100.0
	return func(i int) float64 {
		if resets[i] {
			v = float64(rng.IntN(4)) * 0.25
			return v
		}
		v += float64(rng.IntN(40)) * 0.25
		return v
	}
}

// gauge returns values that are multiples of 0.25 in [-500, 500), so sums of any
// order are exact.
func gauge(rng *rand.Rand) func(int) float64 {
	return func(int) float64 { return float64(rng.IntN(4000)-2000) * 0.25 }
}

func downsampleOK(t testing.TB, srcDir string, res int64) (string, *block.Meta) {
	t.Helper()
	dst := t.TempDir()
	m, err := downsample.Downsample(context.Background(), nil, srcDir, res, dst)
	require.NoError(t, err)
	return filepath.Join(dst, m.ULID.String()), m
}

func TestDownsampleRawFloats(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	end := 20 * hour
	gaugeS := irregular(rng, 0, end, 5*hour, 3*hour, gauge(rng))
	counterS := irregular(rng, 7*second, end, 12*hour, 90*minute, rawCounter(rng, map[int]bool{3: true, 200: true, 201: true, 900: true}))
	// Stale markers, which Downsample drops, between real samples.
	for _, i := range []int{10, 11, 500} {
		gaugeS[i].f = staleNaN
		counterS[i].f = staleNaN
	}
	in := []series{
		{labels.FromStrings("__name__", "g", "job", "a"), gaugeS},
		{labels.FromStrings("__name__", "c_total", "job", "a"), counterS},
		{labels.FromStrings("__name__", "single", "job", "a"), []sample{{t: 11 * hour, f: 42}}},
		{labels.FromStrings("__name__", "stale", "job", "a"), []sample{{t: hour, f: staleNaN}, {t: 2 * hour, f: staleNaN}}},
	}
	srcDir, src := writeRawBlock(t, t.TempDir(), 0, end, in)

	dir, m := downsampleOK(t, srcDir, block.Resolution5m)
	got := readBlock(t, dir)

	wantSamples := 0
	for _, s := range in[:3] {
		want := expectedFloats(s.samples, block.Resolution5m)
		require.Len(t, want, 5)
		for _, agg := range floatAggregates {
			key := aggLabels(s.lset, agg)
			delta := 0.0
			if agg == block.AggregateCounter {
				delta = 1e-6
			}
			requireSamples(t, want[agg], got[key], delta, key)
			wantSamples += len(want[agg])
		}
	}
	require.Len(t, got, 15, "the all-stale series has no output")
	// Postings of the aggregate label and of the source labels work.
	require.Len(t, selectKeys(t, dir, labels.MustNewMatcher(labels.MatchEqual, block.AggregateLabel, block.AggregateMax)), 3)
	require.Equal(t, []string{aggLabels(in[1].lset, block.AggregateMin)}, selectKeys(t, dir,
		labels.MustNewMatcher(labels.MatchEqual, block.AggregateLabel, block.AggregateMin),
		labels.MustNewMatcher(labels.MatchEqual, "__name__", "c_total")))
	// The single sample is the last of its window: no extra counter sample.
	require.Len(t, got[aggLabels(in[2].lset, block.AggregateCounter)], 1)
	// The gauge's gap leaves no window behind.
	for _, s := range got[aggLabels(in[0].lset, block.AggregateCount)] {
		require.False(t, s.t >= 5*hour && s.t < 8*hour, "window in the gap at %d", s.t)
	}

	// The meta describes the new block, and meta.json on disk says the same.
	require.NotEqual(t, src.ULID, m.ULID)
	require.Equal(t, src.MinTime, m.MinTime)
	require.Equal(t, src.MaxTime, m.MaxTime)
	require.Equal(t, 1, m.Version)
	require.Equal(t, src.Compaction.Level, m.Compaction.Level)
	require.Equal(t, src.Compaction.Sources, m.Compaction.Sources)
	require.Len(t, m.Compaction.Parents, 1)
	require.Equal(t, src.ULID, m.Compaction.Parents[0].ULID)
	require.Equal(t, block.ThanosVersion1, m.Thanos.Version)
	require.Equal(t, src.Thanos.Labels, m.Thanos.Labels)
	require.Equal(t, block.Resolution5m, m.Thanos.Downsample.Resolution)
	require.Equal(t, block.SourceCompactor, m.Thanos.Source)
	require.Equal(t, uint64(15), m.Stats.NumSeries)
	require.Equal(t, uint64(wantSamples), m.Stats.NumSamples)
	require.Equal(t, uint64(wantSamples), m.Stats.NumFloatSamples)
	require.Positive(t, m.Stats.NumChunks)
	onDisk, err := block.ReadMetaFromDir(dir)
	require.NoError(t, err)
	require.Equal(t, m.ULID, onDisk.ULID)
	require.Equal(t, m.Stats, onDisk.Stats)
	require.Equal(t, m.Thanos.Downsample, onDisk.Thanos.Downsample)

	// Nothing but the block is left in the destination.
	entries, err := os.ReadDir(filepath.Dir(dir))
	require.NoError(t, err)
	require.Len(t, entries, 1)
}

func TestDownsampleCounterIncrease(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	t.Run("one block", func(t *testing.T) {
		raw := irregular(rng, 0, 10*hour, 0, 0, rawCounter(rng, map[int]bool{5: true, 6: true, 300: true, 301: true, 302: true, 700: true}))
		raw[100].f = staleNaN
		lset := labels.FromStrings("__name__", "c_total")
		srcDir, _ := writeRawBlock(t, t.TempDir(), 0, 0, []series{{lset, raw}})
		dir, _ := downsampleOK(t, srcDir, block.Resolution5m)
		counter := readBlock(t, dir)[aggLabels(lset, block.AggregateCounter)]

		var rawVals []float64
		for _, s := range raw {
			if !math.IsNaN(s.f) {
				rawVals = append(rawVals, s.f)
			}
		}
		stored := floatsOf(counter)
		require.InDelta(t, increase(rawVals), increase(stored), 1e-6)
		require.Equal(t, rawVals[len(rawVals)-1], stored[len(stored)-1], "the last stored value is the raw one")
		require.Equal(t, rawVals[0], stored[0], "the first stored value is the raw one")
		falls := 0
		for i := 1; i < len(stored); i++ {
			if stored[i] < stored[i-1] {
				falls++
			}
		}
		require.Equal(t, 1, falls, "the stored counter falls once, at the last reset")
		require.Equal(t, raw[0].t, counter[0].t, "the first raw sample is kept")
	})

	t.Run("three blocks", func(t *testing.T) {
		lset := labels.FromStrings("__name__", "c_total", "instance", "x")
		a := irregular(rng, 0, 2*hour, 0, 0, rawCounter(rng, map[int]bool{20: true, 21: true, 150: true}))
		// A reset exactly at the boundary of a and b: b starts below a's last
		// value. b resets inside, twice; c continues b without a reset.
		bStart := a[len(a)-1].f
		require.Greater(t, bStart, 3.0)
		b := irregular(rng, 2*hour, 4*hour, 0, 0, rawCounter(rng, map[int]bool{0: true, 40: true, 41: true, 200: true}))
		require.Less(t, b[0].f, bStart)
		v := b[len(b)-1].f
		c := irregular(rng, 4*hour, 6*hour, 0, 0, func(int) float64 { v += float64(rng.IntN(8)) * 0.5; return v })

		var stored, raw []float64
		for i, in := range [][]sample{a, b, c} {
			dir, _ := writeRawBlock(t, t.TempDir(), int64(i)*2*hour, int64(i+1)*2*hour, []series{{lset, in}})
			out, _ := downsampleOK(t, dir, block.Resolution5m)
			s := floatsOf(readBlock(t, out)[aggLabels(lset, block.AggregateCounter)])
			require.Equal(t, in[0].f, s[0], "block %d starts on its raw first value", i)
			require.Equal(t, in[len(in)-1].f, s[len(s)-1], "block %d ends on its raw last value", i)
			stored = append(stored, s...)
			raw = append(raw, floatsOf(in)...)
		}
		require.InDelta(t, increase(raw), increase(stored), 1e-6)
	})
}

// fhValues describes a float histogram by its count, zero count and non-empty
// buckets, independently of its span layout.
func fhValues(fh *histogram.FloatHistogram) string {
	var sb strings.Builder
	fmt.Fprintf(&sb, "count=%g zero=%g schema=%d", fh.Count, fh.ZeroCount, fh.Schema)
	for it := fh.PositiveBucketIterator(); it.Next(); {
		b := it.At()
		if b.Count != 0 {
			fmt.Fprintf(&sb, " +[%g,%g]=%g", b.Lower, b.Upper, b.Count)
		}
	}
	for it := fh.NegativeBucketIterator(); it.Next(); {
		b := it.At()
		if b.Count != 0 {
			fmt.Fprintf(&sb, " -[%g,%g]=%g", b.Lower, b.Upper, b.Count)
		}
	}
	return sb.String()
}

func requireHistSamples(t testing.TB, want, got []sample, msg string) {
	t.Helper()
	require.Len(t, got, len(want), msg)
	for i := range want {
		require.Equal(t, want[i].t, got[i].t, "%s: sample %d", msg, i)
		require.NotNil(t, got[i].fh, "%s: sample %d is no histogram", msg, i)
		require.Equal(t, fhValues(want[i].fh), fhValues(got[i].fh), "%s: sample %d", msg, i)
		// Sums of non-integer sums depend on the order of the additions.
		require.InEpsilon(t, want[i].fh.Sum, got[i].fh.Sum, 1e-12, "%s: sample %d", msg, i)
	}
}

// expectedHists computes count, sum and counter of a histogram series.
func expectedHists(t testing.TB, raw []sample, res int64) map[string][]sample {
	out := map[string][]sample{}
	toF := func(s sample) *histogram.FloatHistogram {
		if s.h != nil {
			return s.h.ToFloat(nil)
		}
		return s.fh.Copy()
	}
	for i := 0; i < len(raw); {
		j := i
		for j+1 < len(raw) && floorDiv(raw[j+1].t, res) == floorDiv(raw[i].t, res) {
			j++
		}
		last := raw[j].t
		if i == 0 && j > 0 {
			out[block.AggregateCounter] = append(out[block.AggregateCounter], sample{t: raw[0].t, fh: toF(raw[0])})
		}
		sum := toF(raw[i])
		for k := i + 1; k <= j; k++ {
			_, _, _, err := sum.Add(toF(raw[k]))
			require.NoError(t, err)
		}
		out[block.AggregateCount] = append(out[block.AggregateCount], sample{t: last, f: float64(j - i + 1)})
		out[block.AggregateSum] = append(out[block.AggregateSum], sample{t: last, fh: sum})
		out[block.AggregateCounter] = append(out[block.AggregateCounter], sample{t: last, fh: toF(raw[j])})
		i = j + 1
	}
	return out
}

func TestDownsampleNativeHistograms(t *testing.T) {
	var intH, floatH, mixed []sample
	for i := range 400 {
		ts := int64(i) * 30 * second
		n := int64(i)
		if i >= 250 {
			n = int64(i - 250) // a reset
		}
		intH = append(intH, sample{t: ts, h: tsdbutil.GenerateTestHistogram(n)})
		floatH = append(floatH, sample{t: ts + 7*second, fh: tsdbutil.GenerateTestFloatHistogram(n)})
		if i < 100 {
			mixed = append(mixed, sample{t: ts, f: float64(i)})
		} else {
			mixed = append(mixed, sample{t: ts, h: tsdbutil.GenerateTestHistogram(n)})
		}
	}
	intL := labels.FromStrings("__name__", "h_int")
	floatL := labels.FromStrings("__name__", "h_float")
	mixedL := labels.FromStrings("__name__", "mixed")
	srcDir, _ := writeRawBlock(t, t.TempDir(), 0, 0, []series{{intL, intH}, {floatL, floatH}, {mixedL, mixed}})
	dir, m := downsampleOK(t, srcDir, block.Resolution5m)
	got := readBlock(t, dir)

	for _, tc := range []struct {
		lset labels.Labels
		raw  []sample
	}{{intL, intH}, {floatL, floatH}} {
		want := expectedHists(t, tc.raw, block.Resolution5m)
		requireSamples(t, want[block.AggregateCount], got[aggLabels(tc.lset, block.AggregateCount)], 0, "count")
		requireHistSamples(t, want[block.AggregateSum], got[aggLabels(tc.lset, block.AggregateSum)], "sum")
		requireHistSamples(t, want[block.AggregateCounter], got[aggLabels(tc.lset, block.AggregateCounter)], "counter")
		require.NotContains(t, got, aggLabels(tc.lset, block.AggregateMin))
		require.NotContains(t, got, aggLabels(tc.lset, block.AggregateMax))
	}
	require.Positive(t, m.Stats.NumHistogramSamples)

	// A block of histograms only has no min or max series at all.
	onlyDir, _ := writeRawBlock(t, t.TempDir(), 0, 0, []series{{intL, intH}})
	onlyOut, _ := downsampleOK(t, onlyDir, block.Resolution5m)
	require.Len(t, readBlock(t, onlyOut), 3)

	// The mixed series: count counts every sample, float windows have min and
	// max, histogram windows have histogram sums.
	total := 0.0
	for _, s := range got[aggLabels(mixedL, block.AggregateCount)] {
		total += s.f
	}
	require.Equal(t, float64(len(mixed)), total)
	require.Len(t, got[aggLabels(mixedL, block.AggregateMin)], 100*30/300)
	sums := got[aggLabels(mixedL, block.AggregateSum)]
	require.Nil(t, sums[0].fh)
	require.NotNil(t, sums[len(sums)-1].fh)
}

func TestDownsample5mTo1h(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	end := 30 * hour
	var in []series
	for i := range 4 {
		in = append(in,
			series{labels.FromStrings("__name__", "g", "i", fmt.Sprint(i)), irregular(rng, int64(i)*second, end, 4*hour, 2*hour, gauge(rng))},
			series{labels.FromStrings("__name__", "c_total", "i", fmt.Sprint(i)), irregular(rng, 0, end, 20*hour, hour, rawCounter(rng, map[int]bool{50: true, 51: true, 2000: true}))},
		)
	}
	var hs []sample
	for i := range 2000 {
		n := int64(i)
		if i > 1200 {
			n -= 1200
		}
		hs = append(hs, sample{t: int64(i) * 45 * second, h: tsdbutil.GenerateTestHistogram(n)})
	}
	in = append(in, series{labels.FromStrings("__name__", "h"), hs})
	in[0].samples[30].f = staleNaN
	srcDir, _ := writeRawBlock(t, t.TempDir(), 0, end, in)

	fiveDir, five := downsampleOK(t, srcDir, block.Resolution5m)
	viaFive, viaFiveMeta := downsampleOK(t, fiveDir, block.Resolution1h)
	direct, _ := downsampleOK(t, srcDir, block.Resolution1h)

	require.Equal(t, block.Resolution1h, viaFiveMeta.Thanos.Downsample.Resolution)
	require.Equal(t, five.ULID, viaFiveMeta.Compaction.Parents[0].ULID)

	want, got := readBlock(t, direct), readBlock(t, viaFive)
	require.Len(t, got, len(want))
	for key, ws := range want {
		gs, ok := got[key]
		require.True(t, ok, "missing %s", key)
		switch {
		case ws[0].fh != nil || ws[len(ws)-1].fh != nil:
			requireHistSamples(t, ws, gs, key)
		case strings.Contains(key, `__aggregate__="counter"`) && !strings.Contains(key, "c_total"):
			// A gauge with negative values read as a counter adds negative
			// "resets"; its counter is meaningless and not compared.
			require.Len(t, gs, len(ws), key)
		case strings.Contains(key, `__aggregate__="counter"`):
			requireSamples(t, ws, gs, 1e-6, key)
			require.InDelta(t, increase(floatsOf(ws)), increase(floatsOf(gs)), 1e-6, key)
		default:
			requireSamples(t, ws, gs, 0, key)
		}
	}

	// Downsampling to the resolution a block already has, or a finer one, fails.
	for _, res := range []int64{block.Resolution5m, block.ResolutionRaw} {
		_, err := downsample.Downsample(context.Background(), nil, fiveDir, res, t.TempDir())
		require.ErrorContains(t, err, "not coarser")
	}
}

func TestDownsampleChunkAlignment(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	lset := labels.FromStrings("__name__", "c_total", "job", "x")
	raw := irregular(rng, 13*second, 2*24*hour, 30*hour, 4*hour, rawCounter(rng, map[int]bool{10: true}))
	srcDir, _ := writeRawBlock(t, t.TempDir(), 0, 2*24*hour, []series{{lset, raw}, {labels.FromStrings("__name__", "h"), []sample{{t: 0, h: tsdbutil.GenerateTestHistogram(1)}, {t: 10 * hour, h: tsdbutil.GenerateTestHistogram(2)}}}})
	dir, _ := downsampleOK(t, srcDir, block.Resolution5m)
	metas := chunkMetas(t, dir)

	count := metas[aggLabels(lset, block.AggregateCount)]
	require.Greater(t, len(count), 3, "the test needs several chunks")
	for _, agg := range floatAggregates {
		chks := metas[aggLabels(lset, agg)]
		require.Len(t, chks, len(count), agg)
		for i := range chks {
			require.Equal(t, count[i].MaxTime, chks[i].MaxTime, "%s chunk %d", agg, i)
			if agg == block.AggregateCounter && i == 0 {
				require.Equal(t, raw[0].t, chks[i].MinTime, "the counter's first chunk starts at the first raw sample")
				continue
			}
			require.Equal(t, count[i].MinTime, chks[i].MinTime, "%s chunk %d", agg, i)
		}
	}
}

func TestDownsamplePromtoolDump(t *testing.T) {
	promtool, err := execLookPath("promtool")
	if err != nil {
		t.Skip("promtool is not on PATH")
	}
	lset := labels.FromStrings("__name__", "up", "job", "p")
	var raw []sample
	for i := range 100 {
		raw = append(raw, sample{t: int64(i) * 15 * second, f: float64(i % 7)})
	}
	srcDir, _ := writeRawBlock(t, t.TempDir(), 0, 0, []series{{lset, raw}})
	dir, _ := downsampleOK(t, srcDir, block.Resolution5m)
	// promtool opens the directory as a read-only TSDB, which needs a WAL.
	require.NoError(t, os.Mkdir(filepath.Join(filepath.Dir(dir), "wal"), 0o755))
	out, err := runCommand(t, promtool, "tsdb", "dump", filepath.Dir(dir))
	require.NoError(t, err, out)

	want := expectedFloats(raw, block.Resolution5m)
	for _, agg := range floatAggregates {
		for _, s := range want[agg] {
			line := fmt.Sprintf(`{__aggregate__="%s", __name__="up", job="p"} %g %d`, agg, s.f, s.t)
			require.Contains(t, out, line)
		}
	}
}

func TestDownsampleBadInput(t *testing.T) {
	ctx := context.Background()
	mk := func(t *testing.T) (string, *block.Meta) {
		var raw []sample
		for i := range 1000 {
			raw = append(raw, sample{t: int64(i) * 15 * second, f: float64(i)})
		}
		var in []series
		for i := range 50 {
			in = append(in, series{labels.FromStrings("__name__", "m", "i", fmt.Sprint(i)), raw})
		}
		return writeRawBlock(t, t.TempDir(), 0, 0, in)
	}

	t.Run("corrupted index", func(t *testing.T) {
		srcDir, src := mk(t)
		idx := filepath.Join(srcDir, block.IndexFilename)
		b, err := os.ReadFile(idx)
		require.NoError(t, err)
		for i := len(b) / 3; i < 2*len(b)/3; i++ {
			b[i] ^= 0x5a
		}
		require.NoError(t, os.WriteFile(idx, b, 0o644))
		dst := t.TempDir()
		_, err = downsample.Downsample(ctx, nil, srcDir, block.Resolution5m, dst)
		require.Error(t, err)
		require.Contains(t, err.Error(), src.ULID.String())
		entries, err := os.ReadDir(dst)
		require.NoError(t, err)
		require.Empty(t, entries, "no block or temporary directory is left")
	})

	t.Run("truncated chunks", func(t *testing.T) {
		srcDir, src := mk(t)
		seg := filepath.Join(srcDir, block.ChunksDirname, "000001")
		fi, err := os.Stat(seg)
		require.NoError(t, err)
		require.NoError(t, os.Truncate(seg, fi.Size()/2))
		dst := t.TempDir()
		_, err = downsample.Downsample(ctx, nil, srcDir, block.Resolution5m, dst)
		require.ErrorContains(t, err, src.ULID.String())
		entries, err := os.ReadDir(dst)
		require.NoError(t, err)
		require.Empty(t, entries)
	})

	t.Run("no meta", func(t *testing.T) {
		_, err := downsample.Downsample(ctx, nil, t.TempDir(), block.Resolution5m, t.TempDir())
		require.ErrorIs(t, err, os.ErrNotExist)
	})

	t.Run("cancelled", func(t *testing.T) {
		srcDir, _ := mk(t)
		cctx, cancel := context.WithCancel(ctx)
		cancel()
		dst := t.TempDir()
		_, err := downsample.Downsample(cctx, nil, srcDir, block.Resolution5m, dst)
		require.ErrorIs(t, err, context.Canceled)
		entries, err := os.ReadDir(dst)
		require.NoError(t, err)
		require.Empty(t, entries)
	})

	t.Run("only stale markers", func(t *testing.T) {
		srcDir, _ := writeRawBlock(t, t.TempDir(), 0, 0, []series{{labels.FromStrings("__name__", "m"), []sample{{t: 0, f: staleNaN}, {t: 1000, f: staleNaN}}}})
		dst := t.TempDir()
		_, err := downsample.Downsample(ctx, nil, srcDir, block.Resolution5m, dst)
		require.ErrorIs(t, err, downsample.ErrEmpty)
		entries, err := os.ReadDir(dst)
		require.NoError(t, err)
		require.Empty(t, entries)
	})

	for name, lset := range map[string]labels.Labels{
		"downsampled block without aggregate label": labels.FromStrings("__name__", "m"),
		"downsampled block with unknown aggregate":  labels.FromStrings("__name__", "m", block.AggregateLabel, "avg"),
	} {
		t.Run(name, func(t *testing.T) {
			srcDir, m := writeRawBlock(t, t.TempDir(), 0, 0, []series{
				{labels.FromStrings("__name__", "m", block.AggregateLabel, "sum"), []sample{{t: 0, f: 1}}},
				{lset, []sample{{t: 0, f: 1}}},
			})
			m.Thanos.Downsample.Resolution = block.Resolution5m
			require.NoError(t, m.WriteToDir(nil, srcDir))
			dst := t.TempDir()
			_, err := downsample.Downsample(ctx, nil, srcDir, block.Resolution1h, dst)
			require.ErrorContains(t, err, block.AggregateLabel)
			require.ErrorContains(t, err, m.ULID.String())
			entries, err := os.ReadDir(dst)
			require.NoError(t, err)
			require.Empty(t, entries)
		})
	}

	t.Run("raw series with the aggregate label", func(t *testing.T) {
		srcDir, _ := writeRawBlock(t, t.TempDir(), 0, 0, []series{{labels.FromStrings("__name__", "m", block.AggregateLabel, "sum"), []sample{{t: 0, f: 1}}}})
		_, err := downsample.Downsample(ctx, nil, srcDir, block.Resolution5m, t.TempDir())
		require.ErrorContains(t, err, block.AggregateLabel)
	})
}

// TestDownsampleLabelsBeforeAggregate covers label names that sort before the
// aggregate label, where the output is not ordered by aggregate first.
func TestDownsampleLabelsBeforeAggregate(t *testing.T) {
	var raw []sample
	for i := range 200 {
		raw = append(raw, sample{t: int64(i) * 20 * second, f: float64(i)})
	}
	in := []series{
		{labels.FromStrings("Alpha", "1"), raw},
		{labels.FromStrings("Alpha", "1", "Beta", "2"), raw},
		{labels.FromStrings("Alpha", "1", "__name__", "m"), raw},
		{labels.FromStrings("__address__", "x", "__name__", "m"), raw},
		{labels.FromStrings("__name__", "m"), raw},
	}
	srcDir, _ := writeRawBlock(t, t.TempDir(), 0, 0, in)
	dir, m := downsampleOK(t, srcDir, block.Resolution5m)
	got := readBlock(t, dir)
	require.Len(t, got, 25)
	require.Equal(t, uint64(25), m.Stats.NumSeries)
	want := expectedFloats(raw, block.Resolution5m)
	for _, s := range in {
		for _, agg := range floatAggregates {
			requireSamples(t, want[agg], got[aggLabels(s.lset, agg)], 1e-9, aggLabels(s.lset, agg))
		}
	}
	// And once more from the downsampled block.
	dir1h, _ := downsampleOK(t, dir, block.Resolution1h)
	got1h := readBlock(t, dir1h)
	require.Len(t, got1h, 25)
	want1h := expectedFloats(raw, block.Resolution1h)
	for _, s := range in {
		requireSamples(t, want1h[block.AggregateSum], got1h[aggLabels(s.lset, block.AggregateSum)], 0, "sum")
	}
}

func TestAggregateOf(t *testing.T) {
	for _, tc := range []struct {
		in      labels.Labels
		agg     string
		without labels.Labels
		ok      bool
	}{
		{labels.FromStrings("__aggregate__", "sum", "__name__", "x"), "sum", labels.FromStrings("__name__", "x"), true},
		{labels.FromStrings("__aggregate__", "counter", "a", "b"), "counter", labels.FromStrings("a", "b"), true},
		{labels.FromStrings("__name__", "x"), "", labels.FromStrings("__name__", "x"), false},
		{labels.FromStrings("__aggregate__", "avg", "__name__", "x"), "", labels.FromStrings("__aggregate__", "avg", "__name__", "x"), false},
	} {
		agg, without, ok := downsample.AggregateOf(tc.in)
		require.Equal(t, tc.agg, agg)
		require.Equal(t, tc.ok, ok)
		require.True(t, labels.Equal(tc.without, without), "%s", without)
	}
}
