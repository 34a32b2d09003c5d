package compactor

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/oklog/ulid/v2"
	"github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/tsdb"

	"github.com/stratametrics/strata/block"
	"github.com/stratametrics/strata/compactor/bucket"
	"github.com/stratametrics/strata/objstore"
)

// excludedError says that a block of a plan was just marked no-compact: the
// group is planned again without it. It is not a failure.
type excludedError struct {
	id    ulid.ULID
	cause error
}

func (e *excludedError) Error() string {
	return fmt.Sprintf("block %s excluded from compaction: %v", e.id, e.cause)
}

func (e *excludedError) Unwrap() error { return e.cause }

// group is the blocks of one compaction group.
type group struct {
	key   string
	metas []*block.Meta
}

// groups splits metas into compaction groups, sorted by key.
func groups(metas map[ulid.ULID]*block.Meta) []*group {
	byKey := map[string]*group{}
	for _, m := range metas {
		k := m.GroupKey()
		g, ok := byKey[k]
		if !ok {
			g = &group{key: k}
			byKey[k] = g
		}
		g.metas = append(g.metas, m)
	}
	out := make([]*group, 0, len(byKey))
	for _, k := range slices.Sorted(maps.Keys(byKey)) {
		out = append(out, byKey[k])
	}
	return out
}

// excludedFrom returns the blocks the planner must leave alone: no-compact
// marked and marked for deletion (a block being deleted by retention or by hand
// must not be resurrected inside a new block).
func excludedFrom(mk marks) map[ulid.ULID]bool {
	ex := make(map[ulid.ULID]bool, len(mk.noCompact)+len(mk.deletion))
	for id := range mk.noCompact {
		ex[id] = true
	}
	for id := range mk.deletion {
		ex[id] = true
	}
	return ex
}

// todo simulates the planning of every group to the end, as if each planned
// compaction succeeded, and returns how many groups have work and how many
// source blocks that work reads.
func todo(gs []*group, excluded map[ulid.ULID]bool, ranges []int64) (groups, blocks int) {
	for _, g := range gs {
		metas := slices.Clone(g.metas)
		ex := maps.Clone(excluded)
		n := 0
		for range 10_000 { // every step removes a block or excludes one
			p := PlanGroup(metas, ex, ranges)
			if p.Empty() {
				break
			}
			if len(p.NoCompact) > 0 {
				for _, m := range p.NoCompact {
					ex[m.ULID] = true
				}
				continue
			}
			n += len(p.Compact)
			metas = replace(metas, p.Compact, simulatedMerge(p.Compact))
		}
		if n > 0 {
			groups++
			blocks += n
		}
	}
	return groups, blocks
}

// simulatedMerge returns the meta a compaction of metas would produce, enough
// for planning.
func simulatedMerge(metas []*block.Meta) *block.Meta {
	m := *metas[0]
	m.ULID = ulid.Make()
	m.Compaction.Sources = nil
	for _, s := range metas {
		m.MinTime = min(m.MinTime, s.MinTime)
		m.MaxTime = max(m.MaxTime, s.MaxTime)
		m.Compaction.Sources = append(m.Compaction.Sources, s.Compaction.Sources...)
	}
	return &m
}

// replace returns metas without the blocks of sources, plus result if not nil.
func replace(metas, sources []*block.Meta, result *block.Meta) []*block.Meta {
	gone := make(map[ulid.ULID]bool, len(sources))
	for _, s := range sources {
		gone[s.ULID] = true
	}
	out := slices.DeleteFunc(slices.Clone(metas), func(m *block.Meta) bool { return gone[m.ULID] })
	if result != nil {
		out = append(out, result)
	}
	return out
}

// compactAll compacts every group until nothing is left to plan, up to
// Concurrency groups at once. A failing group is logged, counted and returned
// in the joined error; it does not stop the others.
func (c *Compactor) compactAll(ctx context.Context, st *syncState) error {
	gs := groups(st.metas)
	excluded := excludedFrom(st.marks)
	nGroups, nBlocks := todo(gs, excluded, c.cfg.Ranges)
	c.metrics.todoGroups.Set(float64(nGroups))
	c.metrics.todoBlocks.Set(float64(nBlocks))

	return forEachConcurrently(ctx, gs, c.cfg.Concurrency, func(g *group) error {
		err := c.compactGroup(ctx, g, maps.Clone(excluded))
		if err == nil {
			return nil
		}
		if ctx.Err() == nil {
			c.countFailure(ctx, failureCompaction)
			c.logger.Warn("compact group; retrying in the next pass", "group", g.key, "err", err)
		}
		return fmt.Errorf("group %s: %w", g.key, err)
	})
}

// forEachConcurrently calls f for each item, concurrency calls at once, until
// ctx is done, and returns the errors of all calls joined: one failure does not
// stop the others.
func forEachConcurrently[T any](ctx context.Context, items []T, concurrency int, f func(T) error) error {
	var (
		mu   sync.Mutex
		errs []error
		wg   sync.WaitGroup
	)
	work := make(chan T)
	for range max(concurrency, 1) {
		wg.Go(func() {
			for it := range work {
				if err := f(it); err != nil {
					mu.Lock()
					errs = append(errs, err)
					mu.Unlock()
				}
			}
		})
	}
	for _, it := range items {
		if ctx.Err() != nil {
			break
		}
		work <- it
	}
	close(work)
	wg.Wait()
	return errors.Join(errs...)
}

// compactGroup plans and compacts g until its plan is empty.
func (c *Compactor) compactGroup(ctx context.Context, g *group, excluded map[ulid.ULID]bool) error {
	metas := g.metas
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		p := PlanGroup(metas, excluded, c.cfg.Ranges)
		if p.Empty() {
			return nil
		}
		if len(p.NoCompact) > 0 {
			for _, m := range p.NoCompact {
				details := "overlaps another downsampled block of its group; downsampled blocks are never merged vertically"
				if err := c.markNoCompact(ctx, m.ULID, block.ReasonDownsampleVerticalCompaction, details); err != nil {
					return err
				}
				excluded[m.ULID] = true
			}
			continue
		}
		result, err := c.compact(ctx, g.key, p)
		var ex *excludedError
		if errors.As(err, &ex) {
			excluded[ex.id] = true
			continue
		}
		if err != nil {
			return err
		}
		metas = replace(metas, p.Compact, result)
	}
}

// compact runs one planned compaction: download, verify, compact, upload the
// result (meta.json last) and only then mark the sources for deletion. It
// returns the result's meta, nil if the result was empty.
func (c *Compactor) compact(ctx context.Context, groupKey string, p Plan) (_ *block.Meta, err error) {
	start := time.Now()
	dir := filepath.Join(c.cfg.DataDir, "compact", strings.ReplaceAll(groupKey, "@", "-"))
	if err := os.RemoveAll(dir); err != nil {
		return nil, fmt.Errorf("clear %s: %w", dir, err)
	}
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("create %s: %w", dir, err)
	}
	defer func() {
		if rerr := os.RemoveAll(dir); rerr != nil {
			c.logger.Warn("remove compaction directory", "dir", dir, "err", rerr)
		}
	}()

	ids := make([]ulid.ULID, 0, len(p.Compact))
	dirs := make([]string, 0, len(p.Compact))
	for _, m := range p.Compact {
		ids = append(ids, m.ULID)
		blockDir := filepath.Join(dir, m.ULID.String())
		if err := block.Download(ctx, c.logger, c.bkt, m.ULID, dir); err != nil {
			if errors.Is(err, objstore.ErrNotFound) {
				return nil, c.blockFailed(ctx, m.ULID, err)
			}
			return nil, fmt.Errorf("download block %s: %w", m.ULID, err)
		}
		if err := bucket.VerifyIndex(ctx, blockDir); err != nil {
			switch {
			case errors.Is(err, bucket.ErrOutOfOrderChunks):
				if merr := c.markNoCompact(ctx, m.ULID, block.ReasonOutOfOrderChunks, err.Error()); merr != nil {
					return nil, merr
				}
				return nil, &excludedError{id: m.ULID, cause: err}
			case errors.Is(err, bucket.ErrInvalidIndex):
				return nil, c.blockFailed(ctx, m.ULID, err)
			}
			return nil, fmt.Errorf("verify block %s: %w", m.ULID, err)
		}
		dirs = append(dirs, blockDir)
	}
	c.logger.Info("compacting blocks", "group", groupKey, "blocks", len(ids), "vertical", p.Vertical, "sources", ids)

	comp, err := tsdb.NewLeveledCompactorWithOptions(ctx, nil, c.logger, c.cfg.Ranges, nil, tsdb.LeveledCompactorOptions{
		// Overlapping blocks (out-of-order data, replicas once their replica
		// label is dropped) are merged, each sample once.
		MergeFunc:                   storage.NewCompactingChunkSeriesMerger(storage.ChainedSeriesMerge),
		EnableOverlappingCompaction: true,
	})
	if err != nil {
		return nil, fmt.Errorf("create TSDB compactor: %w", err)
	}
	out, err := comp.Compact(dir, dirs, nil)
	if err != nil {
		return nil, fmt.Errorf("compact blocks %v: %w", ids, err)
	}

	var result *block.Meta
	if len(out) > 0 {
		resultDir := filepath.Join(dir, out[0].String())
		result, err = block.ReadMetaFromDir(resultDir)
		if err != nil {
			return nil, fmt.Errorf("read compacted block: %w", err)
		}
		first := p.Compact[0]
		result.Thanos = block.ThanosMeta{
			Version:    block.ThanosVersion1,
			Labels:     maps.Clone(first.Thanos.Labels),
			Downsample: first.Thanos.Downsample,
			Source:     block.SourceCompactor,
		}
		if err := bucket.VerifyIndex(ctx, resultDir); err != nil {
			return nil, fmt.Errorf("verify compacted block %s: %w", result.ULID, err)
		}
		if err := block.Upload(ctx, c.logger, c.bkt, resultDir, result); err != nil {
			return nil, fmt.Errorf("upload compacted block %s: %w", result.ULID, err)
		}
	}

	// The result is committed: from here on, a crash leaves sources that the
	// duplicate filter hides and the next sync marks.
	details := "compacted: the result had no samples"
	if result != nil {
		details = "compacted into " + result.ULID.String()
	}
	for _, id := range ids {
		if err := block.WriteDeletionMark(ctx, c.bkt, id, c.cfg.Now(), details); err != nil {
			c.countFailure(ctx, failureMark)
			return nil, fmt.Errorf("mark compacted block %s for deletion: %w", id, err)
		}
		c.metrics.markedForDeletion.WithLabelValues(deletionCompacted).Inc()
	}
	c.mu.Lock()
	for _, id := range ids {
		delete(c.failures, id)
	}
	c.mu.Unlock()

	c.metrics.compactions.Inc()
	c.metrics.compactedBlocks.Add(float64(len(ids)))
	if p.Vertical {
		c.metrics.verticals.Inc()
	}
	c.metrics.compactionDuration.Observe(time.Since(start).Seconds())
	if result == nil {
		c.logger.Info("compacted blocks into nothing: no samples left", "group", groupKey, "sources", ids)
		return nil, nil
	}
	c.logger.Info("compacted blocks", "group", groupKey, "block", result.ULID, "sources", ids,
		"level", result.Compaction.Level, "min_time", result.MinTime, "max_time", result.MaxTime,
		"samples", result.Stats.NumSamples, "duration", time.Since(start))
	return result, nil
}

// blockFailed counts a failure to download or verify block id that is the
// block's own fault. After MaxBlockFailures in a row the block is marked
// no-compact and an *excludedError returned; before, cause is returned.
func (c *Compactor) blockFailed(ctx context.Context, id ulid.ULID, cause error) error {
	c.mu.Lock()
	c.failures[id]++
	n := c.failures[id]
	c.mu.Unlock()
	if n < c.cfg.MaxBlockFailures {
		return fmt.Errorf("block %s failed %d of %d times before it is excluded: %w", id, n, c.cfg.MaxBlockFailures, cause)
	}
	if err := c.markNoCompact(ctx, id, ReasonCorruptedBlock, cause.Error()); err != nil {
		return errors.Join(cause, err)
	}
	c.mu.Lock()
	delete(c.failures, id)
	c.mu.Unlock()
	return &excludedError{id: id, cause: cause}
}

// markNoCompact writes a no-compact mark for block id.
func (c *Compactor) markNoCompact(ctx context.Context, id ulid.ULID, reason, details string) error {
	if err := block.WriteNoCompactMark(ctx, c.bkt, id, c.cfg.Now(), reason, details); err != nil {
		c.countFailure(ctx, failureMark)
		return fmt.Errorf("mark block %s no-compact: %w", id, err)
	}
	c.metrics.markedNoCompact.WithLabelValues(reason).Inc()
	c.logger.Warn("marked block no-compact", "block", id, "reason", reason, "details", details)
	return nil
}
