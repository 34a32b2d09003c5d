package querier

import (
	"bytes"
	"cmp"
	"fmt"
	"math/bits"
	"slices"

	"github.com/prometheus/prometheus/model/histogram"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/tsdb/chunkenc"
	"github.com/prometheus/prometheus/util/annotations"

	"github.com/stratametrics/strata/storeapi"
	"github.com/stratametrics/strata/storeapi/storepb"
)

// mergedSeries is one series of the merged answer: the labels as the stores
// sent them and the chunks of every store that sent them.
type mergedSeries struct {
	lset   labels.Labels
	key    labels.Labels // lset without the replica labels when deduplicating
	chunks []*storepb.AggrChunk
}

// mergeSeries sorts the series of all stores and joins those with equal labels
// into one. With dedup the order is by labels without the replica labels and
// then by full labels, which is the input order dedup.NewSeriesSet needs:
// replicas of a series end up next to each other even when a replica label
// sorts before a label that tells series apart. Chunks that several stores sent
// byte for byte (identical replicas, overlapping blocks) are kept once.
func (q *Queryable) mergeSeries(all []*mergedSeries, dedup bool) []*mergedSeries {
	if dedup {
		b := labels.NewBuilder(labels.EmptyLabels())
		for _, s := range all {
			b.Reset(s.lset)
			b.Del(q.replicaLabels...)
			s.key = b.Labels()
		}
	} else {
		for _, s := range all {
			s.key = s.lset
		}
	}
	slices.SortStableFunc(all, func(a, b *mergedSeries) int {
		if c := labels.Compare(a.key, b.key); c != 0 || !dedup {
			return c
		}
		return labels.Compare(a.lset, b.lset)
	})
	out := all[:0]
	merged := false
	for _, s := range all {
		if n := len(out); n > 0 && labels.Equal(out[n-1].lset, s.lset) {
			out[n-1].chunks = append(out[n-1].chunks, s.chunks...)
			merged = true
			continue
		}
		if merged {
			dedupChunks(out[len(out)-1])
			merged = false
		}
		out = append(out, s)
	}
	if merged {
		dedupChunks(out[len(out)-1])
	}
	for _, s := range out {
		slices.SortStableFunc(s.chunks, func(a, b *storepb.AggrChunk) int {
			if c := cmp.Compare(a.GetMinTime(), b.GetMinTime()); c != 0 {
				return c
			}
			return cmp.Compare(a.GetMaxTime(), b.GetMaxTime())
		})
	}
	return out
}

// dedupChunks drops chunks that are byte-identical to an earlier chunk of the
// series with the same time range: the same raw chunk, or the same aggregates
// of a downsampled chunk. The hash finds candidates; the bytes decide, so a hash
// collision cannot lose data. Chunks with a sub-chunk without a hash are kept.
func dedupChunks(s *mergedSeries) {
	seen := make(map[uint64]*storepb.AggrChunk, len(s.chunks))
	out := s.chunks[:0]
	for _, c := range s.chunks {
		if h, ok := chunkHash(c); ok {
			if prev, ok := seen[h]; ok && sameChunk(prev, c) {
				continue
			}
			seen[h] = c
		}
		out = append(out, c)
	}
	clear(s.chunks[len(out):])
	s.chunks = out
}

// chunkHash combines the hashes of c's sub-chunks, each rotated by its field
// so that equal bytes in different fields differ. It is false when a present
// sub-chunk has no hash or c has none.
func chunkHash(c *storepb.AggrChunk) (uint64, bool) {
	var h uint64
	n := 0
	for i, a := range allAggrs() {
		sub := subChunk(c, a)
		if sub == nil {
			continue
		}
		if sub.GetHash() == 0 {
			return 0, false
		}
		h ^= bits.RotateLeft64(sub.GetHash(), 11*i)
		n++
	}
	return h, n > 0
}

// sameChunk reports whether a and b cover the same time range with the same
// sub-chunks, byte for byte.
func sameChunk(a, b *storepb.AggrChunk) bool {
	if a.GetMinTime() != b.GetMinTime() || a.GetMaxTime() != b.GetMaxTime() {
		return false
	}
	for _, aggr := range allAggrs() {
		x, y := subChunk(a, aggr), subChunk(b, aggr)
		if (x == nil) != (y == nil) {
			return false
		}
		if x != nil && (x.GetType() != y.GetType() || !bytes.Equal(x.GetData(), y.GetData())) {
			return false
		}
	}
	return true
}

// seriesSet iterates over merged series. Its series read samples in
// [mint, maxt] (all samples with trim off).
type seriesSet struct {
	series []*mergedSeries
	p      selectParams
	annots annotations.Annotations
	i      int
}

func newSeriesSet(series []*mergedSeries, p selectParams, annots annotations.Annotations) *seriesSet {
	return &seriesSet{series: series, p: p, annots: annots, i: -1}
}

func (s *seriesSet) Next() bool {
	if s.i+1 >= len(s.series) {
		s.i = len(s.series)
		return false
	}
	s.i++
	return true
}

func (s *seriesSet) At() storage.Series {
	return &proxySeries{s: s.series[s.i], p: s.p}
}

func (s *seriesSet) Err() error                        { return nil }
func (s *seriesSet) Warnings() annotations.Annotations { return s.annots }

// lazySeriesSet is the answer of a Select whose fan-out is still running: its
// methods wait for set.
type lazySeriesSet struct {
	done chan struct{}
	set  storage.SeriesSet // written before done is closed
}

func (s *lazySeriesSet) Next() bool {
	<-s.done
	return s.set.Next()
}

func (s *lazySeriesSet) At() storage.Series { return s.set.At() }

func (s *lazySeriesSet) Err() error {
	<-s.done
	return s.set.Err()
}

func (s *lazySeriesSet) Warnings() annotations.Annotations {
	<-s.done
	return s.set.Warnings()
}

// limitSeriesSet ends after left series.
type limitSeriesSet struct {
	storage.SeriesSet
	left int
}

func (s *limitSeriesSet) Next() bool {
	if s.left <= 0 {
		return false
	}
	s.left--
	return s.SeriesSet.Next()
}

// proxySeries is one merged series. Its iterator decodes the chunks as it goes.
type proxySeries struct {
	s *mergedSeries
	p selectParams
}

func (s *proxySeries) Labels() labels.Labels { return s.s.lset }

// Iterator returns the samples of the series' chunks in time order. Chunks
// are partitioned into runs of non-overlapping chunks, each read in sequence;
// several runs (overlapping chunks from several stores or blocks) are merged
// by timestamp, each timestamp once. Aggregate chunks of downsampled data are
// read as selectParams.read says; where a raw chunk of the series covers their
// time, their samples are hidden, so that raw and downsampled data never mix.
func (s *proxySeries) Iterator(reuse chunkenc.Iterator) chunkenc.Iterator {
	var rawRanges []timeRange
	aggregated := false
	for _, c := range s.s.chunks {
		if c.GetRaw() != nil {
			rawRanges = append(rawRanges, timeRange{c.GetMinTime(), c.GetMaxTime()})
		} else {
			aggregated = true
		}
	}
	if !aggregated {
		rawRanges = nil
	}
	var runs [][]decodedChunk
	var runMax []int64
	for _, c := range s.s.chunks {
		dc, err := decodeChunk(c, s.p.read, rawRanges, s.s.lset)
		if err != nil {
			return errIterator{err: fmt.Errorf("series %s: %w", s.s.lset, err)}
		}
		placed := false
		for i := range runs {
			if runMax[i] < dc.minT {
				runs[i], runMax[i] = append(runs[i], dc), dc.maxT
				placed = true
				break
			}
		}
		if !placed {
			runs, runMax = append(runs, []decodedChunk{dc}), append(runMax, dc.maxT)
		}
	}
	var it chunkenc.Iterator
	switch len(runs) {
	case 0:
		return chunkenc.NewNopIterator()
	case 1:
		it = newChunkSeqIterator(runs[0])
	default:
		its := make([]chunkenc.Iterator, len(runs))
		for i, r := range runs {
			its[i] = newChunkSeqIterator(r)
		}
		it = storage.ChainSampleIteratorFromIterators(nil, its)
	}
	if !s.p.trim {
		return it
	}
	return &boundedIterator{Iterator: it, mint: s.p.mint, maxt: s.p.maxt}
}

// decodeChunk decodes c: its raw chunk, or else the aggregates that read
// needs. lset names the series in errors found while iterating.
func decodeChunk(c *storepb.AggrChunk, read aggrRead, rawRanges []timeRange, lset labels.Labels) (decodedChunk, error) {
	dc := decodedChunk{minT: c.GetMinTime(), maxT: c.GetMaxTime()}
	if raw := c.GetRaw(); raw != nil {
		chk, err := decodeSubChunk(raw)
		if err != nil {
			return dc, err
		}
		dc.c = chk
		return dc, nil
	}
	aggrs := read.aggregates()
	chks := make([]chunkenc.Chunk, len(aggrs))
	for i, a := range aggrs {
		sub := subChunk(c, a)
		if sub == nil {
			return dc, fmt.Errorf("chunk [%d, %d] has no %s aggregate: %w", dc.minT, dc.maxT, a, ErrMissingAggregate)
		}
		chk, err := decodeSubChunk(sub)
		if err != nil {
			return dc, fmt.Errorf("%s aggregate: %w", a, err)
		}
		chks[i] = chk
	}
	dc.c = chks[0]
	if read == readAvg {
		// aggregates() lists COUNT, SUM.
		dc.c, dc.count = chks[1], chks[0]
		dc.lset = lset
	}
	for _, r := range rawRanges {
		if r.minT <= dc.maxT && r.maxT >= dc.minT {
			dc.hidden = append(dc.hidden, r)
		}
	}
	return dc, nil
}

func decodeSubChunk(c *storepb.Chunk) (chunkenc.Chunk, error) {
	enc, err := storeapi.ChunkEncodingFromProto(c.GetType())
	if err != nil {
		return nil, err
	}
	chk, err := chunkenc.FromData(enc, c.GetData())
	if err != nil {
		return nil, fmt.Errorf("decode chunk: %w", err)
	}
	return chk, nil
}

// millisT is a timestamp in milliseconds. It exists so that go vet's
// stdmethods check, which takes any Seek(int64) method for a broken io.Seeker,
// accepts the Seek of chunkenc.Iterator (see querier/dedup).
type millisT = int64

// timeRange is [minT, maxT] in milliseconds.
type timeRange struct {
	minT, maxT int64
}

type decodedChunk struct {
	minT, maxT int64
	// c is the raw chunk, the aggregate read or, for averages, the sum.
	c chunkenc.Chunk
	// count, if set, is the count aggregate that divides c window by window.
	count chunkenc.Chunk
	// hidden are the ranges of raw chunks of the series whose time this
	// aggregate chunk's samples must not show up in.
	hidden []timeRange
	lset   labels.Labels // names the series in errors of averages
}

// iterator returns an iterator over the chunk's samples, reusing reuse if it
// can.
func (d decodedChunk) iterator(reuse chunkenc.Iterator) chunkenc.Iterator {
	var it chunkenc.Iterator
	if d.count == nil {
		it = d.c.Iterator(reuse)
	} else {
		it = &avgIterator{sum: d.c.Iterator(nil), count: d.count.Iterator(nil), lset: d.lset}
	}
	if len(d.hidden) > 0 {
		it = &hidingIterator{Iterator: it, hidden: d.hidden}
	}
	return it
}

// chunkSeqIterator iterates over chunks that do not overlap, in time order.
type chunkSeqIterator struct {
	chunks []decodedChunk
	i      int               // index of the current chunk, -1 before the first
	cur    chunkenc.Iterator // iterator of chunks[i]
	vt     chunkenc.ValueType
	err    error
}

func newChunkSeqIterator(chunks []decodedChunk) *chunkSeqIterator {
	return &chunkSeqIterator{chunks: chunks, i: -1}
}

// nextChunk moves to the next chunk; false when there is none.
func (it *chunkSeqIterator) nextChunk() bool {
	if it.i+1 >= len(it.chunks) {
		it.i = len(it.chunks)
		return false
	}
	it.i++
	it.cur = it.chunks[it.i].iterator(it.cur)
	return true
}

func (it *chunkSeqIterator) Next() chunkenc.ValueType {
	if it.err != nil {
		return chunkenc.ValNone
	}
	for {
		if it.i >= 0 && it.i < len(it.chunks) {
			if it.vt = it.cur.Next(); it.vt != chunkenc.ValNone {
				return it.vt
			}
			if it.err = it.cur.Err(); it.err != nil {
				return chunkenc.ValNone
			}
		}
		if !it.nextChunk() {
			it.vt = chunkenc.ValNone
			return it.vt
		}
	}
}

func (it *chunkSeqIterator) Seek(t millisT) chunkenc.ValueType {
	if it.err != nil {
		return chunkenc.ValNone
	}
	if it.vt != chunkenc.ValNone && it.cur.AtT() >= t {
		return it.vt
	}
	for {
		if it.i >= 0 && it.i < len(it.chunks) && it.chunks[it.i].maxT >= t {
			if it.vt = it.cur.Seek(t); it.vt != chunkenc.ValNone {
				return it.vt
			}
			if it.err = it.cur.Err(); it.err != nil {
				return chunkenc.ValNone
			}
		}
		if !it.nextChunk() {
			it.vt = chunkenc.ValNone
			return it.vt
		}
	}
}

func (it *chunkSeqIterator) At() (int64, float64) { return it.cur.At() }

func (it *chunkSeqIterator) AtHistogram(h *histogram.Histogram) (int64, *histogram.Histogram) {
	return it.cur.AtHistogram(h)
}

func (it *chunkSeqIterator) AtFloatHistogram(fh *histogram.FloatHistogram) (int64, *histogram.FloatHistogram) {
	return it.cur.AtFloatHistogram(fh)
}

func (it *chunkSeqIterator) AtT() int64  { return it.cur.AtT() }
func (it *chunkSeqIterator) AtST() int64 { return it.cur.AtST() }
func (it *chunkSeqIterator) Err() error  { return it.err }

// boundedIterator returns only the samples in [mint, maxt] of its iterator:
// stores send whole chunks, which may reach past the requested range.
type boundedIterator struct {
	chunkenc.Iterator
	mint, maxt int64
	started    bool
	done       bool
}

func (it *boundedIterator) Next() chunkenc.ValueType {
	if !it.started {
		return it.Seek(it.mint)
	}
	if it.done {
		return chunkenc.ValNone
	}
	return it.check(it.Iterator.Next())
}

func (it *boundedIterator) Seek(t millisT) chunkenc.ValueType {
	if it.done {
		return chunkenc.ValNone
	}
	it.started = true
	return it.check(it.Iterator.Seek(max(t, it.mint)))
}

func (it *boundedIterator) check(vt chunkenc.ValueType) chunkenc.ValueType {
	if vt == chunkenc.ValNone || it.Iterator.AtT() > it.maxt {
		it.done = true
		return chunkenc.ValNone
	}
	return vt
}

// errIterator is an iterator that failed before its first sample.
type errIterator struct {
	chunkenc.Iterator
	err error
}

func (it errIterator) Next() chunkenc.ValueType        { return chunkenc.ValNone }
func (it errIterator) Seek(millisT) chunkenc.ValueType { return chunkenc.ValNone }
func (it errIterator) Err() error                      { return it.err }
