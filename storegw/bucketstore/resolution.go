package bucketstore

import (
	"cmp"
	"math"
	"slices"

	"github.com/prometheus/prometheus/model/labels"

	"github.com/stratametrics/strata/block"
)

// interval is a closed time range [mint, maxt] in milliseconds.
type interval struct{ mint, maxt int64 }

// selection is a block chosen to serve parts of a request's time range: only
// samples in ranges, sorted and disjoint, are served from it.
type selection struct {
	meta   *block.Meta
	ranges []interval
}

// selectBlocks chooses which blocks serve which parts of [mint, maxt] for a
// request that accepts resolutions up to maxRes milliseconds (0: raw data only).
// Blocks are grouped by external labels, and each group is resolved alone: a
// tenant's or a replica's blocks never hide another's. Within a group, the
// coarsest resolution not above maxRes serves every part of the range that its
// blocks cover; what they leave uncovered goes to the next finer resolution,
// and so on down to raw data. So every instant is served from exactly one
// resolution of each group. Blocks of the same resolution that overlap in time
// all serve the overlap, as they do without downsampling: merging them is the
// client's job.
//
// A block appears at most once, with the sorted, disjoint parts of [mint, maxt]
// it serves; the result is sorted by the start of those, then ULID.
func selectBlocks(metas []*block.Meta, mint, maxt, maxRes int64) []selection {
	if mint > maxt {
		return nil
	}
	maxRes = max(maxRes, block.ResolutionRaw)
	groups := map[string][]*block.Meta{}
	for _, m := range metas {
		if m.MinTime >= m.MaxTime || m.Thanos.Downsample.Resolution > maxRes {
			continue
		}
		k := labels.FromMap(m.Thanos.Labels).String()
		groups[k] = append(groups[k], m)
	}
	var out []selection
	for _, group := range groups {
		out = append(out, selectInGroup(group, mint, maxt)...)
	}
	slices.SortFunc(out, func(a, b selection) int {
		if c := cmp.Compare(a.ranges[0].mint, b.ranges[0].mint); c != 0 {
			return c
		}
		return a.meta.ULID.Compare(b.meta.ULID)
	})
	return out
}

// selectInGroup is selectBlocks for the blocks of one external label set, all
// of an acceptable resolution.
func selectInGroup(group []*block.Meta, mint, maxt int64) []selection {
	var resolutions []int64
	for _, m := range group {
		resolutions = append(resolutions, m.Thanos.Downsample.Resolution)
	}
	slices.Sort(resolutions)
	resolutions = slices.Compact(resolutions)
	slices.Reverse(resolutions)

	var out []selection
	gaps := []interval{{mint, maxt}}
	for _, res := range resolutions {
		var covered []interval
		for _, m := range group {
			if m.Thanos.Downsample.Resolution != res {
				continue
			}
			// A block's MaxTime is exclusive.
			span := interval{m.MinTime, m.MaxTime - 1}
			if r := intersectInterval(gaps, span); len(r) > 0 {
				out = append(out, selection{meta: m, ranges: r})
			}
			covered = append(covered, span)
		}
		// Only after the whole resolution: its blocks may overlap each other.
		for _, c := range covered {
			gaps = subtractInterval(gaps, c)
		}
		if len(gaps) == 0 {
			break
		}
	}
	return out
}

// intersectInterval returns the parts of the sorted, disjoint intervals in that lie in iv.
func intersectInterval(in []interval, iv interval) []interval {
	var out []interval
	for _, g := range in {
		lo, hi := max(g.mint, iv.mint), min(g.maxt, iv.maxt)
		if lo <= hi {
			out = append(out, interval{lo, hi})
		}
	}
	return out
}

// subtractInterval returns the parts of the sorted, disjoint intervals in that lie
// outside iv.
func subtractInterval(in []interval, iv interval) []interval {
	out := make([]interval, 0, len(in)+1)
	for _, g := range in {
		if g.maxt < iv.mint || g.mint > iv.maxt {
			out = append(out, g)
			continue
		}
		if g.mint < iv.mint {
			out = append(out, interval{g.mint, iv.mint - 1})
		}
		if g.maxt > iv.maxt {
			out = append(out, interval{iv.maxt + 1, g.maxt})
		}
	}
	return out
}

// openEnds widens the ranges a block serves for a request over [mint, maxt] to
// unbounded ends where they end with the request: samples outside the request's
// range are the client's to trim, and only the boundaries between resolutions
// inside it need cutting here.
func openEnds(ranges []interval, mint, maxt int64) []interval {
	out := slices.Clone(ranges)
	if n := len(out); n > 0 {
		if out[0].mint <= mint {
			out[0].mint = math.MinInt64
		}
		if out[n-1].maxt >= maxt {
			out[n-1].maxt = math.MaxInt64
		}
	}
	return out
}

// within reports whether [mint, maxt] lies inside one of ranges.
func within(ranges []interval, mint, maxt int64) bool {
	for _, r := range ranges {
		if r.mint <= mint && maxt <= r.maxt {
			return true
		}
	}
	return false
}

// overlapsAny reports whether [mint, maxt] overlaps one of ranges.
func overlapsAny(ranges []interval, mint, maxt int64) bool {
	for _, r := range ranges {
		if r.mint <= maxt && mint <= r.maxt {
			return true
		}
	}
	return false
}

// contains reports whether t lies in one of ranges.
func contains(ranges []interval, t int64) bool {
	return overlapsAny(ranges, t, t)
}
