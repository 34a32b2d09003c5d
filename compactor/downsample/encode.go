package downsample

import (
	"fmt"

	"github.com/prometheus/prometheus/model/histogram"
	"github.com/prometheus/prometheus/tsdb/chunkenc"
	"github.com/prometheus/prometheus/tsdb/chunks"

	"github.com/stratametrics/strata/block"
)

// windowsPerChunk is how many windows with data go into one chunk of every
// aggregate series; 120 samples is the size Prometheus itself aims for.
const windowsPerChunk = 120

// Indexes of the aggregates, in the order their series sort: the values of
// block.AggregateLabel in ascending order.
const (
	aggCount = iota
	aggCounter
	aggMax
	aggMin
	aggSum
	numAggregates
)

// aggregateNames returns the values of block.AggregateLabel, indexed by the agg*
// constants, so in ascending order.
func aggregateNames() [numAggregates]string {
	return [numAggregates]string{
		block.AggregateCount, block.AggregateCounter, block.AggregateMax, block.AggregateMin, block.AggregateSum,
	}
}

// aggregateIndex returns the agg* constant of an AggregateLabel value.
func aggregateIndex(v string) (int, bool) {
	for i, n := range aggregateNames() {
		if n == v {
			return i, true
		}
	}
	return 0, false
}

// chunkBuilder encodes the samples of one aggregate series into chunks. Float
// samples go into XOR chunks, histograms into float histogram chunks; a chunk is
// cut when cut is called, when the sample type changes, and when the histogram
// chunk format asks for a new chunk.
type chunkBuilder struct {
	metas []chunks.Meta

	chk        chunkenc.Chunk
	app        chunkenc.Appender
	mint, maxt int64
	n          int
	histApp    chunkenc.Appender // last histogram appender, to compute reset headers

	floats, hists int
}

func (b *chunkBuilder) reset() {
	clear(b.metas)
	*b = chunkBuilder{metas: b.metas[:0]}
}

// cut finishes the current chunk, if any.
func (b *chunkBuilder) cut() {
	if b.chk != nil && b.n > 0 {
		b.metas = append(b.metas, chunks.Meta{Chunk: b.chk, MinTime: b.mint, MaxTime: b.maxt})
	}
	b.chk, b.app, b.n = nil, nil, 0
}

func (b *chunkBuilder) addFloat(t int64, v float64) {
	if b.chk != nil && b.chk.Encoding() != chunkenc.EncXOR {
		b.cut()
	}
	if b.chk == nil {
		b.chk = chunkenc.NewXORChunk()
		b.app, _ = b.chk.Appender() // An empty XOR chunk always has an appender.
		b.mint = t
	}
	b.app.Append(0, t, v)
	b.maxt = t
	b.n++
	b.floats++
}

// addHist appends h, which the chunk may modify and retain.
func (b *chunkBuilder) addHist(t int64, h *histogram.FloatHistogram) error {
	if b.chk != nil && b.chk.Encoding() != chunkenc.EncFloatHistogram {
		b.cut()
	}
	var prev chunkenc.Appender
	if b.chk == nil {
		prev = b.histApp
		b.chk = chunkenc.NewFloatHistogramChunk()
		app, err := b.chk.Appender()
		if err != nil {
			return fmt.Errorf("new histogram chunk: %w", err)
		}
		b.app = app
		b.mint = t
	}
	newChk, recoded, app, err := b.app.AppendFloatHistogram(prev, 0, t, h, false)
	if err != nil {
		return fmt.Errorf("append histogram at %d: %w", t, err)
	}
	if newChk != nil {
		if recoded {
			b.chk = newChk
		} else {
			b.cut()
			b.chk = newChk
			b.mint = t
		}
	}
	b.app = app
	b.histApp = app
	b.maxt = t
	b.n++
	b.hists++
	return nil
}

// emit encodes the windows of a into one chunk builder per aggregate, cutting
// every aggregate at the same windows.
func emit(a *seriesAggregator, out *[numAggregates]chunkBuilder) error {
	for i := range out {
		out[i].reset()
	}
	if len(a.wins) == 0 {
		return nil
	}
	firstIdx := int64(0)
	emitFirst := false
	if a.hasFirst {
		firstIdx = windowIndex(a.firstT, a.res)
		for i := range a.wins {
			if a.wins[i].idx == firstIdx {
				emitFirst = a.wins[i].t != a.firstT
				break
			}
		}
	}
	for i := range a.wins {
		w := &a.wins[i]
		if i > 0 && i%windowsPerChunk == 0 {
			for j := range out {
				out[j].cut()
			}
		}
		if emitFirst && w.idx == firstIdx {
			if a.firstH != nil {
				a.firstH.CounterResetHint = histogram.UnknownCounterReset
				if err := out[aggCounter].addHist(a.firstT, a.firstH); err != nil {
					return fmt.Errorf("counter: %w", err)
				}
			} else {
				out[aggCounter].addFloat(a.firstT, a.counterValue(a.firstT, a.firstF))
			}
		}
		if w.hasCount {
			out[aggCount].addFloat(w.t, w.count)
		}
		if w.isHist() {
			if w.hsum != nil {
				if err := out[aggSum].addHist(w.t, w.hsum); err != nil {
					return fmt.Errorf("sum: %w", err)
				}
			}
			if w.hcounter != nil {
				w.hcounter.CounterResetHint = histogram.UnknownCounterReset
				if err := out[aggCounter].addHist(w.t, w.hcounter); err != nil {
					return fmt.Errorf("counter: %w", err)
				}
			}
			continue
		}
		if w.hasCounter {
			if t, c, ok := a.preResetSample(w.idx); ok && !(emitFirst && w.idx == firstIdx && t == a.firstT) {
				out[aggCounter].addFloat(t, c)
			}
			out[aggCounter].addFloat(w.t, a.counterValue(w.t, w.counter))
		}
		if w.hasMax {
			out[aggMax].addFloat(w.t, w.max)
		}
		if w.hasMin {
			out[aggMin].addFloat(w.t, w.min)
		}
		if w.hasSum {
			out[aggSum].addFloat(w.t, w.sum)
		}
	}
	for i := range out {
		out[i].cut()
	}
	return nil
}
