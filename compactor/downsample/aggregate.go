package downsample

import (
	"math"

	"github.com/prometheus/prometheus/model/histogram"
)

// window holds the aggregates of one resolution window of one series while its
// input is read. Float and histogram inputs are kept apart; the window's type is
// chosen when it is emitted.
type window struct {
	idx   int64 // floor(t / resolution)
	start int64 // idx * resolution
	t     int64 // timestamp of the last input sample of any kind

	hasCount bool
	count    float64

	fT                     int64 // last float input timestamp
	hasF                   bool
	hasSum, hasMin, hasMax bool
	sum, min, max          float64
	hasCounter             bool
	counter                float64 // running counter C at the window's last float counter input
	hT                     int64   // last histogram input timestamp
	hasH                   bool
	hsum, hcounter         *histogram.FloatHistogram
	droppedSum             int
}

// isHist reports whether the window is emitted as a histogram window: its last
// typed input was a histogram.
func (w *window) isHist() bool {
	return w.hasH && (!w.hasF || w.hT > w.fT)
}

// seriesAggregator collects the windows of one series. Inputs of one kind
// (raw samples, or one aggregate series of a downsampled block) arrive in time
// order; inputs of different kinds may arrive one after the other, so windows are
// found with a cursor that restart() rewinds.
type seriesAggregator struct {
	res  int64
	wins []window
	cur  int

	// Float counter state.
	cStarted bool
	cPrev    float64
	cPrevT   int64
	cTotal   float64
	// The last reset of the series: its time, and the time and running counter
	// of the input just before it.
	hasReset          bool
	resetT, preResetT int64
	preResetC         float64

	// First counter input of the series.
	hasFirst bool
	firstT   int64
	firstF   float64 // running counter at the first input, i.e. its value
	firstH   *histogram.FloatHistogram
}

func (a *seriesAggregator) reset(res int64) {
	for i := range a.wins {
		a.wins[i] = window{}
	}
	*a = seriesAggregator{res: res, wins: a.wins[:0]}
}

// restart rewinds the window cursor before the next input series.
func (a *seriesAggregator) restart() { a.cur = 0 }

// windowIndex is floor(t / res), also for negative t.
func windowIndex(t, res int64) int64 {
	q := t / res
	if t%res != 0 && t < 0 {
		q--
	}
	return q
}

// at returns the window of t, creating it if needed, and advances its timestamp.
func (a *seriesAggregator) at(t int64) *window {
	if a.cur < len(a.wins) {
		// Most samples fall into the window of the previous one.
		if w := &a.wins[a.cur]; t >= w.start && t-w.start < a.res {
			if t > w.t {
				w.t = t
			}
			return w
		}
	}
	idx := windowIndex(t, a.res)
	for a.cur < len(a.wins) && a.wins[a.cur].idx < idx {
		a.cur++
	}
	if a.cur == len(a.wins) || a.wins[a.cur].idx != idx {
		a.wins = append(a.wins, window{})
		copy(a.wins[a.cur+1:], a.wins[a.cur:])
		a.wins[a.cur] = window{idx: idx, start: idx * a.res, t: t}
	}
	w := &a.wins[a.cur]
	if t > w.t {
		w.t = t
	}
	return w
}

// addCount adds n samples to the count of t's window.
func (a *seriesAggregator) addCount(t int64, n float64) {
	w := a.at(t)
	w.hasCount = true
	w.count += n
}

func (a *seriesAggregator) markFloat(w *window, t int64) {
	if !w.hasF || t > w.fT {
		w.fT = t
	}
	w.hasF = true
}

func (a *seriesAggregator) markHist(w *window, t int64) {
	if !w.hasH || t > w.hT {
		w.hT = t
	}
	w.hasH = true
}

// addSum adds v to the float sum of t's window.
func (a *seriesAggregator) addSum(t int64, v float64) {
	w := a.at(t)
	a.markFloat(w, t)
	w.hasSum = true
	w.sum += v
}

// addMin lowers the minimum of t's window to v.
func (a *seriesAggregator) addMin(t int64, v float64) {
	w := a.at(t)
	a.markFloat(w, t)
	w.min = minOf(w.min, v, w.hasMin)
	w.hasMin = true
}

// addMax raises the maximum of t's window to v.
func (a *seriesAggregator) addMax(t int64, v float64) {
	w := a.at(t)
	a.markFloat(w, t)
	w.max = maxOf(w.max, v, w.hasMax)
	w.hasMax = true
}

// addCounter feeds v, the next value of the series read as a raw counter.
func (a *seriesAggregator) addCounter(t int64, v float64) {
	switch {
	case !a.cStarted:
		a.cTotal = v
		a.cStarted = true
	case v < a.cPrev:
		a.hasReset, a.resetT, a.preResetT, a.preResetC = true, t, a.cPrevT, a.cTotal
		a.cTotal += v
	default:
		a.cTotal += v - a.cPrev
	}
	a.cPrev, a.cPrevT = v, t
	if !a.hasFirst {
		a.hasFirst, a.firstT, a.firstF = true, t, a.cTotal
	}
	w := a.at(t)
	a.markFloat(w, t)
	w.hasCounter = true
	w.counter = a.cTotal
}

// addSumHist adds h to the histogram sum of t's window. h is not retained.
func (a *seriesAggregator) addSumHist(t int64, h *histogram.FloatHistogram) {
	w := a.at(t)
	a.markHist(w, t)
	if w.hsum == nil {
		w.hsum = h.Copy()
		w.hsum.CounterResetHint = histogram.GaugeType
		return
	}
	if _, _, _, err := w.hsum.Add(h); err != nil {
		// Incompatible layouts (custom buckets against exponential ones) do not
		// add up; the sum keeps what it has.
		w.droppedSum++
	}
}

// addCounterHist records h as the latest counter histogram of t's window. h is
// retained and must not be modified afterwards.
func (a *seriesAggregator) addCounterHist(t int64, h *histogram.FloatHistogram) {
	if !a.hasFirst {
		a.hasFirst, a.firstT, a.firstH = true, t, h
	}
	w := a.at(t)
	a.markHist(w, t)
	if w.hcounter == nil || t >= w.hT {
		w.hcounter = h
	}
}

// addRawFloat aggregates one raw float sample that is not a stale marker.
func (a *seriesAggregator) addRawFloat(t int64, v float64) {
	// One window lookup serves every aggregate; the counter goes through
	// addCounter for its running state and leaves the cursor on t's window.
	a.addCounter(t, v)
	w := &a.wins[a.cur]
	w.hasCount = true
	w.count++
	if w.hasSum {
		w.sum += v
	} else {
		w.sum = v
	}
	w.min = minOf(w.min, v, w.hasMin)
	w.max = maxOf(w.max, v, w.hasMax)
	w.hasSum, w.hasMin, w.hasMax = true, true, true
}

// minOf is the smaller of cur and v, cur being unset if !has. A NaN loses against
// any number.
func minOf(cur, v float64, has bool) float64 {
	if !has || v < cur || math.IsNaN(cur) {
		return v
	}
	return cur
}

// maxOf is the larger of cur and v, cur being unset if !has. A NaN loses against
// any number.
func maxOf(cur, v float64, has bool) float64 {
	if !has || v > cur || math.IsNaN(cur) {
		return v
	}
	return cur
}

// addRawHist aggregates one raw histogram sample that is not a stale marker. h is
// retained.
func (a *seriesAggregator) addRawHist(t int64, h *histogram.FloatHistogram) {
	a.addCount(t, 1)
	a.addSumHist(t, h)
	a.addCounterHist(t, h)
}

// counterValue is the stored value of running counter c at time t: c itself
// before the series' last reset, which starts at the first raw value, and the
// raw value from the last reset on, which ends at the last raw value.
func (a *seriesAggregator) counterValue(t int64, c float64) float64 {
	if a.hasReset && t >= a.resetT {
		return a.cPrev - (a.cTotal - c)
	}
	return c
}

// preResetSample returns the extra counter sample that goes just before the
// last reset, when that reset falls inside the window idx: the running counter
// at the input before the reset. Without it the increase in the window before
// the reset would be lost, since the stored counter drops to the raw value at
// the window's end.
func (a *seriesAggregator) preResetSample(idx int64) (int64, float64, bool) {
	if !a.hasReset || windowIndex(a.resetT, a.res) != idx || windowIndex(a.preResetT, a.res) != idx {
		return 0, 0, false
	}
	return a.preResetT, a.preResetC, true
}
