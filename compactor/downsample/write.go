package downsample

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"slices"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/value"
	"github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/tsdb"
	"github.com/prometheus/prometheus/tsdb/chunkenc"
	"github.com/prometheus/prometheus/tsdb/chunks"
	"github.com/prometheus/prometheus/tsdb/index"

	"github.com/stratametrics/strata/block"
)

// downsampleBlock writes the downsampled index and chunks of the block in srcDir
// into dir, using work for temporary files, and returns the new block's stats.
func downsampleBlock(ctx context.Context, logger *slog.Logger, srcDir string, srcRes, res int64, dir, work string) (_ tsdb.BlockStats, err error) {
	b, err := tsdb.OpenBlock(logger, srcDir, nil, nil)
	if err != nil {
		return tsdb.BlockStats{}, fmt.Errorf("open: %w", err)
	}
	defer func() {
		if cerr := b.Close(); cerr != nil && err == nil {
			err = fmt.Errorf("close source block: %w", cerr)
		}
	}()
	q, err := tsdb.NewBlockQuerier(b, math.MinInt64, math.MaxInt64)
	if err != nil {
		return tsdb.BlockStats{}, fmt.Errorf("query: %w", err)
	}
	defer func() {
		if cerr := q.Close(); cerr != nil && err == nil {
			err = fmt.Errorf("close querier: %w", cerr)
		}
	}()

	p1, err := newPassOne(work, res)
	if err != nil {
		return tsdb.BlockStats{}, err
	}
	defer p1.abort()
	if srcRes == block.ResolutionRaw {
		err = p1.readRaw(ctx, q)
	} else {
		err = p1.readDownsampled(ctx, q)
	}
	if err != nil {
		return tsdb.BlockStats{}, err
	}
	if err := p1.finish(); err != nil {
		return tsdb.BlockStats{}, err
	}
	if p1.stats.NumSamples == 0 {
		return tsdb.BlockStats{}, ErrEmpty
	}
	if p1.droppedSum > 0 {
		logger.Warn("histograms left out of sums with incompatible bucket layouts", "samples", p1.droppedSum)
	}

	ir, err := b.Index()
	if err != nil {
		return tsdb.BlockStats{}, fmt.Errorf("read index: %w", err)
	}
	defer func() {
		if cerr := ir.Close(); cerr != nil && err == nil {
			err = fmt.Errorf("close index reader: %w", cerr)
		}
	}()
	if err := p1.writeBlock(ctx, ir.Symbols(), dir); err != nil {
		return tsdb.BlockStats{}, err
	}
	return p1.stats, nil
}

// tmpSegmentSize is the size of the temporary chunk segment files.
const tmpSegmentSize = 64 << 20

// passOne computes the aggregates of every source series. It writes their chunks
// into one temporary chunk directory per aggregate and spills the labels of the
// source series and, per aggregate, the chunk references of each series.
type passOne struct {
	work string
	res  int64

	chunkDirs [numAggregates]string
	chunkW    [numAggregates]*chunks.Writer
	metaFiles [numAggregates]string
	metaW     [numAggregates]*spillWriter
	lsetFile  string
	lsetW     *spillWriter

	agg      seriesAggregator
	builders [numAggregates]chunkBuilder

	numSrc uint64 // source series with output, the index of the next one
	// aggregateFirst holds while every source series has only label names that
	// sort after block.AggregateLabel: then the output sorts by aggregate first
	// and by source series second.
	aggregateFirst bool
	stats          tsdb.BlockStats
	droppedSum     int
}

func newPassOne(work string, res int64) (_ *passOne, err error) {
	p := &passOne{work: work, res: res, aggregateFirst: true}
	defer func() {
		if err != nil {
			p.abort()
		}
	}()
	if err := os.MkdirAll(work, 0o755); err != nil {
		return nil, fmt.Errorf("create work directory: %w", err)
	}
	for i, name := range aggregateNames() {
		p.chunkDirs[i] = filepath.Join(work, "chunks-"+name)
		// Small segments: six writers preallocating 512MiB each would reserve
		// gigabytes of disk for a while.
		w, err := chunks.NewWriter(p.chunkDirs[i], chunks.WithSegmentSize(tmpSegmentSize))
		if err != nil {
			return nil, fmt.Errorf("create temporary chunk writer: %w", err)
		}
		p.chunkW[i] = w
		p.metaFiles[i] = filepath.Join(work, "metas-"+name)
		if p.metaW[i], err = createSpill(p.metaFiles[i]); err != nil {
			return nil, err
		}
	}
	p.lsetFile = filepath.Join(work, "series")
	if p.lsetW, err = createSpill(p.lsetFile); err != nil {
		return nil, err
	}
	return p, nil
}

// abort closes whatever is still open; the files are removed with the work
// directory.
func (p *passOne) abort() {
	for i := range p.chunkW {
		if p.chunkW[i] != nil {
			_ = p.chunkW[i].Close() // Only temporary files are lost.
			p.chunkW[i] = nil
		}
		if p.metaW[i] != nil {
			_ = p.metaW[i].close()
			p.metaW[i] = nil
		}
	}
	if p.lsetW != nil {
		_ = p.lsetW.close()
		p.lsetW = nil
	}
}

// finish closes the temporary files of pass one.
func (p *passOne) finish() error {
	var errs []error
	for i := range p.chunkW {
		if err := p.chunkW[i].Close(); err != nil {
			errs = append(errs, fmt.Errorf("close temporary chunks: %w", err))
		}
		p.chunkW[i] = nil
		errs = append(errs, p.metaW[i].close())
		p.metaW[i] = nil
	}
	errs = append(errs, p.lsetW.close())
	p.lsetW = nil
	return errors.Join(errs...)
}

// readRaw aggregates the series of a raw block.
func (p *passOne) readRaw(ctx context.Context, q storage.Querier) error {
	ss := q.Select(ctx, true, nil, labels.MustNewMatcher(labels.MatchRegexp, model.MetricNameLabel, ".*"))
	var it chunkenc.Iterator
	for ss.Next() {
		if err := ctx.Err(); err != nil {
			return err
		}
		s := ss.At()
		lset := s.Labels()
		if lset.Has(block.AggregateLabel) {
			return fmt.Errorf("raw series %s has the reserved label %s", lset, block.AggregateLabel)
		}
		p.agg.reset(p.res)
		it = s.Iterator(it)
		for typ := it.Next(); typ != chunkenc.ValNone; typ = it.Next() {
			switch typ {
			case chunkenc.ValFloat:
				t, v := it.At()
				if value.IsStaleNaN(v) {
					continue
				}
				p.agg.addRawFloat(t, v)
			case chunkenc.ValHistogram, chunkenc.ValFloatHistogram:
				t, h := it.AtFloatHistogram(nil)
				if value.IsStaleNaN(h.Sum) {
					continue
				}
				p.agg.addRawHist(t, h)
			}
		}
		if err := it.Err(); err != nil {
			return fmt.Errorf("read series %s: %w", lset, err)
		}
		if err := p.flushSeries(lset); err != nil {
			return err
		}
	}
	if err := ss.Err(); err != nil {
		return fmt.Errorf("read series: %w", err)
	}
	return nil
}

// cursor walks the series of one aggregate of a downsampled block.
type cursor struct {
	agg  int
	ss   storage.SeriesSet
	cur  storage.Series
	key  labels.Labels // labels with the aggregate label set to a fixed value
	done bool
}

func (c *cursor) next(b *labels.Builder) error {
	if !c.ss.Next() {
		c.done = true
		return c.ss.Err()
	}
	c.cur = c.ss.At()
	b.Reset(c.cur.Labels())
	b.Set(block.AggregateLabel, block.AggregateCount)
	c.key = b.Labels()
	return nil
}

// readDownsampled aggregates the series of a downsampled block. The aggregate
// series of one source series S are found by walking the five aggregates in
// parallel: for a fixed aggregate value, series sort in the same order whatever
// that value is, because the aggregate label compares only by name with the
// labels of S.
func (p *passOne) readDownsampled(ctx context.Context, q storage.Querier) error {
	vals, _, err := q.LabelValues(ctx, block.AggregateLabel, nil)
	if err != nil {
		return fmt.Errorf("read aggregate label values: %w", err)
	}
	for _, v := range vals {
		if _, ok := aggregateIndex(v); !ok {
			return fmt.Errorf("unknown aggregate %s=%q in downsampled block", block.AggregateLabel, v)
		}
	}
	plain := q.Select(ctx, false, nil, labels.MustNewMatcher(labels.MatchEqual, block.AggregateLabel, ""))
	if plain.Next() {
		return fmt.Errorf("series %s of a downsampled block has no %s label", plain.At().Labels(), block.AggregateLabel)
	}
	if err := plain.Err(); err != nil {
		return fmt.Errorf("read series: %w", err)
	}

	var lb labels.Builder
	var cs [numAggregates]cursor
	for i, name := range aggregateNames() {
		cs[i] = cursor{agg: i, ss: q.Select(ctx, true, nil, labels.MustNewMatcher(labels.MatchEqual, block.AggregateLabel, name))}
		if err := cs[i].next(&lb); err != nil {
			return fmt.Errorf("read series: %w", err)
		}
	}
	var it chunkenc.Iterator
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		var minKey labels.Labels
		found := false
		for i := range cs {
			if cs[i].done {
				continue
			}
			if !found || labels.Compare(cs[i].key, minKey) < 0 {
				minKey, found = cs[i].key, true
			}
		}
		if !found {
			return nil
		}
		p.agg.reset(p.res)
		var lset labels.Labels
		for i := range cs {
			c := &cs[i]
			if c.done || labels.Compare(c.key, minKey) != 0 {
				continue
			}
			_, lset, _ = AggregateOf(c.cur.Labels())
			p.agg.restart()
			it = c.cur.Iterator(it)
			if err := p.feed(c.agg, it); err != nil {
				return fmt.Errorf("read series %s: %w", c.cur.Labels(), err)
			}
			if err := c.next(&lb); err != nil {
				return fmt.Errorf("read series: %w", err)
			}
		}
		if err := p.flushSeries(lset); err != nil {
			return err
		}
	}
}

// feed adds the samples of one aggregate series of a downsampled block.
func (p *passOne) feed(agg int, it chunkenc.Iterator) error {
	a := &p.agg
	for typ := it.Next(); typ != chunkenc.ValNone; typ = it.Next() {
		switch typ {
		case chunkenc.ValFloat:
			t, v := it.At()
			if value.IsStaleNaN(v) {
				continue
			}
			switch agg {
			case aggCount:
				a.addCount(t, v)
			case aggCounter:
				a.addCounter(t, v)
			case aggMax:
				a.addMax(t, v)
			case aggMin:
				a.addMin(t, v)
			case aggSum:
				a.addSum(t, v)
			}
		case chunkenc.ValHistogram, chunkenc.ValFloatHistogram:
			t, h := it.AtFloatHistogram(nil)
			if value.IsStaleNaN(h.Sum) {
				continue
			}
			switch agg {
			case aggCounter:
				a.addCounterHist(t, h)
			case aggSum:
				a.addSumHist(t, h)
			}
			// count, min and max are floats in our format; a histogram there
			// is not ours to interpret.
		}
	}
	return it.Err()
}

// flushSeries encodes the aggregates of the series just read, labelled lset
// without the aggregate label, writes their chunks and spills their references.
func (p *passOne) flushSeries(lset labels.Labels) error {
	for i := range p.agg.wins {
		p.droppedSum += p.agg.wins[i].droppedSum
	}
	if err := emit(&p.agg, &p.builders); err != nil {
		return fmt.Errorf("encode series %s: %w", lset, err)
	}
	hasAny := false
	for i := range p.builders {
		bd := &p.builders[i]
		if len(bd.metas) == 0 {
			continue
		}
		hasAny = true
		if err := p.chunkW[i].WriteChunks(bd.metas...); err != nil {
			return fmt.Errorf("write temporary chunks: %w", err)
		}
		if err := p.metaW[i].writeMetas(p.numSrc, bd.metas); err != nil {
			return err
		}
		p.stats.NumSeries++
		p.stats.NumChunks += uint64(len(bd.metas))
		p.stats.NumFloatSamples += uint64(bd.floats)
		p.stats.NumHistogramSamples += uint64(bd.hists)
		p.stats.NumSamples += uint64(bd.floats + bd.hists)
		clear(bd.metas) // Let the chunks go.
	}
	if !hasAny {
		return nil
	}
	if err := p.lsetW.writeLabels(lset); err != nil {
		return err
	}
	first := ""
	lset.Range(func(l labels.Label) {
		if first == "" {
			first = l.Name
		}
	})
	if first <= block.AggregateLabel {
		p.aggregateFirst = false
	}
	p.numSrc++
	return nil
}

// outSeries is one output series of the in-memory ordering.
type outSeries struct {
	lset  labels.Labels
	agg   int
	metas []chunks.Meta
}

// writeBlock is pass two: it writes the index and the chunks of the block into
// dir, series in sorted order, copying chunks from the temporary directories so
// that chunk references grow with the series.
func (p *passOne) writeBlock(ctx context.Context, srcSymbols index.StringIter, dir string) (err error) {
	var readers [numAggregates]*chunks.Reader
	defer func() {
		for _, r := range readers {
			if r != nil {
				if cerr := r.Close(); cerr != nil && err == nil {
					err = fmt.Errorf("close temporary chunks: %w", cerr)
				}
			}
		}
	}()
	for i := range readers {
		r, err := chunks.NewDirReader(p.chunkDirs[i], nil)
		if err != nil {
			return fmt.Errorf("open temporary chunks: %w", err)
		}
		readers[i] = r
	}

	cw, err := chunks.NewWriter(filepath.Join(dir, block.ChunksDirname))
	if err != nil {
		return fmt.Errorf("create chunk writer: %w", err)
	}
	defer func() {
		if cerr := cw.Close(); cerr != nil && err == nil {
			err = fmt.Errorf("close chunks: %w", cerr)
		}
	}()
	iw, err := index.NewWriter(ctx, filepath.Join(dir, block.IndexFilename))
	if err != nil {
		return fmt.Errorf("create index writer: %w", err)
	}
	indexClosed := false
	defer func() {
		if !indexClosed {
			_ = iw.Close() // The block is removed anyway.
		}
	}()
	if err := writeSymbols(iw, srcSymbols); err != nil {
		return err
	}

	w := seriesWriter{iw: iw, cw: cw}
	if p.aggregateFirst {
		err = p.writeAggregateFirst(ctx, &w, &readers)
	} else {
		err = p.writeSorted(ctx, &w, &readers)
	}
	if err != nil {
		return err
	}
	indexClosed = true
	if err := iw.Close(); err != nil {
		return fmt.Errorf("close index: %w", err)
	}
	return nil
}

// writeSymbols adds the source's symbols and the aggregate label and values to
// the index, in sorted order and without duplicates.
func writeSymbols(iw *index.Writer, src index.StringIter) error {
	names := aggregateNames()
	extra := append([]string{block.AggregateLabel}, names[:]...)
	slices.Sort(extra)
	last, hasLast := "", false
	add := func(s string) error {
		if hasLast && s == last {
			return nil
		}
		last, hasLast = s, true
		if err := iw.AddSymbol(s); err != nil {
			return fmt.Errorf("add symbol: %w", err)
		}
		return nil
	}
	for src.Next() {
		s := src.At()
		for len(extra) > 0 && extra[0] < s {
			if err := add(extra[0]); err != nil {
				return err
			}
			extra = extra[1:]
		}
		if err := add(s); err != nil {
			return err
		}
	}
	if err := src.Err(); err != nil {
		return fmt.Errorf("read symbols: %w", err)
	}
	for _, s := range extra {
		if err := add(s); err != nil {
			return err
		}
	}
	return nil
}

// seriesWriter adds series to the index, copying their chunks into the block.
type seriesWriter struct {
	iw   *index.Writer
	cw   *chunks.Writer
	ref  storage.SeriesRef
	sb   labels.ScratchBuilder
	chks []chunks.Meta
}

func (w *seriesWriter) add(r *chunks.Reader, src labels.Labels, agg string, metas []chunks.Meta) error {
	w.chks = w.chks[:0]
	for _, m := range metas {
		c, _, err := r.ChunkOrIterable(m)
		if err != nil {
			return fmt.Errorf("read temporary chunk of %s: %w", src, err)
		}
		if c == nil {
			return fmt.Errorf("read temporary chunk of %s: no chunk", src)
		}
		w.chks = append(w.chks, chunks.Meta{Chunk: c, MinTime: m.MinTime, MaxTime: m.MaxTime})
	}
	if err := w.cw.WriteChunks(w.chks...); err != nil {
		return fmt.Errorf("write chunks: %w", err)
	}
	for i := range w.chks {
		w.chks[i].Chunk = nil
	}
	w.sb.Reset()
	src.Range(func(l labels.Label) { w.sb.Add(l.Name, l.Value) })
	w.sb.Add(block.AggregateLabel, agg)
	w.sb.Sort()
	lset := w.sb.Labels()
	if err := w.iw.AddSeries(w.ref, lset, w.chks...); err != nil {
		return fmt.Errorf("add series %s to index: %w", lset, err)
	}
	w.ref++
	return nil
}

// writeAggregateFirst writes the series when they sort by aggregate first and by
// source series second: one sequential walk over the spilled files per aggregate.
func (p *passOne) writeAggregateFirst(ctx context.Context, w *seriesWriter, readers *[numAggregates]*chunks.Reader) error {
	for i, name := range aggregateNames() {
		if err := p.writeAggregate(ctx, w, readers[i], i, name); err != nil {
			return err
		}
	}
	return nil
}

func (p *passOne) writeAggregate(ctx context.Context, w *seriesWriter, r *chunks.Reader, agg int, name string) (err error) {
	ms, err := openSpill(p.metaFiles[agg])
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, ms.close()) }()
	ls, err := openSpill(p.lsetFile)
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, ls.close()) }()

	next := uint64(0) // index of the next labels record
	var lset labels.Labels
	for n := 0; ; n++ {
		if n%1024 == 0 {
			if err := ctx.Err(); err != nil {
				return err
			}
		}
		idx, metas, err := ms.readMetas()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("read spilled chunks: %w", err)
		}
		for next <= idx {
			if lset, err = ls.readLabels(); err != nil {
				return fmt.Errorf("read spilled labels: %w", noEOF(err))
			}
			next++
		}
		if err := w.add(r, lset, name, metas); err != nil {
			return err
		}
	}
}

// writeSorted writes the series in the order of their full label sets, sorted in
// memory. It serves blocks with label names that sort before the aggregate label,
// where the aggregate-first order does not hold.
func (p *passOne) writeSorted(ctx context.Context, w *seriesWriter, readers *[numAggregates]*chunks.Reader) error {
	srcs, err := readAllLabels(p.lsetFile)
	if err != nil {
		return err
	}
	var all []outSeries
	for i := range numAggregates {
		ms, err := openSpill(p.metaFiles[i])
		if err != nil {
			return err
		}
		for {
			idx, metas, err := ms.readMetas()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				return errors.Join(fmt.Errorf("read spilled chunks: %w", err), ms.close())
			}
			if idx >= uint64(len(srcs)) {
				return errors.Join(fmt.Errorf("spilled chunks of unknown series %d", idx), ms.close())
			}
			all = append(all, outSeries{lset: srcs[idx], agg: i, metas: slices.Clone(metas)})
		}
		if err := ms.close(); err != nil {
			return fmt.Errorf("close spill file: %w", err)
		}
	}
	names := aggregateNames()
	var lb labels.Builder
	for i := range all {
		lb.Reset(all[i].lset)
		lb.Set(block.AggregateLabel, names[all[i].agg])
		all[i].lset = lb.Labels()
	}
	slices.SortFunc(all, func(a, b outSeries) int { return labels.Compare(a.lset, b.lset) })
	for n, s := range all {
		if n%1024 == 0 {
			if err := ctx.Err(); err != nil {
				return err
			}
		}
		src := labels.NewBuilder(s.lset).Del(block.AggregateLabel).Labels()
		if err := w.add(readers[s.agg], src, names[s.agg], s.metas); err != nil {
			return err
		}
	}
	return nil
}

func readAllLabels(name string) (_ []labels.Labels, err error) {
	ls, err := openSpill(name)
	if err != nil {
		return nil, err
	}
	defer func() { err = errors.Join(err, ls.close()) }()
	var out []labels.Labels
	for {
		lset, err := ls.readLabels()
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return nil, fmt.Errorf("read spilled labels: %w", err)
		}
		out = append(out, lset)
	}
}
