package dedup

import (
	"math"

	"github.com/prometheus/prometheus/model/histogram"
	"github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/tsdb/chunkenc"
)

// cursor is one replica's iterator with its position cached. Cursors only
// move forward; samples passed over by seek are never revisited.
type cursor struct {
	it   chunkenc.Iterator
	vt   chunkenc.ValueType // ValNone before the first move and once done
	t    int64
	done bool
	err  error // it.Err() once done
	// emitted reports that the merging iterator handed out the current sample.
	emitted bool
	// consecutive reports that the current sample directly follows a sample
	// of this cursor that was handed out; histogram counter-reset hints are
	// only trustworthy then.
	consecutive bool
}

func (c *cursor) next() {
	if c.done {
		return
	}
	c.consecutive, c.emitted = c.emitted, false
	c.set(c.it.Next())
}

// seek moves to the first sample at or after t; it keeps the position if the
// current sample already qualifies.
func (c *cursor) seek(t int64) {
	if c.done || (c.vt != chunkenc.ValNone && c.t >= t) {
		return
	}
	if c.vt != chunkenc.ValNone {
		// The target is usually the next sample, and one Next is cheaper
		// than a Seek for most iterators.
		if c.next(); c.done || c.t >= t {
			return
		}
	}
	c.consecutive, c.emitted = false, false
	c.set(c.it.Seek(t))
}

// seekAfter moves to the first sample after t.
func (c *cursor) seekAfter(t int64) {
	if t == math.MaxInt64 {
		c.done, c.vt = true, chunkenc.ValNone
		return
	}
	c.seek(t + 1)
}

func (c *cursor) set(vt chunkenc.ValueType) {
	c.vt = vt
	if vt == chunkenc.ValNone {
		c.done = true
		c.err = c.it.Err()
		return
	}
	c.t = c.it.AtT()
}

// millis is a timestamp in milliseconds. It only exists so that go vet's
// stdmethods check, which takes any Seek(int64) method for a broken io.Seeker,
// accepts the Seek of chunkenc.Iterator; Prometheus silences the same false
// positive in its linter configuration.
type millis = int64

// addSat returns a+b for b >= 0, saturating at math.MaxInt64.
func addSat(a, b int64) int64 {
	if a > math.MaxInt64-b {
		return math.MaxInt64
	}
	return a + b
}

// histogramHint clears the counter-reset hint of h, read into buf, when the
// sample does not directly follow the previous output sample in its source:
// the hint describes the relation to the source's previous sample, which may
// not be the previous output sample. h is copied into buf (or a new histogram)
// first unless it already is buf, because it may be owned by the source.
func histogramHint(h, buf *histogram.Histogram, consecutive bool) *histogram.Histogram {
	if consecutive || h == nil || h.CounterResetHint == histogram.GaugeType || h.CounterResetHint == histogram.UnknownCounterReset {
		return h
	}
	if h != buf {
		if buf == nil {
			buf = &histogram.Histogram{}
		}
		h.CopyTo(buf)
		h = buf
	}
	h.CounterResetHint = histogram.UnknownCounterReset
	return h
}

// floatHistogramHint is histogramHint for float histograms.
func floatHistogramHint(h, buf *histogram.FloatHistogram, consecutive bool) *histogram.FloatHistogram {
	if consecutive || h == nil || h.CounterResetHint == histogram.GaugeType || h.CounterResetHint == histogram.UnknownCounterReset {
		return h
	}
	if h != buf {
		if buf == nil {
			buf = &histogram.FloatHistogram{}
		}
		h.CopyTo(buf)
		h = buf
	}
	h.CounterResetHint = histogram.UnknownCounterReset
	return h
}

// merged is the state shared by both merging iterators: the cursors in
// priority order and the cursor that holds the current output sample.
type merged struct {
	curs        []cursor
	cur         int  // cursor holding the current sample; -1 if none
	started     bool // cursors have been moved at least once
	done        bool
	err         error
	hasCur      bool // there is a current sample; lastT is its timestamp
	lastT       int64
	consecutive bool // the current sample directly follows the previous one in its source
	// fresh is set at the start and after a Seek that moved: the next output
	// sample has no output predecessor, so, as from a plain TSDB iterator, its
	// histogram counter-reset hint is its source's.
	fresh bool
}

func (m *merged) resetState() {
	m.cur, m.started, m.done, m.err, m.hasCur, m.lastT, m.consecutive, m.fresh = -1, false, false, nil, false, 0, false, true
}

// failed stops the iterator if any cursor ended with an error.
func (m *merged) failed() bool {
	for i := range m.curs {
		if err := m.curs[i].err; err != nil {
			m.err, m.done, m.hasCur = err, true, false
			return true
		}
	}
	return false
}

// earliest returns the cursor with the smallest timestamp, or -1 if all are
// done. Ties go to the current cursor if preferCur is set, then to the lowest
// index.
func (m *merged) earliest(preferCur bool) int {
	best := -1
	for i := range m.curs {
		c := &m.curs[i]
		if c.done {
			continue
		}
		if best < 0 || c.t < m.curs[best].t || (preferCur && c.t == m.curs[best].t && i == m.cur) {
			best = i
		}
	}
	return best
}

// emit makes cursor i's sample the current one, or ends the iteration for -1.
func (m *merged) emit(i int) chunkenc.ValueType {
	if i < 0 {
		m.done, m.hasCur = true, false
		return chunkenc.ValNone
	}
	c := &m.curs[i]
	m.consecutive = m.fresh || (i == m.cur && c.consecutive)
	m.cur, m.hasCur, m.lastT, m.fresh = i, true, c.t, false
	c.emitted = true
	return c.vt
}

func (m *merged) At() (int64, float64) {
	if m.cur < 0 {
		return 0, 0
	}
	return m.curs[m.cur].it.At()
}

func (m *merged) AtHistogram(h *histogram.Histogram) (int64, *histogram.Histogram) {
	if m.cur < 0 {
		return 0, nil
	}
	t, out := m.curs[m.cur].it.AtHistogram(h)
	return t, histogramHint(out, h, m.consecutive)
}

func (m *merged) AtFloatHistogram(fh *histogram.FloatHistogram) (int64, *histogram.FloatHistogram) {
	if m.cur < 0 {
		return 0, nil
	}
	t, out := m.curs[m.cur].it.AtFloatHistogram(fh)
	return t, floatHistogramHint(out, fh, m.consecutive)
}

func (m *merged) AtT() int64 { return m.lastT }

func (m *merged) AtST() int64 {
	if m.cur < 0 {
		return 0
	}
	return m.curs[m.cur].it.AtST()
}

func (m *merged) Err() error { return m.err }

// chainIterator merges replicas with identical data: the output is the
// sorted union of the timestamps of all cursors; a timestamp present in
// several cursors is taken from the one with the lowest index.
type chainIterator struct {
	merged
}

var _ chunkenc.Iterator = (*chainIterator)(nil)

// newChainIterator returns an iterator over the union of the series, reusing
// it and its cursors' iterators when it is not nil.
func newChainIterator(it *chainIterator, series []storage.Series) *chainIterator {
	if it == nil {
		it = &chainIterator{}
	}
	// it.curs and olds share their array; index i is read before it is written.
	olds := it.curs
	it.curs = it.curs[:0]
	for i, s := range series {
		var old chunkenc.Iterator
		if i < len(olds) {
			old = olds[i].it
		}
		it.curs = append(it.curs, cursor{it: s.Iterator(old)})
	}
	it.resetState()
	return it
}

// Next advances every cursor past the current timestamp and takes the
// earliest sample.
func (it *chainIterator) Next() chunkenc.ValueType {
	if it.done {
		return chunkenc.ValNone
	}
	if !it.started {
		it.started = true
		for i := range it.curs {
			it.curs[i].next()
		}
	} else {
		for i := range it.curs {
			if c := &it.curs[i]; !c.done && c.t <= it.lastT {
				c.next()
				c.seekAfter(it.lastT) // Tolerates repeated timestamps in one replica.
			}
		}
	}
	if it.failed() {
		return chunkenc.ValNone
	}
	return it.emit(it.earliest(false))
}

// Seek moves to the first sample at or after t of the union, which is the
// earliest sample at or after t of any cursor.
func (it *chainIterator) Seek(t millis) chunkenc.ValueType {
	if it.done {
		return chunkenc.ValNone
	}
	if it.hasCur && it.lastT >= t {
		return it.curs[it.cur].vt
	}
	it.started, it.fresh = true, true
	for i := range it.curs {
		it.curs[i].seek(t)
	}
	if it.failed() {
		return chunkenc.ValNone
	}
	return it.emit(it.earliest(false))
}

// penaltyIterator merges replicas that sampled independently; see the
// package documentation for the rules. Lower cursor indexes have priority.
type penaltyIterator struct {
	merged
	initialPenalty int64 // ms
	// step is the interval estimate: the distance between the last two
	// output samples, except that a jump over a gap of all replicas keeps the
	// previous value. 0 means unknown (fewer than two samples since the start
	// or the last Seek that moved).
	step int64
	// settle is set after a jump over a gap of all replicas: the next sample
	// is chosen by the earliest rule.
	settle bool
}

var _ chunkenc.Iterator = (*penaltyIterator)(nil)

// reset prepares the iterator for freshly assigned cursors.
func (it *penaltyIterator) reset(initialPenalty int64) {
	it.resetState()
	it.initialPenalty, it.step, it.settle = initialPenalty, 0, false
}

// Next takes the next output sample per the penalty rules.
func (it *penaltyIterator) Next() chunkenc.ValueType {
	if it.done {
		return chunkenc.ValNone
	}
	if !it.started {
		it.started = true
		for i := range it.curs {
			it.curs[i].next()
		}
		return it.pick(it.earliest(true), true)
	}
	c := &it.curs[it.cur]
	c.next()
	c.seekAfter(it.lastT) // Tolerates repeated timestamps in one replica.

	// Another replica's sample must be more than one interval after the last
	// output sample, so that the same scrape is never output twice.
	margin := it.step
	if margin == 0 {
		margin = it.initialPenalty
	}
	after := addSat(it.lastT, margin)
	for i := range it.curs {
		if i != it.cur {
			it.curs[i].seekAfter(after)
		}
	}
	if it.failed() {
		return chunkenc.ValNone
	}
	if it.step == 0 || it.settle {
		it.settle = false
		return it.pick(it.earliest(true), true)
	}
	// The highest-priority replica without a gap, that is with a sample
	// within two intervals, wins.
	limit := addSat(after, it.step)
	for i := range it.curs {
		if c := &it.curs[i]; !c.done && c.t <= limit {
			return it.pick(i, true)
		}
	}
	// All replicas have a gap: jump to the earliest sample, keep the interval
	// estimate (the jump is not an interval) and settle with the earliest rule.
	it.settle = true
	return it.pick(it.earliest(true), false)
}

// Seek moves to the earliest remaining sample at or after t of any replica
// and restarts the penalty rules from there.
func (it *penaltyIterator) Seek(t millis) chunkenc.ValueType {
	if it.done {
		return chunkenc.ValNone
	}
	if it.hasCur && it.lastT >= t {
		return it.curs[it.cur].vt
	}
	it.started, it.fresh = true, true
	for i := range it.curs {
		it.curs[i].seek(t)
	}
	it.hasCur, it.step, it.settle, it.cur = false, 0, false, -1
	return it.pick(it.earliest(true), true)
}

// pick outputs cursor i's sample (-1 ends the iteration) and, if measure is
// set, takes its distance to the previous output sample as the interval.
func (it *penaltyIterator) pick(i int, measure bool) chunkenc.ValueType {
	if it.failed() {
		return chunkenc.ValNone
	}
	prev, had := it.lastT, it.hasCur
	vt := it.emit(i)
	switch {
	case vt == chunkenc.ValNone || !measure:
	case !had:
		it.step = 0
	case it.lastT-prev < 0: // Overflow of a huge distance.
		it.step = math.MaxInt64
	default:
		it.step = it.lastT - prev
	}
	return vt
}
