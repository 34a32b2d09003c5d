package downsample

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/oklog/ulid/v2"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/tsdb"
	"github.com/prometheus/prometheus/tsdb/fileutil"

	"github.com/stratametrics/strata/block"
)

// ErrEmpty is wrapped by the error Downsample returns when the source block has no
// sample to aggregate, so there is no block to write. Callers skip such blocks.
var ErrEmpty = errors.New("no samples to downsample")

// Suffixes of the working directories Downsample creates next to the output
// block and removes before it returns. A crash leaves them behind; they never
// hold a meta.json, so nobody takes them for a block.
const (
	tmpBlockSuffix = ".tmp-for-creation"
	tmpWorkSuffix  = ".tmp-downsample"
)

// AggregateOf tells which aggregate a series of a downsampled block holds: it
// returns the value of block.AggregateLabel, the labels without it, and true when
// the label is set to one of the five known aggregates. Other label sets come
// back unchanged with false.
func AggregateOf(lset labels.Labels) (string, labels.Labels, bool) {
	v := lset.Get(block.AggregateLabel)
	if _, ok := aggregateIndex(v); !ok {
		return "", lset, false
	}
	return v, labels.NewBuilder(lset).Del(block.AggregateLabel).Labels(), true
}

// Downsample reads the block in srcDir (raw, or already downsampled to a finer
// resolution) and writes a block of the given resolution into dstDir/<ULID>,
// meta.json included. It returns the new block's meta. The format of the output
// is described in the package documentation.
//
// The block is built in a temporary directory and renamed into place once
// complete, so a failure or a crash never leaves a directory named like a block.
// A source without any sample yields an error wrapping ErrEmpty. logger may be
// nil.
func Downsample(ctx context.Context, logger *slog.Logger, srcDir string, resolution int64, dstDir string) (_ *block.Meta, err error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	start := time.Now()
	src, err := block.ReadMetaFromDir(srcDir)
	if err != nil {
		return nil, fmt.Errorf("downsample %s: %w", srcDir, err)
	}
	srcRes := src.Thanos.Downsample.Resolution
	if resolution <= srcRes {
		return nil, fmt.Errorf("downsample block %s: resolution %d is not coarser than the block's resolution %d", src.ULID, resolution, srcRes)
	}
	if srcRes < 0 {
		return nil, fmt.Errorf("downsample block %s: invalid source resolution %d", src.ULID, srcRes)
	}

	id := ulid.Make()
	final := filepath.Join(dstDir, id.String())
	tmp := final + tmpBlockSuffix
	work := final + tmpWorkSuffix
	defer func() {
		if rerr := os.RemoveAll(work); rerr != nil {
			logger.Warn("remove downsampling work directory", "dir", work, "err", rerr)
		}
		if err == nil {
			return
		}
		if rerr := os.RemoveAll(tmp); rerr != nil {
			logger.Warn("remove partial downsampled block", "dir", tmp, "err", rerr)
		}
	}()

	stats, err := downsampleBlock(ctx, logger, srcDir, srcRes, resolution, tmp, work)
	if err != nil {
		return nil, fmt.Errorf("downsample block %s: %w", src.ULID, err)
	}

	meta := newMeta(src, id, resolution, stats)
	if err := meta.WriteToDir(logger, tmp); err != nil {
		return nil, fmt.Errorf("downsample block %s: %w", src.ULID, err)
	}
	if err := block.SyncDir(tmp); err != nil {
		return nil, fmt.Errorf("downsample block %s: %w", src.ULID, err)
	}
	if err := fileutil.Replace(tmp, final); err != nil {
		return nil, fmt.Errorf("downsample block %s: rename block %s into place: %w", src.ULID, id, err)
	}
	if err := block.SyncDir(dstDir); err != nil {
		return nil, fmt.Errorf("downsample block %s: %w", src.ULID, err)
	}
	logger.Info("downsampled block", "block", src.ULID, "new_block", id, "from_resolution", srcRes,
		"resolution", resolution, "series", stats.NumSeries, "samples", stats.NumSamples, "duration", time.Since(start))
	return meta, nil
}

// newMeta describes the block id downsampled from src.
func newMeta(src *block.Meta, id ulid.ULID, resolution int64, stats tsdb.BlockStats) *block.Meta {
	sources := slices.Clone(src.Compaction.Sources)
	if len(sources) == 0 {
		sources = []ulid.ULID{src.ULID}
	}
	return &block.Meta{
		BlockMeta: tsdb.BlockMeta{
			ULID:    id,
			MinTime: src.MinTime,
			MaxTime: src.MaxTime,
			Stats:   stats,
			Version: block.TSDBVersion1,
			Compaction: tsdb.BlockMetaCompaction{
				Level:   src.Compaction.Level,
				Sources: sources,
				Parents: []tsdb.BlockDesc{{ULID: src.ULID, MinTime: src.MinTime, MaxTime: src.MaxTime}},
			},
		},
		Thanos: block.ThanosMeta{
			Version:    block.ThanosVersion1,
			Labels:     maps.Clone(src.Thanos.Labels),
			Downsample: block.Downsample{Resolution: resolution},
			Source:     block.SourceCompactor,
		},
	}
}
