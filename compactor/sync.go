package compactor

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/oklog/ulid/v2"

	"github.com/stratametrics/strata/block"
	"github.com/stratametrics/strata/objstore"
	"github.com/stratametrics/strata/storegw/blocksync"
)

// States the compactor's filters report in strata_blocksync_blocks, next to the
// ones of package blocksync.
const (
	// StateDuplicate is a block whose sources another block of its group covers.
	StateDuplicate = "duplicate"
)

// consistencyDelayFilter drops blocks whose ULID time is less than delay before
// now, except blocks a compactor wrote: those are uploaded with meta.json last by
// this very process (the compactor is a singleton per bucket), so they are
// complete when they appear, and hiding them would make the next pass compact
// their sources a second time. It is blocksync.ConsistencyDelayFilter with an
// injectable clock and that exception, as in Thanos.
type consistencyDelayFilter struct {
	delay time.Duration
	now   func() time.Time
}

// Filter implements blocksync.Filter.
func (f consistencyDelayFilter) Filter(_ context.Context, metas map[ulid.ULID]*block.Meta, drop func(ulid.ULID, string)) error {
	if f.delay <= 0 {
		return nil
	}
	now := f.now()
	for id, m := range metas {
		switch m.Thanos.Source {
		case block.SourceCompactor, block.SourceCompactorRepair, block.SourceBucketRepair:
			continue
		}
		if now.Sub(ulid.Time(id.Time())) < f.delay {
			delete(metas, id)
			drop(id, blocksync.StateTooNew)
		}
	}
	return nil
}

// marks are the marker files found next to the blocks of a bucket in one sync.
type marks struct {
	// deletion holds the deletion mark of every block that has a valid one.
	deletion map[ulid.ULID]*block.DeletionMark
	// noCompact and noDownsample hold the blocks with those marks.
	noCompact    map[ulid.ULID]bool
	noDownsample map[ulid.ULID]bool
}

// markFilter gathers the deletion, no-compact and no-downsample marks of the
// bucket and drops the blocks whose deletion mark is at least delay old.
//
// It finds marks with one recursive listing of the bucket instead of one GET
// per block and mark kind, which on S3 is a page of a thousand names per request
// instead of three requests per block. Only deletion marks are read, since only
// their time matters; they never change once written, so each is read once and
// cached for as long as its block is listed.
type markFilter struct {
	bkt         objstore.BucketReader
	delay       time.Duration
	now         func() time.Time
	concurrency int
	logger      *slog.Logger

	mu       sync.Mutex
	cache    map[ulid.ULID]*block.DeletionMark
	gathered marks
}

func newMarkFilter(bkt objstore.BucketReader, delay time.Duration, now func() time.Time, concurrency int, logger *slog.Logger) *markFilter {
	return &markFilter{
		bkt: bkt, delay: delay, now: now, concurrency: concurrency, logger: logger,
		cache: map[ulid.ULID]*block.DeletionMark{},
	}
}

// Filter implements blocksync.Filter.
func (f *markFilter) Filter(ctx context.Context, metas map[ulid.ULID]*block.Meta, drop func(ulid.ULID, string)) error {
	var deletionIDs []ulid.ULID
	got := marks{
		deletion:     map[ulid.ULID]*block.DeletionMark{},
		noCompact:    map[ulid.ULID]bool{},
		noDownsample: map[ulid.ULID]bool{},
	}
	err := f.bkt.Iter(ctx, "", func(name string) error {
		dir, file, ok := strings.Cut(name, objstore.DirDelim)
		if !ok || strings.Contains(file, objstore.DirDelim) {
			return nil
		}
		id, err := ulid.ParseStrict(dir)
		if err != nil {
			return nil
		}
		switch file {
		case block.DeletionMarkFilename:
			deletionIDs = append(deletionIDs, id)
		case block.NoCompactMarkFilename:
			got.noCompact[id] = true
		case block.NoDownsampleMarkFilename:
			got.noDownsample[id] = true
		}
		return nil
	}, objstore.WithRecursiveIter())
	if err != nil {
		return fmt.Errorf("list marks: %w", err)
	}

	f.mu.Lock()
	var toRead []ulid.ULID
	for _, id := range deletionIDs {
		if m, ok := f.cache[id]; ok {
			got.deletion[id] = m
		} else {
			toRead = append(toRead, id)
		}
	}
	f.mu.Unlock()

	var mu sync.Mutex
	err = blocksync.ForEachID(ctx, toRead, f.concurrency, func(ctx context.Context, id ulid.ULID) error {
		m, err := block.ReadDeletionMark(ctx, f.bkt, id)
		switch {
		case errors.Is(err, objstore.ErrNotFound):
			return nil // deleted since the listing
		case errors.Is(err, block.ErrInvalidDeletionMark):
			f.logger.Warn("ignore invalid deletion mark", "block", id, "err", err)
			return nil
		case err != nil:
			return fmt.Errorf("read deletion mark of block %s: %w", id, err)
		}
		mu.Lock()
		got.deletion[id] = m
		mu.Unlock()
		return nil
	})
	if err != nil {
		return err
	}

	f.mu.Lock()
	f.cache = maps.Clone(got.deletion)
	f.gathered = got
	f.mu.Unlock()

	now := f.now()
	for id, m := range got.deletion {
		if _, ok := metas[id]; ok && now.Sub(time.Unix(m.DeletionTime, 0)) >= f.delay {
			delete(metas, id)
			drop(id, blocksync.StateMarkedForDeletion)
		}
	}
	return nil
}

// marks returns the marks found by the last Filter call. The maps must not be
// modified.
func (f *markFilter) marks() marks {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.gathered
}

// replicaLabelFilter removes the replica labels from every block's external
// labels, so that the blocks of all replicas of a stream fall into one group and
// are merged into one. Metas are shared with the Fetcher's cache, so a block
// whose labels change is replaced by a copy.
type replicaLabelFilter struct {
	labels []string
}

// Filter implements blocksync.Filter.
func (f replicaLabelFilter) Filter(_ context.Context, metas map[ulid.ULID]*block.Meta, _ func(ulid.ULID, string)) error {
	if len(f.labels) == 0 {
		return nil
	}
	for id, m := range metas {
		if stripped, ok := withoutLabels(m, f.labels); ok {
			metas[id] = stripped
		}
	}
	return nil
}

// withoutLabels returns a copy of m without the external labels names, and
// whether there was any to remove.
func withoutLabels(m *block.Meta, names []string) (*block.Meta, bool) {
	found := false
	for _, n := range names {
		if _, ok := m.Thanos.Labels[n]; ok {
			found = true
		}
	}
	if !found {
		return m, false
	}
	c := *m
	c.Thanos.Labels = maps.Clone(m.Thanos.Labels)
	for _, n := range names {
		delete(c.Thanos.Labels, n)
	}
	return &c, true
}

// duplicateFilter drops every block whose compaction sources are all among the
// sources of another block of its group: its data is already in that block. A
// compaction uploads its result before it marks its sources for deletion, so
// after a crash in between, this filter is what hides the sources, and the
// compactor then marks them (see Compactor.Pass). Of blocks with identical
// sources, the one with the smallest ULID is kept.
//
// It must run after replicaLabelFilter, which defines the groups.
type duplicateFilter struct {
	mu         sync.Mutex
	duplicates map[ulid.ULID]ulid.ULID // dropped block -> a block covering it
}

// Filter implements blocksync.Filter.
func (f *duplicateFilter) Filter(_ context.Context, metas map[ulid.ULID]*block.Meta, drop func(ulid.ULID, string)) error {
	dups := findDuplicates(slices.Collect(maps.Values(metas)))
	for id := range dups {
		delete(metas, id)
		drop(id, StateDuplicate)
	}
	f.mu.Lock()
	f.duplicates = dups
	f.mu.Unlock()
	return nil
}

// last returns the duplicates found by the last Filter call, each with a block
// that covers it.
func (f *duplicateFilter) last() map[ulid.ULID]ulid.ULID {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.duplicates
}

// findDuplicates returns, for every block in metas whose sources are covered by
// another block of the same group, the ULID of a covering block. Blocks with the
// most sources are considered first, so every duplicate maps to a block that is
// itself kept.
func findDuplicates(metas []*block.Meta) map[ulid.ULID]ulid.ULID {
	byGroup := map[string][]*block.Meta{}
	for _, m := range metas {
		k := m.GroupKey()
		byGroup[k] = append(byGroup[k], m)
	}
	dups := map[ulid.ULID]ulid.ULID{}
	for _, group := range byGroup {
		slices.SortFunc(group, func(a, b *block.Meta) int {
			if d := len(b.Compaction.Sources) - len(a.Compaction.Sources); d != 0 {
				return d
			}
			return a.ULID.Compare(b.ULID)
		})
		var kept []*block.Meta
		var keptSources []map[ulid.ULID]bool
		for _, m := range group {
			covered := false
			for i, k := range kept {
				if coversAll(keptSources[i], m.Compaction.Sources) {
					dups[m.ULID] = k.ULID
					covered = true
					break
				}
			}
			if covered {
				continue
			}
			kept = append(kept, m)
			set := make(map[ulid.ULID]bool, len(m.Compaction.Sources))
			for _, s := range m.Compaction.Sources {
				set[s] = true
			}
			keptSources = append(keptSources, set)
		}
	}
	return dups
}

func coversAll(set map[ulid.ULID]bool, sources []ulid.ULID) bool {
	if len(sources) == 0 {
		return false
	}
	for _, s := range sources {
		if !set[s] {
			return false
		}
	}
	return true
}
