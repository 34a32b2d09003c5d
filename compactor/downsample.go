package compactor

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"time"

	"github.com/oklog/ulid/v2"

	"github.com/stratametrics/strata/block"
	"github.com/stratametrics/strata/compactor/downsample"
)

// toDownsample returns the blocks of resolution from that are due for
// downsampling to resolution to, sorted by ULID: at least minSpan long, not
// marked no-downsample or for deletion, with at least one source that no block
// of resolution to covers yet, and not already past the retention of to, which
// would only produce a block to delete at once.
func (c *Compactor) toDownsample(st *syncState, from, to, minSpan int64) []*block.Meta {
	covered := map[ulid.ULID]bool{}
	for _, m := range st.metas {
		if m.Thanos.Downsample.Resolution == to {
			for _, s := range m.Compaction.Sources {
				covered[s] = true
			}
		}
	}
	now := c.cfg.Now()
	var out []*block.Meta
	for _, id := range slices.SortedFunc(maps.Keys(st.metas), ulid.ULID.Compare) {
		m := st.metas[id]
		if m.Thanos.Downsample.Resolution != from || m.MaxTime-m.MinTime < minSpan {
			continue
		}
		if st.marks.noDownsample[id] || st.marks.deletion[id] != nil {
			continue
		}
		if !slices.ContainsFunc(m.Compaction.Sources, func(s ulid.ULID) bool { return !covered[s] }) {
			continue
		}
		if c.expired(m, to, now) {
			continue
		}
		out = append(out, m)
	}
	return out
}

// downsampleAll downsamples every due block of resolution from to resolution
// to, up to Concurrency at once. A failing block is logged, counted and
// returned in the joined error; it does not stop the others.
func (c *Compactor) downsampleAll(ctx context.Context, st *syncState, from, to, minSpan int64) error {
	due := c.toDownsample(st, from, to, minSpan)
	c.metrics.todoDownsample.Set(float64(len(due)))
	return forEachConcurrently(ctx, due, c.cfg.Concurrency, func(m *block.Meta) error {
		err := c.downsampleBlock(ctx, m, to)
		if err != nil && ctx.Err() == nil {
			c.countFailure(ctx, failureDownsample)
			c.logger.Warn("downsample block; retrying in the next pass", "block", m.ULID, "resolution", to, "err", err)
		}
		return err
	})
}

// downsampleBlock downloads block m, downsamples it to resolution to and
// uploads the result (meta.json last). Nothing is marked afterwards: the source
// stays, and the result's sources tell later passes that it is done. A crash
// leaves at most a partial upload, which cleanup removes.
func (c *Compactor) downsampleBlock(ctx context.Context, m *block.Meta, to int64) error {
	start := time.Now()
	dir := filepath.Join(c.cfg.DataDir, "downsample", m.ULID.String())
	if err := os.RemoveAll(dir); err != nil {
		return fmt.Errorf("clear %s: %w", dir, err)
	}
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return fmt.Errorf("create %s: %w", dir, err)
	}
	defer func() {
		if rerr := os.RemoveAll(dir); rerr != nil {
			c.logger.Warn("remove downsampling directory", "dir", dir, "err", rerr)
		}
	}()
	if err := block.Download(ctx, c.logger, c.bkt, m.ULID, dir); err != nil {
		return fmt.Errorf("download block %s: %w", m.ULID, err)
	}
	outDir := filepath.Join(dir, "out")
	if err := os.MkdirAll(outDir, 0o750); err != nil {
		return fmt.Errorf("create %s: %w", outDir, err)
	}
	out, err := downsample.Downsample(ctx, c.logger, filepath.Join(dir, m.ULID.String()), to, outDir)
	if errors.Is(err, downsample.ErrEmpty) {
		if err := block.WriteNoDownsampleMark(ctx, c.bkt, m.ULID, c.cfg.Now(), ReasonDownsampleEmpty, err.Error()); err != nil {
			return fmt.Errorf("mark block %s no-downsample: %w", m.ULID, err)
		}
		c.metrics.markedNoDownsample.Inc()
		c.logger.Info("nothing to downsample in block; marked no-downsample", "block", m.ULID)
		return nil
	}
	if err != nil {
		return fmt.Errorf("downsample block %s to %d: %w", m.ULID, to, err)
	}
	meta := *out
	meta.Compaction.Sources = slices.Clone(m.Compaction.Sources)
	meta.Compaction.Level = m.Compaction.Level
	meta.Thanos = block.ThanosMeta{
		Version:    block.ThanosVersion1,
		Labels:     maps.Clone(m.Thanos.Labels), // replica labels already removed
		Downsample: block.Downsample{Resolution: to},
		Source:     block.SourceCompactor,
	}
	if err := block.Upload(ctx, c.logger, c.bkt, filepath.Join(outDir, meta.ULID.String()), &meta); err != nil {
		return fmt.Errorf("upload downsampled block %s: %w", meta.ULID, err)
	}
	c.metrics.downsamples.WithLabelValues(strconv.FormatInt(to, 10)).Inc()
	c.metrics.downsampleDuration.Observe(time.Since(start).Seconds())
	c.logger.Info("downsampled block", "block", m.ULID, "result", meta.ULID, "resolution", to, "duration", time.Since(start))
	return nil
}
