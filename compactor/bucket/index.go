package bucket

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"unicode/utf8"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/tsdb/chunkenc"
	"github.com/prometheus/prometheus/tsdb/chunks"
	"github.com/prometheus/prometheus/tsdb/index"

	"github.com/stratametrics/strata/block"
)

// Errors of VerifyIndex. Classify them with errors.Is.
var (
	// ErrInvalidIndex is wrapped by every error about the content of a block's
	// index: unreadable sections, invalid or unsorted series, chunks outside
	// the block's time range or out of order, chunk references that do not
	// resolve. Errors reading the block's files from disk do not wrap it.
	ErrInvalidIndex = errors.New("invalid block index")
	// ErrOutOfOrderChunks is wrapped, next to ErrInvalidIndex, by the error
	// about a series whose chunks overlap or are not sorted by time. Such a
	// block can still be read, but compacting it would spread the damage; the
	// compactor marks it no-compact with block.ReasonOutOfOrderChunks.
	ErrOutOfOrderChunks = errors.New("out-of-order chunks")
)

// IndexOption changes what VerifyIndex checks.
type IndexOption func(*indexOptions)

type indexOptions struct {
	chunkRefs bool
}

// WithChunkRefs makes VerifyIndex also read every chunk the index refers to
// from the block's chunk files, which checks that each reference resolves to a
// chunk that decodes. It reads the whole block.
func WithChunkRefs() IndexOption {
	return func(o *indexOptions) { o.chunkRefs = true }
}

// VerifyIndex checks the index of the local block in blockDir, which must hold
// the block's meta.json and index (and chunks/, with WithChunkRefs), with
// Prometheus' own index reader:
//
//   - the symbol table is readable and sorted, and the label names, their
//     values and the postings list of every label pair are readable, each
//     list non-empty;
//   - every series has a non-empty label set, with valid names sorted without
//     duplicates and non-empty valid UTF-8 values, and series come in strictly
//     increasing label order, so there are no duplicate series;
//   - every chunk lies inside the block's time range: meta's maxTime is
//     exclusive, a chunk's MaxTime inclusive;
//   - the chunks of a series are sorted by time and do not overlap; if they
//     do, the error also wraps ErrOutOfOrderChunks.
//
// It stops at the first problem; the error names the block and the series and
// wraps ErrInvalidIndex.
func VerifyIndex(ctx context.Context, blockDir string, opts ...IndexOption) (err error) {
	var o indexOptions
	for _, opt := range opts {
		opt(&o)
	}
	meta, err := block.ReadMetaFromDir(blockDir)
	if err != nil {
		return fmt.Errorf("verify index of block in %s: %w", blockDir, err)
	}
	id := meta.ULID
	ir, err := index.NewFileReader(filepath.Join(blockDir, block.IndexFilename), index.DecodePostingsRaw)
	if err != nil {
		return fmt.Errorf("verify index of block %s: %w: open index: %w", id, ErrInvalidIndex, err)
	}
	defer func() {
		if cerr := ir.Close(); cerr != nil {
			err = errors.Join(err, fmt.Errorf("verify index of block %s: close index: %w", id, cerr))
		}
	}()

	var cr *chunks.Reader
	if o.chunkRefs {
		cr, err = chunks.NewDirReader(filepath.Join(blockDir, block.ChunksDirname), nil)
		if err != nil {
			return fmt.Errorf("verify index of block %s: %w: open chunks: %w", id, ErrInvalidIndex, err)
		}
		defer func() {
			if cerr := cr.Close(); cerr != nil {
				err = errors.Join(err, fmt.Errorf("verify index of block %s: close chunks: %w", id, cerr))
			}
		}()
	}
	if err := verifyIndex(ctx, ir, cr, meta.MinTime, meta.MaxTime); err != nil {
		return fmt.Errorf("verify index of block %s: %w", id, err)
	}
	return nil
}

func verifyIndex(ctx context.Context, ir *index.Reader, cr *chunks.Reader, minT, maxT int64) error {
	var prevSym string
	it := ir.Symbols()
	for i := 0; it.Next(); i++ {
		sym := it.At()
		if i > 0 && sym <= prevSym {
			return fmt.Errorf("%w: symbol %q after %q: symbols not sorted", ErrInvalidIndex, sym, prevSym)
		}
		prevSym = sym
	}
	if err := it.Err(); err != nil {
		return fmt.Errorf("%w: read symbols: %w", ErrInvalidIndex, err)
	}
	if err := verifyPostings(ctx, ir); err != nil {
		return err
	}

	name, value := index.AllPostingsKey()
	p, err := ir.Postings(ctx, name, value)
	if err != nil {
		return fmt.Errorf("%w: read postings: %w", ErrInvalidIndex, err)
	}
	var (
		builder  labels.ScratchBuilder
		chks     []chunks.Meta
		prev     labels.Labels
		prevRef  storage.SeriesRef
		nSeries  int
		checkCtx = 0
	)
	for p.Next() {
		if checkCtx++; checkCtx%1024 == 0 {
			if err := ctx.Err(); err != nil {
				return err
			}
		}
		ref := p.At()
		if nSeries > 0 && ref <= prevRef {
			return fmt.Errorf("%w: postings not sorted: series reference %d after %d", ErrInvalidIndex, ref, prevRef)
		}
		prevRef = ref
		if err := ir.Series(ref, &builder, &chks); err != nil {
			return fmt.Errorf("%w: read series %d: %w", ErrInvalidIndex, ref, err)
		}
		lset := builder.Labels()
		if err := validateLabels(lset); err != nil {
			return fmt.Errorf("%w: series %s: %w", ErrInvalidIndex, lset, err)
		}
		if nSeries > 0 && labels.Compare(prev, lset) >= 0 {
			what := "out of order"
			if labels.Equal(prev, lset) {
				what = "duplicate"
			}
			return fmt.Errorf("%w: series %s: %s after series %s", ErrInvalidIndex, lset, what, prev)
		}
		prev = lset.Copy()
		nSeries++
		if err := verifyChunks(chks, cr, minT, maxT); err != nil {
			return fmt.Errorf("series %s: %w", lset, err)
		}
	}
	if err := p.Err(); err != nil {
		return fmt.Errorf("%w: iterate postings: %w", ErrInvalidIndex, err)
	}
	return nil
}

// verifyPostings reads the postings list of every label pair, which checks
// the label names, the postings offset table and each list.
func verifyPostings(ctx context.Context, ir *index.Reader) error {
	names, err := ir.LabelNames(ctx)
	if err != nil {
		return fmt.Errorf("%w: read label names: %w", ErrInvalidIndex, err)
	}
	for _, name := range names {
		values, err := ir.SortedLabelValues(ctx, name, nil)
		if err != nil {
			return fmt.Errorf("%w: read values of label %q: %w", ErrInvalidIndex, name, err)
		}
		for _, value := range values {
			if err := ctx.Err(); err != nil {
				return err
			}
			p, err := ir.Postings(ctx, name, value)
			if err != nil {
				return fmt.Errorf("%w: read postings of %s=%q: %w", ErrInvalidIndex, name, value, err)
			}
			n := 0
			for p.Next() {
				n++
			}
			if err := p.Err(); err != nil {
				return fmt.Errorf("%w: read postings of %s=%q: %w", ErrInvalidIndex, name, value, err)
			}
			if n == 0 {
				return fmt.Errorf("%w: label pair %s=%q has no series", ErrInvalidIndex, name, value)
			}
		}
	}
	return nil
}

func validateLabels(lset labels.Labels) error {
	if lset.IsEmpty() {
		return errors.New("empty label set")
	}
	var (
		prevName string
		first    = true
		err      error
	)
	lset.Range(func(l labels.Label) {
		if err != nil {
			return
		}
		switch {
		case !model.UTF8Validation.IsValidLabelName(l.Name):
			err = fmt.Errorf("invalid label name %q", l.Name)
		case l.Value == "" || !utf8.ValidString(l.Value):
			err = fmt.Errorf("invalid value %q of label %q", l.Value, l.Name)
		case !first && l.Name == prevName:
			err = fmt.Errorf("duplicate label name %q", l.Name)
		case !first && l.Name < prevName:
			err = fmt.Errorf("label %q after %q: labels not sorted", l.Name, prevName)
		}
		prevName, first = l.Name, false
	})
	return err
}

func verifyChunks(chks []chunks.Meta, cr *chunks.Reader, minT, maxT int64) error {
	for i, c := range chks {
		if c.MinTime > c.MaxTime {
			return fmt.Errorf("%w: chunk %d: minTime %d after maxTime %d", ErrInvalidIndex, i, c.MinTime, c.MaxTime)
		}
		// meta's maxTime is exclusive, a chunk's MaxTime inclusive.
		if c.MinTime < minT || c.MaxTime >= maxT {
			return fmt.Errorf("%w: chunk %d [%d, %d] is outside the block's range [%d, %d)", ErrInvalidIndex, i, c.MinTime, c.MaxTime, minT, maxT)
		}
		if i > 0 {
			prev := chks[i-1]
			if c.MinTime <= prev.MaxTime {
				return fmt.Errorf("%w: %w: chunk %d [%d, %d] overlaps or precedes chunk %d [%d, %d]",
					ErrInvalidIndex, ErrOutOfOrderChunks, i, c.MinTime, c.MaxTime, i-1, prev.MinTime, prev.MaxTime)
			}
		}
		if cr == nil {
			continue
		}
		chk, iterable, err := cr.ChunkOrIterable(c)
		if err != nil {
			return fmt.Errorf("%w: chunk %d (ref %d): %w", ErrInvalidIndex, i, c.Ref, err)
		}
		if chk == nil && iterable == nil {
			return fmt.Errorf("%w: chunk %d (ref %d) resolves to nothing", ErrInvalidIndex, i, c.Ref)
		}
		if chk != nil {
			it := chk.Iterator(nil)
			for it.Next() != chunkenc.ValNone {
				if t := it.AtT(); t < c.MinTime || t > c.MaxTime {
					return fmt.Errorf("%w: chunk %d (ref %d) holds a sample at %d outside its range [%d, %d]", ErrInvalidIndex, i, c.Ref, t, c.MinTime, c.MaxTime)
				}
			}
			if err := it.Err(); err != nil {
				return fmt.Errorf("%w: chunk %d (ref %d): decode: %w", ErrInvalidIndex, i, c.Ref, err)
			}
		}
	}
	return nil
}
