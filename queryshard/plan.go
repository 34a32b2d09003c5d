package queryshard

import (
	"slices"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/promql/parser"
)

// Mode is how the results of the shards of a query are put together.
type Mode int

const (
	// ModeCombine merges series with equal labels from several shards point
	// by point with the plan's Combiner.
	ModeCombine Mode = iota + 1
	// ModeUnion takes the union of the shards' series: every output series
	// comes from exactly one shard.
	ModeUnion
)

// String returns "combine" or "union".
func (m Mode) String() string {
	switch m {
	case ModeCombine:
		return "combine"
	case ModeUnion:
		return "union"
	}
	return "invalid"
}

// Combiner is how ModeCombine merges the values of series with equal labels at
// one timestamp.
type Combiner int

const (
	// CombineSum adds the values: sum, count and count_values.
	CombineSum Combiner = iota + 1
	// CombineMax takes the largest value, a NaN losing against any number: max.
	CombineMax
	// CombineMin takes the smallest value, a NaN losing against any number: min.
	CombineMin
	// CombineGroup is always 1: group.
	CombineGroup
)

// String returns the name of the aggregation that combines as c does.
func (c Combiner) String() string {
	switch c {
	case CombineSum:
		return "sum"
	case CombineMax:
		return "max"
	case CombineMin:
		return "min"
	case CombineGroup:
		return "group"
	}
	return "invalid"
}

// Plan is how to shard one query. Selector(i, n) is the selector of shard i
// of n; every shard evaluates the same query over its part of the series.
type Plan struct {
	// Mode is how the shards' results are put together.
	Mode Mode
	// Combiner merges equal series in ModeCombine; it is zero in ModeUnion.
	Combiner Combiner
	// By and Labels are those of every shard's Selector.
	By     bool
	Labels []string
	// FallbackOnWarnings is set when a warning in a shard's answer means
	// the combined result may differ from the unsharded one, so the caller
	// must run the query unsharded instead. It is set for sum: PromQL drops
	// a group whose samples at one step mix floats and native histograms, or
	// hold incompatible histograms, with a warning, and a shard that holds
	// only the floats of such a group cannot know it.
	FallbackOnWarnings bool
}

// Selector returns the selector of shard index of total.
func (p Plan) Selector(index, total int) Selector {
	return Selector{Index: index, Total: total, By: p.By, Labels: slices.Clone(p.Labels)}
}

// metadataLabels returns the labels that label-preserving functions may drop
// (schema.IsMetadataLabel): the metric name and, with type and unit labels,
// __type__ and __unit__. Sorted.
func metadataLabels() []string {
	return []string{model.MetricNameLabel, model.MetricTypeLabel, model.MetricUnitLabel}
}

// perSeriesFunc reports whether the function computes each output series from
// one input series alone and keeps all its labels except possibly the
// metadata labels. Functions that merge series (histogram_quantile and
// histogram_fraction, which read classic buckets across series), change
// labels (label_replace, label_join, info), make series out of nothing
// (absent, absent_over_time, vector, time functions without an argument) or
// are about order (sort*) are not, nor is anything not known to be
// per-series.
func perSeriesFunc(name string) bool {
	switch name {
	case "rate", "irate", "increase", "delta", "idelta", "deriv", "predict_linear", "changes", "resets",
		"avg_over_time", "min_over_time", "max_over_time", "sum_over_time", "count_over_time",
		"quantile_over_time", "stddev_over_time", "stdvar_over_time", "last_over_time",
		"first_over_time", "present_over_time", "mad_over_time",
		"abs", "ceil", "floor", "round", "clamp", "clamp_min", "clamp_max", "exp", "ln", "log2",
		"log10", "sqrt", "sgn", "timestamp",
		"histogram_count", "histogram_sum", "histogram_avg", "histogram_stddev", "histogram_stdvar":
		return true
	}
	return false
}

// PlanExpr decides whether expr can be sharded, and how; ok is false when it
// cannot. See the package documentation for what is shardable. PlanExpr errs
// on the side of false: a false true would be a wrong answer, a false false
// only a slower one. expr is not modified.
func PlanExpr(expr parser.Expr) (p Plan, ok bool) {
	agg, isAgg := unwrap(expr).(*parser.AggregateExpr)
	if !isAgg {
		return Plan{}, false
	}
	for _, n := range agg.Grouping {
		if validLabelName(n) != nil {
			return Plan{}, false
		}
	}
	if agg.Param != nil {
		if s, isStr := unwrap(agg.Param).(*parser.StringLiteral); isStr {
			if agg.Op != parser.COUNT_VALUES || validLabelName(s.Val) != nil {
				return Plan{}, false
			}
		} else if !scalarLiteral(agg.Param) {
			return Plan{}, false
		}
	}
	keepsMetadata, ok := seriesExpr(agg.Expr)
	if !ok {
		return Plan{}, false
	}
	switch agg.Op {
	case parser.SUM, parser.COUNT, parser.COUNT_VALUES:
		return combinePlan(CombineSum, keepsMetadata, agg.Op == parser.SUM), true
	case parser.MAX:
		return combinePlan(CombineMax, keepsMetadata, false), true
	case parser.MIN:
		return combinePlan(CombineMin, keepsMetadata, false), true
	case parser.GROUP:
		return combinePlan(CombineGroup, keepsMetadata, false), true
	case parser.AVG, parser.STDDEV, parser.STDVAR, parser.QUANTILE, parser.TOPK, parser.BOTTOMK:
		return unionPlan(agg)
	}
	// limitk and limit_ratio are experimental; left unsharded.
	return Plan{}, false
}

// combinePlan shards by all labels. When the inner expression may drop the
// metadata labels they stay out of the hash, so that series that differ only
// in them, which PromQL refuses to hold in one vector, meet in one shard and
// fail there as they fail unsharded.
func combinePlan(c Combiner, keepsMetadata, fallbackOnWarnings bool) Plan {
	p := Plan{Mode: ModeCombine, Combiner: c, FallbackOnWarnings: fallbackOnWarnings}
	if !keepsMetadata {
		p.Labels = metadataLabels()
	}
	return p
}

// unionPlan shards by the grouping, so that every group lies in one shard.
// A without grouping also leaves the metadata labels out of the hash:
// aggregation drops the metric name, and the inner expression may drop all of
// them.
func unionPlan(agg *parser.AggregateExpr) (Plan, bool) {
	if agg.Without {
		ls := append(slices.Clone(agg.Grouping), metadataLabels()...)
		slices.Sort(ls)
		return Plan{Mode: ModeUnion, Labels: slices.Compact(ls)}, true
	}
	if len(agg.Grouping) == 0 {
		return Plan{}, false
	}
	for _, n := range agg.Grouping {
		if slices.Contains(metadataLabels(), n) {
			return Plan{}, false
		}
	}
	ls := slices.Clone(agg.Grouping)
	slices.Sort(ls)
	return Plan{Mode: ModeUnion, By: true, Labels: slices.Compact(ls)}, true
}

// unwrap strips parentheses and the engine's step-invariant wrappers, which
// do not change what an expression evaluates to.
func unwrap(e parser.Expr) parser.Expr {
	for {
		switch x := e.(type) {
		case *parser.ParenExpr:
			e = x.Expr
		case *parser.StepInvariantExpr:
			e = x.Expr
		default:
			return e
		}
	}
}

// seriesExpr reports whether e computes each of its output series from
// exactly one input series of its only selector, keeping that series'
// labels except possibly the metadata labels, and whether it surely keeps
// those too.
func seriesExpr(e parser.Expr) (keepsMetadata, ok bool) {
	switch x := unwrap(e).(type) {
	case *parser.VectorSelector:
		return true, plainSelector(x)
	case *parser.MatrixSelector:
		vs, isVS := x.VectorSelector.(*parser.VectorSelector)
		return true, isVS && x.RangeExpr == nil && plainSelector(vs)
	case *parser.SubqueryExpr:
		if x.StartOrEnd != 0 || x.RangeExpr != nil || x.StepExpr != nil || x.OriginalOffsetExpr != nil {
			return false, false
		}
		return seriesExpr(x.Expr)
	case *parser.UnaryExpr:
		_, ok := seriesExpr(x.Expr)
		return false, ok
	case *parser.BinaryExpr:
		if x.Op.IsSetOperator() {
			return false, false
		}
		switch {
		case scalarLiteral(x.LHS):
			_, ok = seriesExpr(x.RHS)
		case scalarLiteral(x.RHS):
			_, ok = seriesExpr(x.LHS)
		}
		return false, ok
	case *parser.Call:
		if !perSeriesFunc(x.Func.Name) {
			return false, false
		}
		found := false
		for _, a := range x.Args {
			if scalarLiteral(a) {
				continue
			}
			if _, argOK := seriesExpr(a); !argOK || found {
				return false, false
			}
			found = true
		}
		return false, found
	}
	return false, false
}

// plainSelector rejects @ start() and @ end(), which depend on the range of
// the request and so on how the frontend splits it, and offsets given as
// duration expressions.
func plainSelector(vs *parser.VectorSelector) bool {
	return vs.StartOrEnd == 0 && vs.OriginalOffsetExpr == nil
}

// scalarLiteral reports whether e is a number, or arithmetic over numbers.
func scalarLiteral(e parser.Expr) bool {
	switch x := unwrap(e).(type) {
	case *parser.NumberLiteral:
		return true
	case *parser.UnaryExpr:
		return scalarLiteral(x.Expr)
	case *parser.BinaryExpr:
		return !x.Op.IsSetOperator() && scalarLiteral(x.LHS) && scalarLiteral(x.RHS)
	}
	return false
}
