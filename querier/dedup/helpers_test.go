package dedup

import (
	"testing"

	"github.com/prometheus/prometheus/model/histogram"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/tsdb/chunkenc"
	"github.com/prometheus/prometheus/tsdb/chunks"
	"github.com/prometheus/prometheus/util/annotations"
	"github.com/stretchr/testify/require"
)

// sample implements chunks.Sample for test input.
type sample struct {
	t  int64
	f  float64
	h  *histogram.Histogram
	fh *histogram.FloatHistogram
}

func (s sample) T() int64                      { return s.t }
func (s sample) ST() int64                     { return 0 }
func (s sample) F() float64                    { return s.f }
func (s sample) H() *histogram.Histogram       { return s.h }
func (s sample) FH() *histogram.FloatHistogram { return s.fh }

func (s sample) Type() chunkenc.ValueType {
	switch {
	case s.h != nil:
		return chunkenc.ValHistogram
	case s.fh != nil:
		return chunkenc.ValFloatHistogram
	default:
		return chunkenc.ValFloat
	}
}

func (s sample) Copy() chunks.Sample {
	c := s
	if s.h != nil {
		c.h = s.h.Copy()
	}
	if s.fh != nil {
		c.fh = s.fh.Copy()
	}
	return c
}

// secs returns float samples at the given seconds, all with value v.
func secs(v float64, ts ...int64) []chunks.Sample {
	out := make([]chunks.Sample, 0, len(ts))
	for _, t := range ts {
		out = append(out, sample{t: t * 1000, f: v})
	}
	return out
}

// every returns the seconds from, from+step, ... up to and including to.
func every(from, to, step int64) []int64 {
	var out []int64
	for t := from; t <= to; t += step {
		out = append(out, t)
	}
	return out
}

// cat concatenates second lists.
func cat(lists ...[]int64) []int64 {
	var out []int64
	for _, l := range lists {
		out = append(out, l...)
	}
	return out
}

func ser(lset labels.Labels, s []chunks.Sample) storage.Series {
	return storage.NewListSeries(lset, s)
}

// sliceSet is a storage.SeriesSet over a slice, failing with err at the end.
type sliceSet struct {
	series []storage.Series
	i      int
	err    error
	warn   annotations.Annotations
}

func newSet(series ...storage.Series) *sliceSet { return &sliceSet{series: series, i: -1} }

func (s *sliceSet) Next() bool {
	if s.i+1 >= len(s.series) {
		s.i = len(s.series)
		return false
	}
	s.i++
	return true
}

func (s *sliceSet) At() storage.Series                { return s.series[s.i] }
func (s *sliceSet) Err() error                        { return s.err }
func (s *sliceSet) Warnings() annotations.Annotations { return s.warn }

// got is one output sample.
type got struct {
	t  int64
	f  float64
	h  *histogram.Histogram
	fh *histogram.FloatHistogram
}

// read returns the current sample of it, which has value type vt.
func read(t testing.TB, it chunkenc.Iterator, vt chunkenc.ValueType) got {
	t.Helper()
	switch vt {
	case chunkenc.ValFloat:
		ts, f := it.At()
		require.Equal(t, ts, it.AtT())
		return got{t: ts, f: f}
	case chunkenc.ValHistogram:
		ts, h := it.AtHistogram(nil)
		require.Equal(t, ts, it.AtT())
		return got{t: ts, h: h}
	case chunkenc.ValFloatHistogram:
		ts, fh := it.AtFloatHistogram(nil)
		require.Equal(t, ts, it.AtT())
		return got{t: ts, fh: fh}
	default:
		t.Fatalf("unexpected value type %v", vt)
		return got{}
	}
}

// drain iterates it to the end.
func drain(t testing.TB, it chunkenc.Iterator) ([]got, error) {
	t.Helper()
	var out []got
	for vt := it.Next(); vt != chunkenc.ValNone; vt = it.Next() {
		out = append(out, read(t, it, vt))
	}
	return out, it.Err()
}

// seconds returns the timestamps of samples in seconds and their float values.
func seconds(samples []got) ([]int64, []float64) {
	ts := make([]int64, 0, len(samples))
	vs := make([]float64, 0, len(samples))
	for _, s := range samples {
		ts = append(ts, s.t/1000)
		vs = append(vs, s.f)
	}
	return ts, vs
}

// outSeries is one output series, fully read.
type outSeries struct {
	lset    labels.Labels
	samples []got
}

// collect reads the whole set.
func collect(t testing.TB, set storage.SeriesSet) ([]outSeries, error) {
	t.Helper()
	var out []outSeries
	for set.Next() {
		s := set.At()
		samples, err := drain(t, s.Iterator(nil))
		require.NoError(t, err)
		out = append(out, outSeries{lset: s.Labels(), samples: samples})
	}
	return out, set.Err()
}

// failingIterator yields its samples, then ends with err.
type failingIterator struct {
	chunkenc.Iterator
	err error
}

func (f *failingIterator) Err() error { return f.err }

// failingSeries is a series whose iterator fails after its samples.
type failingSeries struct {
	lset    labels.Labels
	samples []chunks.Sample
	err     error
}

func (s *failingSeries) Labels() labels.Labels { return s.lset }

func (s *failingSeries) Iterator(chunkenc.Iterator) chunkenc.Iterator {
	return &failingIterator{Iterator: storage.NewListSeriesIterator(samplesOf(s.samples)), err: s.err}
}

type samplesOf []chunks.Sample

func (s samplesOf) Get(i int) chunks.Sample { return s[i] }
func (s samplesOf) Len() int                { return len(s) }
