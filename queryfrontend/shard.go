package queryfrontend

import (
	"cmp"
	"math"
	"slices"

	"github.com/prometheus/prometheus/model/labels"

	"github.com/stratametrics/strata/queryshard"
)

// CombineShards puts the results of the shards of one query, planned by
// queryshard.PlanExpr, together into the result of the unsharded query, in
// the canonical form of Merge. Each shard's response must hold at most one
// point per series and time, as a query result does.
//
// In queryshard.ModeUnion every series comes from one shard and the result
// is Merge of the shards. In queryshard.ModeCombine series with equal labels
// are merged point by point at equal times with the plan's Combiner. ok is
// false when the shards cannot be combined and the caller must run the query
// unsharded: a native histogram point in a combine (PromQL's sum of
// histograms is not rebuilt here, and max, min, count and group never
// return one), or a plan with an unknown mode or combiner. The caller must
// also honour Plan.FallbackOnWarnings, which CombineShards cannot see.
//
// CombineShards does not modify its arguments, but the result shares labels
// and histogram bytes with them.
func CombineShards(p queryshard.Plan, shards []Response) (resp Response, ok bool) {
	switch p.Mode {
	case queryshard.ModeUnion:
		return Merge(shards...), true
	case queryshard.ModeCombine:
	default:
		return Response{}, false
	}
	combine := combinerFunc(p.Combiner)
	if combine == nil {
		return Response{}, false
	}
	var all []Series
	for _, r := range shards {
		for _, s := range r.Series {
			for _, pt := range s.Points {
				if len(pt.H) > 0 {
					return Response{}, false
				}
			}
			all = append(all, s)
		}
	}
	slices.SortStableFunc(all, func(a, b Series) int { return labels.Compare(a.Labels, b.Labels) })

	var out []Series
	for i := 0; i < len(all); {
		j := i + 1
		n := len(all[i].Points)
		for j < len(all) && labels.Equal(all[i].Labels, all[j].Labels) {
			n += len(all[j].Points)
			j++
		}
		pts := make([]Point, 0, n)
		for _, s := range all[i:j] {
			pts = append(pts, s.Points...)
		}
		slices.SortStableFunc(pts, func(a, b Point) int { return cmp.Compare(a.T, b.T) })
		folded := pts[:0]
		for _, pt := range pts {
			if last := len(folded) - 1; last >= 0 && folded[last].T == pt.T {
				folded[last].V = combine(folded[last].V, pt.V)
				continue
			}
			folded = append(folded, Point{T: pt.T, V: pt.V})
		}
		if p.Combiner == queryshard.CombineGroup {
			for k := range folded {
				folded[k].V = 1
			}
		}
		if len(folded) > 0 {
			out = append(out, Series{Labels: all[i].Labels, Points: folded})
		}
		i = j
	}
	return Response{Series: out}, true
}

// combinerFunc returns how c merges two values at one time, or nil.
func combinerFunc(c queryshard.Combiner) func(a, b float64) float64 {
	switch c {
	case queryshard.CombineSum:
		return func(a, b float64) float64 { return a + b }
	case queryshard.CombineMax:
		// As PromQL's max: a NaN is replaced by any later value.
		return func(a, b float64) float64 {
			if a < b || math.IsNaN(a) {
				return b
			}
			return a
		}
	case queryshard.CombineMin:
		return func(a, b float64) float64 {
			if a > b || math.IsNaN(a) {
				return b
			}
			return a
		}
	case queryshard.CombineGroup:
		return func(float64, float64) float64 { return 1 }
	}
	return nil
}
