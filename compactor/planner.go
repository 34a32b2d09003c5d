package compactor

import (
	"cmp"
	"slices"
	"time"

	"github.com/oklog/ulid/v2"

	"github.com/stratametrics/strata/block"
)

// DefaultRanges are the block ranges the planner compacts into, in milliseconds:
// 2h, 8h, 2d and 14d, the levels Thanos produces from 2h blocks.
var DefaultRanges = []int64{
	int64(2 * time.Hour / time.Millisecond),
	int64(8 * time.Hour / time.Millisecond),
	int64(48 * time.Hour / time.Millisecond),
	int64(336 * time.Hour / time.Millisecond),
}

// Plan is what the planner chose for one group: either blocks to compact
// together, or, for a downsampled group whose blocks overlap, blocks to mark
// no-compact instead. At most one of the two is set.
type Plan struct {
	// Compact holds the blocks to compact into one, sorted by MinTime then ULID.
	// It has at least two blocks.
	Compact []*block.Meta
	// Vertical is true when the blocks of Compact overlap in time.
	Vertical bool
	// NoCompact holds downsampled blocks that overlap older ones. They must be
	// marked no-compact, and the group planned again: downsampled blocks are
	// never merged vertically, since their aggregates cannot be deduplicated
	// sample by sample.
	NoCompact []*block.Meta
}

// Empty reports whether the plan has nothing to do.
func (p Plan) Empty() bool { return len(p.Compact) == 0 && len(p.NoCompact) == 0 }

// PlanGroup decides what to do next with the blocks of one group, with
// Prometheus' leveled planner semantics but without touching a filesystem:
//
//  1. Blocks in excluded (no-compact marked, marked for deletion) are left out
//     entirely, except that they still cut the runs of step 3.
//  2. If blocks overlap in time, the first run of overlapping blocks is
//     returned: vertical compaction for raw data, a no-compact plan for
//     downsampled data (every block of the run but the oldest by ULID).
//  3. Otherwise the newest block (by MinTime) is left out, which gives a
//     maintenance window of one block; then for each range R in ranges the
//     blocks are split into aligned windows [k·R, (k+1)·R); the first window
//     with at least two blocks that either spans exactly R or ends at or before
//     the newest remaining block's MinTime is returned. Excluded blocks split a
//     window into runs, of which the first with two blocks or more is taken, so
//     a marked block never leaves a gap in what was compacted around it.
//
// metas must all belong to one group; their order does not matter. PlanGroup
// does not modify them.
func PlanGroup(metas []*block.Meta, excluded map[ulid.ULID]bool, ranges []int64) Plan {
	all := sortedByMinTime(metas)
	included := make([]*block.Meta, 0, len(all))
	for _, m := range all {
		if !excluded[m.ULID] {
			included = append(included, m)
		}
	}
	if run := overlappingRun(included); len(run) > 0 {
		if run[0].Thanos.Downsample.Resolution != block.ResolutionRaw {
			return Plan{NoCompact: newerThanOldest(run)}
		}
		return Plan{Compact: run, Vertical: true}
	}
	if len(all) == 0 {
		return Plan{}
	}
	// Leave the newest block out. If it is excluded it is not in the plan anyway,
	// and what remains is planned as if it were there.
	newest := all[len(all)-1]
	all = all[:len(all)-1]
	if !excluded[newest.ULID] && len(included) > 0 {
		included = included[:len(included)-1]
	}
	if len(included) < 2 {
		return Plan{}
	}
	if run := selectLevel(all, excluded, ranges); len(run) > 1 {
		return Plan{Compact: run}
	}
	return Plan{}
}

// sortedByMinTime returns a copy of metas sorted by MinTime, then MaxTime, then
// ULID, so that plans are deterministic.
func sortedByMinTime(metas []*block.Meta) []*block.Meta {
	out := slices.Clone(metas)
	slices.SortFunc(out, func(a, b *block.Meta) int {
		if a.MinTime != b.MinTime {
			return cmp.Compare(a.MinTime, b.MinTime)
		}
		if a.MaxTime != b.MaxTime {
			return cmp.Compare(a.MaxTime, b.MaxTime)
		}
		return a.ULID.Compare(b.ULID)
	})
	return out
}

// overlappingRun returns the first run of blocks, sorted by MinTime, in which
// each block starts before the maximum end of the blocks before it in the run.
// Block time ranges are half-open, so adjacent blocks do not overlap.
func overlappingRun(sorted []*block.Meta) []*block.Meta {
	if len(sorted) < 2 {
		return nil
	}
	var run []*block.Meta
	maxT := sorted[0].MaxTime
	for i := 1; i < len(sorted); i++ {
		m := sorted[i]
		if m.MinTime < maxT {
			if len(run) == 0 {
				run = append(run, sorted[i-1])
			}
			run = append(run, m)
		} else if len(run) > 0 {
			break
		}
		maxT = max(maxT, m.MaxTime)
	}
	return run
}

// newerThanOldest returns every block of run except the one with the smallest
// ULID, which is the one kept: it was uploaded first, so readers have served it
// longest.
func newerThanOldest(run []*block.Meta) []*block.Meta {
	oldest := run[0]
	for _, m := range run[1:] {
		if m.ULID.Compare(oldest.ULID) < 0 {
			oldest = m
		}
	}
	out := make([]*block.Meta, 0, len(run)-1)
	for _, m := range run {
		if m != oldest {
			out = append(out, m)
		}
	}
	return out
}

// selectLevel implements step 3 of PlanGroup over sorted, which holds every
// block but the newest, excluded ones included.
func selectLevel(sorted []*block.Meta, excluded map[ulid.ULID]bool, ranges []int64) []*block.Meta {
	if len(sorted) == 0 {
		return nil
	}
	highTime := sorted[len(sorted)-1].MinTime
	for _, r := range ranges {
		for _, window := range splitByRange(sorted, r) {
			if len(window) < 2 {
				continue
			}
			minT, maxT := window[0].MinTime, window[len(window)-1].MaxTime
			if maxT-minT != r && maxT > highTime {
				continue
			}
			start := 0
			for i, m := range window {
				if !excluded[m.ULID] {
					continue
				}
				if i-start > 1 {
					return window[start:i]
				}
				start = i + 1
			}
			if len(window)-start > 1 {
				return window[start:]
			}
		}
	}
	return nil
}

// splitByRange splits sorted into the groups of consecutive blocks that fall
// into one aligned window [k·r, (k+1)·r). A block that does not fit into the
// window its MinTime falls into (it is larger than r or misaligned) belongs to
// no group.
func splitByRange(sorted []*block.Meta, r int64) [][]*block.Meta {
	var out [][]*block.Meta
	for i := 0; i < len(sorted); {
		start := alignDown(sorted[i].MinTime, r)
		if sorted[i].MaxTime > start+r {
			i++
			continue
		}
		var window []*block.Meta
		for ; i < len(sorted) && sorted[i].MaxTime <= start+r; i++ {
			window = append(window, sorted[i])
		}
		out = append(out, window)
	}
	return out
}

// alignDown returns the start of the aligned window of size r holding t, for
// negative t too.
func alignDown(t, r int64) int64 {
	if t >= 0 {
		return r * (t / r)
	}
	return r * ((t - r + 1) / r)
}
