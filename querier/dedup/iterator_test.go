package dedup

import (
	"testing"

	"github.com/prometheus/prometheus/model/histogram"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/tsdb/chunkenc"
	"github.com/prometheus/prometheus/tsdb/chunks"
	"github.com/stretchr/testify/require"
)

// dedupOne returns the single output series for replicas that differ only in
// label; replica i has the value i+1 in the label and comes in that priority.
func dedupOne(t testing.TB, label string, replicas ...[]chunks.Sample) storage.Series {
	t.Helper()
	in := make([]storage.Series, 0, len(replicas))
	for i, r := range replicas {
		in = append(in, ser(labels.FromStrings("__name__", "m", label, string(rune('a'+i))), r))
	}
	set := NewSeriesSet(newSet(in...), []string{label}, Options{})
	require.True(t, set.Next())
	s := set.At()
	require.False(t, set.Next())
	require.NoError(t, set.Err())
	require.Equal(t, labels.FromStrings("__name__", "m"), s.Labels())
	return s
}

// segment is a run of expected output seconds taken from one replica.
type segment struct {
	replica int
	ts      []int64
}

func flatten(segs []segment) (ts []int64, vs []float64) {
	for _, s := range segs {
		for _, t := range s.ts {
			ts = append(ts, t)
			vs = append(vs, float64(s.replica))
		}
	}
	return ts, vs
}

func TestPenalty(t *testing.T) {
	aGap := cat(every(0, 60, 15), every(360, 600, 15))
	cases := []struct {
		name     string
		replicas [][]int64 // seconds; replica i's samples have value i
		want     []segment
	}{
		{
			name:     "gap in A is filled from B only inside the gap",
			replicas: [][]int64{aGap, every(5, 605, 15)},
			want:     []segment{{0, every(0, 60, 15)}, {1, every(80, 335, 15)}, {0, every(360, 600, 15)}},
		},
		{
			name:     "gap in B only",
			replicas: [][]int64{every(0, 600, 15), cat(every(5, 60, 15), every(365, 605, 15))},
			want:     []segment{{0, every(0, 600, 15)}},
		},
		{
			name:     "A ends, B continues",
			replicas: [][]int64{every(0, 300, 15), every(5, 605, 15)},
			want:     []segment{{0, every(0, 300, 15)}, {1, every(320, 605, 15)}},
		},
		{
			name:     "B starts first, A takes over by priority",
			replicas: [][]int64{every(300, 600, 15), every(5, 605, 15)},
			want:     []segment{{1, every(5, 275, 15)}, {0, every(300, 600, 15)}},
		},
		{
			name:     "one missed scrape is not filled",
			replicas: [][]int64{cat(every(0, 285, 15), every(315, 600, 15)), every(5, 605, 15)},
			want:     []segment{{0, cat(every(0, 285, 15), every(315, 600, 15))}},
		},
		{
			name:     "gap in both replicas jumps to the earliest",
			replicas: [][]int64{aGap, cat(every(5, 65, 15), every(305, 605, 15))},
			want:     []segment{{0, every(0, 60, 15)}, {1, every(305, 335, 15)}, {0, every(360, 600, 15)}},
		},
		{
			name: "three replicas fill by priority",
			replicas: [][]int64{
				aGap,
				cat(every(5, 50, 15), every(200, 605, 15)),
				every(3, 603, 15),
			},
			want: []segment{
				{0, every(0, 60, 15)}, {2, every(78, 183, 15)}, {1, every(200, 335, 15)}, {0, every(360, 600, 15)},
			},
		},
		{
			// The documented warm-up weakness, shared with Thanos: B's 10s
			// is more than InitialPenalty after A's 0s and earlier than A's
			// 15s, so it is taken although it is probably the same scrape.
			name:     "offset beyond the initial penalty adds a sample in warm-up",
			replicas: [][]int64{every(0, 60, 15), every(10, 70, 15)},
			want:     []segment{{0, []int64{0}}, {1, []int64{10}}, {0, every(30, 60, 15)}},
		},
		{
			name:     "same timestamps in both replicas",
			replicas: [][]int64{every(0, 60, 15), every(0, 60, 15)},
			want:     []segment{{0, every(0, 60, 15)}},
		},
		{
			name:     "empty first replica",
			replicas: [][]int64{nil, every(0, 30, 15)},
			want:     []segment{{1, every(0, 30, 15)}},
		},
		{
			name:     "all replicas empty",
			replicas: [][]int64{nil, nil},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var replicas [][]chunks.Sample
			for i, r := range tc.replicas {
				replicas = append(replicas, secs(float64(i), r...))
			}
			samples, err := drain(t, dedupOne(t, "prometheus_replica", replicas...).Iterator(nil))
			require.NoError(t, err)
			ts, vs := seconds(samples)
			wantTS, wantVS := flatten(tc.want)
			if len(wantTS) == 0 {
				require.Empty(t, ts)
				return
			}
			require.Equal(t, wantTS, ts)
			require.Equal(t, wantVS, vs)
		})
	}
}

func TestIdentical(t *testing.T) {
	all := every(0, 120, 15)
	cases := []struct {
		name     string
		replicas [][]int64
		want     []segment
	}{
		{
			name:     "identical replicas give each sample once",
			replicas: [][]int64{all, all},
			want:     []segment{{0, all}},
		},
		{
			name:     "a sample missing in the first replica comes from the second",
			replicas: [][]int64{cat(every(0, 15, 15), every(45, 120, 15)), all},
			want:     []segment{{0, every(0, 15, 15)}, {1, []int64{30}}, {0, every(45, 120, 15)}},
		},
		{
			name:     "a sample missing in the second replica",
			replicas: [][]int64{all, cat(every(0, 15, 15), every(45, 120, 15))},
			want:     []segment{{0, all}},
		},
		{
			name:     "three replicas each missing a different sample",
			replicas: [][]int64{{15, 30}, {0, 30}, {0, 15, 45}},
			want:     []segment{{1, []int64{0}}, {0, []int64{15, 30}}, {2, []int64{45}}},
		},
		{
			name:     "disjoint replicas give the union",
			replicas: [][]int64{{0, 30}, {15, 45}},
			want:     []segment{{0, []int64{0}}, {1, []int64{15}}, {0, []int64{30}}, {1, []int64{45}}},
		},
		{
			name:     "empty replica",
			replicas: [][]int64{nil, all},
			want:     []segment{{1, all}},
		},
		{
			name:     "all replicas empty",
			replicas: [][]int64{nil, nil},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var replicas [][]chunks.Sample
			for i, r := range tc.replicas {
				replicas = append(replicas, secs(float64(i), r...))
			}
			samples, err := drain(t, dedupOne(t, "receive_replica", replicas...).Iterator(nil))
			require.NoError(t, err)
			ts, vs := seconds(samples)
			wantTS, wantVS := flatten(tc.want)
			if len(wantTS) == 0 {
				require.Empty(t, ts)
				return
			}
			require.Equal(t, wantTS, ts)
			require.Equal(t, wantVS, vs)
		})
	}
}

func TestSeek(t *testing.T) {
	penalty := [][]int64{cat(every(0, 60, 15), every(360, 600, 15)), every(5, 605, 15)}
	identical := [][]int64{{0, 30, 60}, {15, 30, 45, 75}}
	const none = -1
	cases := []struct {
		name     string
		label    string
		replicas [][]int64
		nexts    int     // Next calls before the seeks
		seeks    []int64 // seconds
		want     []int64 // timestamp after each seek in seconds, none for ValNone
		rest     []int64 // what Next returns afterwards
	}{
		{
			name: "penalty seek before next", label: "replica", replicas: penalty,
			seeks: []int64{0}, want: []int64{0},
			rest: cat(every(15, 60, 15), every(80, 335, 15), every(360, 600, 15)),
		},
		{
			name: "penalty seek into the gap across the switch point", label: "replica", replicas: penalty,
			seeks: []int64{70}, want: []int64{80},
			rest: cat(every(95, 335, 15), every(360, 600, 15)),
		},
		{
			name: "penalty seek from the middle", label: "replica", replicas: penalty,
			nexts: 3, seeks: []int64{100}, want: []int64{110},
			rest: cat(every(125, 335, 15), every(360, 600, 15)),
		},
		{
			name: "penalty seek to the current sample or before is a no-op", label: "replica", replicas: penalty,
			nexts: 2, seeks: []int64{15, 0, 10}, want: []int64{15, 15, 15},
			rest: cat(every(30, 60, 15), every(80, 335, 15), every(360, 600, 15)),
		},
		{
			name: "penalty seek between samples of the current replica", label: "replica", replicas: penalty,
			// The seek lands on B's 20s, A takes over again at once.
			nexts: 1, seeks: []int64{16}, want: []int64{20},
			rest: cat(every(30, 60, 15), every(80, 335, 15), every(360, 600, 15)),
		},
		{
			name: "penalty seek past the end", label: "replica", replicas: penalty,
			nexts: 1, seeks: []int64{700, 800}, want: []int64{none, none},
		},
		{
			name: "identical seek before next", label: "receive_replica", replicas: identical,
			seeks: []int64{20}, want: []int64{30}, rest: []int64{45, 60, 75},
		},
		{
			name: "identical seek from the middle", label: "receive_replica", replicas: identical,
			nexts: 2, seeks: []int64{45, 46}, want: []int64{45, 60}, rest: []int64{75},
		},
		{
			name: "identical seek backwards is a no-op", label: "receive_replica", replicas: identical,
			nexts: 3, seeks: []int64{0}, want: []int64{30}, rest: []int64{45, 60, 75},
		},
		{
			name: "identical seek past the end", label: "receive_replica", replicas: identical,
			seeks: []int64{76}, want: []int64{none},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var replicas [][]chunks.Sample
			for i, r := range tc.replicas {
				replicas = append(replicas, secs(float64(i), r...))
			}
			it := dedupOne(t, tc.label, replicas...).Iterator(nil)
			for range tc.nexts {
				require.Equal(t, chunkenc.ValFloat, it.Next())
			}
			for i, s := range tc.seeks {
				vt := it.Seek(s * 1000)
				if tc.want[i] == none {
					require.Equal(t, chunkenc.ValNone, vt)
					continue
				}
				require.Equal(t, chunkenc.ValFloat, vt)
				require.Equal(t, tc.want[i]*1000, it.AtT())
				ts, _ := it.At()
				require.Equal(t, tc.want[i]*1000, ts)
			}
			rest, err := drain(t, it)
			require.NoError(t, err)
			ts, _ := seconds(rest)
			if len(tc.rest) == 0 {
				require.Empty(t, ts)
			} else {
				require.Equal(t, tc.rest, ts)
			}
			require.Equal(t, chunkenc.ValNone, it.Next(), "an exhausted iterator stays exhausted")
			require.Equal(t, chunkenc.ValNone, it.Seek(0))
		})
	}
}

func testHistogram(i int, hint histogram.CounterResetHint) *histogram.Histogram {
	return &histogram.Histogram{
		CounterResetHint: hint,
		Schema:           0,
		Count:            uint64(10 + i),
		Sum:              float64(i),
		PositiveSpans:    []histogram.Span{{Offset: 0, Length: 1}},
		PositiveBuckets:  []int64{int64(10 + i)},
	}
}

func TestHistograms(t *testing.T) {
	cases := []struct {
		name  string
		label string
		float bool
		gauge bool
		a, b  []int64
		// want are the output seconds and which of them must carry an
		// unknown counter-reset hint because they do not follow the
		// previous output sample in their replica.
		want    []int64
		unknown []int64
	}{
		{
			name: "penalty int histograms", label: "prometheus_replica",
			a:       cat(every(0, 45, 15), every(150, 195, 15)),
			b:       every(5, 200, 15),
			want:    cat(every(0, 45, 15), every(65, 125, 15), every(150, 195, 15)),
			unknown: []int64{65, 150},
		},
		{
			name: "penalty float histograms", label: "prometheus_replica", float: true,
			a:       cat(every(0, 45, 15), every(150, 195, 15)),
			b:       every(5, 200, 15),
			want:    cat(every(0, 45, 15), every(65, 125, 15), every(150, 195, 15)),
			unknown: []int64{65, 150},
		},
		{
			name: "identical int histograms", label: "receive_replica",
			a:       []int64{0, 15, 45, 60},
			b:       []int64{0, 15, 30, 45, 60},
			want:    []int64{0, 15, 30, 45, 60},
			unknown: []int64{30, 45},
		},
		{
			name: "identical float histograms", label: "receive_replica", float: true,
			a:       []int64{0, 15, 45, 60},
			b:       []int64{0, 15, 30, 45, 60},
			want:    []int64{0, 15, 30, 45, 60},
			unknown: []int64{30, 45},
		},
		{
			name: "gauge histograms keep their hint", label: "prometheus_replica", gauge: true,
			a:    cat(every(0, 45, 15), every(150, 195, 15)),
			b:    every(5, 200, 15),
			want: cat(every(0, 45, 15), every(65, 125, 15), every(150, 195, 15)),
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			hint := histogram.NotCounterReset
			if tc.gauge {
				hint = histogram.GaugeType
			}
			build := func(ts []int64) []chunks.Sample {
				var out []chunks.Sample
				for i, t := range ts {
					h := testHistogram(i, hint)
					if tc.float {
						out = append(out, sample{t: t * 1000, fh: h.ToFloat(nil)})
					} else {
						out = append(out, sample{t: t * 1000, h: h})
					}
				}
				return out
			}
			a, b := build(tc.a), build(tc.b)
			samples, err := drain(t, dedupOne(t, tc.label, a, b).Iterator(nil))
			require.NoError(t, err)

			var gotTS, gotUnknown []int64
			for _, s := range samples {
				gotTS = append(gotTS, s.t/1000)
				var h histogram.CounterResetHint
				if tc.float {
					require.NotNil(t, s.fh)
					h = s.fh.CounterResetHint
				} else {
					require.NotNil(t, s.h)
					h = s.h.CounterResetHint
				}
				if h == histogram.UnknownCounterReset {
					gotUnknown = append(gotUnknown, s.t/1000)
				} else {
					require.Equal(t, hint, h)
				}
			}
			require.Equal(t, tc.want, gotTS)
			require.Equal(t, tc.unknown, gotUnknown)
			for _, s := range append(a, b...) {
				if tc.float {
					require.Equal(t, hint, s.FH().CounterResetHint, "input histograms must not be modified")
				} else {
					require.Equal(t, hint, s.H().CounterResetHint, "input histograms must not be modified")
				}
			}
		})
	}
}

func TestHistogramReusesBuffer(t *testing.T) {
	// The first sample keeps its source's hint, as from a plain TSDB iterator;
	// the sample taken from the other replica gets an unknown hint, copied into
	// the caller's buffer.
	a := []chunks.Sample{sample{t: 0, h: testHistogram(0, histogram.NotCounterReset)}, sample{t: 30000, h: testHistogram(0, histogram.NotCounterReset)}}
	b := []chunks.Sample{sample{t: 0, h: testHistogram(0, histogram.NotCounterReset)}, sample{t: 15000, h: testHistogram(0, histogram.NotCounterReset)}, sample{t: 30000, h: testHistogram(0, histogram.NotCounterReset)}}
	it := dedupOne(t, "receive_replica", a, b).Iterator(nil)
	require.Equal(t, chunkenc.ValHistogram, it.Next())
	_, h := it.AtHistogram(nil)
	require.Equal(t, histogram.NotCounterReset, h.CounterResetHint, "the first sample keeps its hint")
	require.Equal(t, chunkenc.ValHistogram, it.Next())
	buf := &histogram.Histogram{}
	ts, h := it.AtHistogram(buf)
	require.Equal(t, int64(15000), ts)
	require.Same(t, buf, h, "a hint fix copies into the caller's buffer")
	require.Equal(t, histogram.UnknownCounterReset, h.CounterResetHint)
	require.Equal(t, uint64(10), h.Count)
}

func TestMixedValueTypes(t *testing.T) {
	// A replica switches from floats to histograms; both algorithms hand out
	// each sample with its own type.
	for _, label := range []string{"prometheus_replica", "receive_replica"} {
		t.Run(label, func(t *testing.T) {
			a := append(secs(1, 0, 15), sample{t: 30000, h: testHistogram(0, histogram.UnknownCounterReset)})
			it := dedupOne(t, label, a, a).Iterator(nil)
			require.Equal(t, chunkenc.ValFloat, it.Next())
			require.Equal(t, chunkenc.ValFloat, it.Next())
			require.Equal(t, chunkenc.ValHistogram, it.Next())
			ts, h := it.AtHistogram(nil)
			require.Equal(t, int64(30000), ts)
			require.Equal(t, uint64(10), h.Count)
			require.Equal(t, chunkenc.ValNone, it.Next())
			require.NoError(t, it.Err())
		})
	}
}
