package querier

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/prometheus/prometheus/model/histogram"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/tsdb/chunkenc"

	"github.com/stratametrics/strata/storeapi/storepb"
)

// ErrMissingAggregate is wrapped by the iterator error of a series whose
// downsampled chunk lacks an aggregate the query reads, for example the min of
// a native histogram, which is not kept.
var ErrMissingAggregate = errors.New("downsampled chunk lacks the aggregate the query reads")

// AutoResolution, given to WithMaxSourceResolution, lets every Select pick its
// own resolution from its step and range: see the package documentation.
const AutoResolution time.Duration = -1

// autoResolutionPoints is how many downsampled points the automatic resolution
// keeps in every step and in every range selector's window at least.
const autoResolutionPoints = 5

// WithMaxSourceResolution returns a context whose queries read data downsampled
// to at most res: zero reads raw data only, AutoResolution picks the resolution
// per Select. Without it a query reads raw data only.
func WithMaxSourceResolution(ctx context.Context, res time.Duration) context.Context {
	return context.WithValue(ctx, resolutionKey, res)
}

// WithRequestParams returns a context that carries every strata-specific
// request parameter to the Queryable: WithDedup, WithPartialResponse and
// WithMaxSourceResolution. It fits APIOptions.Context.
func WithRequestParams(ctx context.Context, p RequestParams) context.Context {
	ctx = WithPartialResponse(WithDedup(ctx, p.Dedup), p.PartialResponse)
	res := p.MaxSourceResolution
	if p.AutoDownsampling {
		res = AutoResolution
	}
	return WithMaxSourceResolution(ctx, res)
}

// resolutionWindow returns the max_resolution_window in milliseconds of one
// Select. Functions that need two samples per window (the counter read) never
// get a resolution coarser than half their range, so that rate(x[5m]) still
// reads raw data however coarse a resolution the request allows.
func resolutionWindow(ctx context.Context, hints *storage.SelectHints, read aggrRead) int64 {
	res, _ := ctx.Value(resolutionKey).(time.Duration)
	var step, rng int64
	if hints != nil {
		step, rng = max(hints.Step, 0), max(hints.Range, 0)
	}
	var w int64
	if res == AutoResolution {
		// The finer of the step and the range, for at least five points in each.
		// An instant query (step 0) over an instant selector reads raw data.
		span := step
		if rng > 0 && (span == 0 || rng < span) {
			span = rng
		}
		w = span / autoResolutionPoints
	} else {
		w = res.Milliseconds()
	}
	if read == readCounter && rng > 0 {
		w = min(w, rng/2)
	}
	return max(w, 0)
}

// aggrRead is how a Select reads the aggregate chunks of downsampled data. It
// is picked from the PromQL function around the selector (SelectHints.Func).
type aggrRead int

const (
	// readAvg reads sum/count per window: the window's average value.
	readAvg aggrRead = iota
	// readCounter reads the counter aggregate: the counter with its resets applied.
	readCounter
	readMin
	readMax
	readSum
	readCount
)

// aggrReadFor returns the read of the function fn; see the table in doc.go.
func aggrReadFor(fn string) aggrRead {
	switch fn {
	case "rate", "increase", "irate", "resets":
		return readCounter
	case "min_over_time", "min":
		return readMin
	case "max_over_time", "max":
		return readMax
	case "sum_over_time":
		return readSum
	case "count_over_time", "present_over_time", "absent_over_time", "count", "group":
		// Only the presence of samples matters; the count is the smallest read.
		return readCount
	}
	return readAvg
}

// aggregates returns the aggregates a store must send for the read.
func (r aggrRead) aggregates() []storepb.Aggr {
	switch r {
	case readCounter:
		return []storepb.Aggr{storepb.Aggr_COUNTER}
	case readMin:
		return []storepb.Aggr{storepb.Aggr_MIN}
	case readMax:
		return []storepb.Aggr{storepb.Aggr_MAX}
	case readSum:
		return []storepb.Aggr{storepb.Aggr_SUM}
	case readCount:
		return []storepb.Aggr{storepb.Aggr_COUNT}
	}
	return []storepb.Aggr{storepb.Aggr_COUNT, storepb.Aggr_SUM}
}

// subChunk returns the sub-chunk of c that holds aggregate a, or nil.
func subChunk(c *storepb.AggrChunk, a storepb.Aggr) *storepb.Chunk {
	switch a {
	case storepb.Aggr_RAW:
		return c.GetRaw()
	case storepb.Aggr_COUNT:
		return c.GetCount()
	case storepb.Aggr_SUM:
		return c.GetSum()
	case storepb.Aggr_MIN:
		return c.GetMin()
	case storepb.Aggr_MAX:
		return c.GetMax()
	case storepb.Aggr_COUNTER:
		return c.GetCounter()
	}
	return nil
}

// allAggrs lists every field of an AggrChunk, raw first.
func allAggrs() [6]storepb.Aggr {
	return [...]storepb.Aggr{
		storepb.Aggr_RAW, storepb.Aggr_COUNT, storepb.Aggr_SUM, storepb.Aggr_MIN, storepb.Aggr_MAX, storepb.Aggr_COUNTER,
	}
}

// avgIterator divides a sum aggregate by a count aggregate window by window:
// the average of each window. Both hold one sample per window, so their
// timestamps must agree; a sum of native histograms is divided bucket by bucket.
type avgIterator struct {
	sum, count chunkenc.Iterator
	lset       labels.Labels
	vt         chunkenc.ValueType
	t          int64
	f          float64
	fh         *histogram.FloatHistogram // owned; handed out as copies
	done       bool
	err        error
}

func (it *avgIterator) Next() chunkenc.ValueType {
	if it.done {
		return chunkenc.ValNone
	}
	return it.load(it.sum.Next(), it.count.Next())
}

func (it *avgIterator) Seek(t millisT) chunkenc.ValueType {
	if it.done {
		return chunkenc.ValNone
	}
	if it.vt != chunkenc.ValNone && it.t >= t {
		return it.vt
	}
	return it.load(it.sum.Seek(t), it.count.Seek(t))
}

// load reads the current samples of sum and count.
func (it *avgIterator) load(vs, vc chunkenc.ValueType) chunkenc.ValueType {
	if err := errors.Join(it.sum.Err(), it.count.Err()); err != nil {
		return it.fail(err)
	}
	switch {
	case vs == chunkenc.ValNone && vc == chunkenc.ValNone:
		it.done, it.vt = true, chunkenc.ValNone
		return it.vt
	case vs == chunkenc.ValNone:
		return it.fail(fmt.Errorf("series %s: the %s aggregate has no sample for the %s sample at %d: %w",
			it.lset, storepb.Aggr_SUM, storepb.Aggr_COUNT, it.count.AtT(), ErrMissingAggregate))
	case vc == chunkenc.ValNone:
		return it.fail(fmt.Errorf("series %s: the %s aggregate has no sample for the %s sample at %d: %w",
			it.lset, storepb.Aggr_COUNT, storepb.Aggr_SUM, it.sum.AtT(), ErrMissingAggregate))
	}
	ts, tc := it.sum.AtT(), it.count.AtT()
	if ts != tc {
		return it.fail(fmt.Errorf("series %s: the %s aggregate has a sample at %d where the %s aggregate has one at %d: %w",
			it.lset, storepb.Aggr_SUM, ts, storepb.Aggr_COUNT, tc, ErrMissingAggregate))
	}
	if vc != chunkenc.ValFloat {
		return it.fail(fmt.Errorf("series %s: the %s aggregate at %d is a %s, not a float", it.lset, storepb.Aggr_COUNT, tc, vc))
	}
	_, n := it.count.At()
	it.t = ts
	switch vs {
	case chunkenc.ValFloat:
		_, v := it.sum.At()
		it.f, it.vt = v/n, chunkenc.ValFloat
	default:
		// Never nil: given nil, chunk iterators hand out their own buckets,
		// which Div must not change.
		if it.fh == nil {
			it.fh = &histogram.FloatHistogram{}
		}
		_, it.fh = it.sum.AtFloatHistogram(it.fh)
		it.fh.Div(n)
		it.vt = chunkenc.ValFloatHistogram
	}
	return it.vt
}

func (it *avgIterator) fail(err error) chunkenc.ValueType {
	it.err, it.done, it.vt = err, true, chunkenc.ValNone
	return it.vt
}

func (it *avgIterator) At() (int64, float64) { return it.t, it.f }

// AtHistogram is never valid: averages of histograms are float histograms.
func (it *avgIterator) AtHistogram(h *histogram.Histogram) (int64, *histogram.Histogram) {
	return it.t, h
}

func (it *avgIterator) AtFloatHistogram(fh *histogram.FloatHistogram) (int64, *histogram.FloatHistogram) {
	if fh == nil {
		return it.t, it.fh.Copy()
	}
	it.fh.CopyTo(fh)
	return it.t, fh
}

func (it *avgIterator) AtT() int64  { return it.t }
func (it *avgIterator) AtST() int64 { return 0 }
func (it *avgIterator) Err() error  { return it.err }

// hidingIterator leaves out the samples of its iterator that fall into one of
// the hidden ranges: the ranges of raw chunks, which win over downsampled data.
type hidingIterator struct {
	chunkenc.Iterator
	hidden []timeRange
}

func (it *hidingIterator) Next() chunkenc.ValueType { return it.skip(it.Iterator.Next()) }

func (it *hidingIterator) Seek(t millisT) chunkenc.ValueType { return it.skip(it.Iterator.Seek(t)) }

func (it *hidingIterator) skip(vt chunkenc.ValueType) chunkenc.ValueType {
	for vt != chunkenc.ValNone && it.isHidden(it.Iterator.AtT()) {
		vt = it.Iterator.Next()
	}
	return vt
}

func (it *hidingIterator) isHidden(t int64) bool {
	for _, r := range it.hidden {
		if r.minT <= t && t <= r.maxT {
			return true
		}
	}
	return false
}
