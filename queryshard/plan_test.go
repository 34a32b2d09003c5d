package queryshard

import (
	"testing"

	"github.com/prometheus/prometheus/promql/parser"
	"github.com/stretchr/testify/require"
)

var (
	meta       = []string{"__name__", "__type__", "__unit__"}
	combineAll = func(c Combiner) *Plan { return &Plan{Mode: ModeCombine, Combiner: c} }
	combineFn  = func(c Combiner) *Plan { return &Plan{Mode: ModeCombine, Combiner: c, Labels: meta} }
)

// parityExprs returns the expressions of the sharding parity set, with the plan
// PlanExpr must return for each; nil means not shardable.
func parityExprs() []struct {
	expr string
	want *Plan
} {
	sumFn := combineFn(CombineSum)
	sumFn.FallbackOnWarnings = true
	return []struct {
		expr string
		want *Plan
	}{
		{`up{job="prometheus"}`, nil},
		{`{__name__=~"prometheus_tsdb_head_.+", job="prometheus"}`, nil},
		{`count({__name__=~".+"})`, combineAll(CombineSum)},
		{`rate(prometheus_http_requests_total[10s])`, nil},
		{`sum by (handler) (rate(prometheus_http_requests_total[10s]))`, sumFn},
		{`sum without (code) (increase(prometheus_http_requests_total[10s]))`, sumFn},
		{`max by (handler) (prometheus_http_request_duration_seconds_count)`, combineAll(CombineMax)},
		{`count by (handler) (prometheus_http_request_duration_seconds_bucket)`, combineAll(CombineSum)},
		{`avg without (le) (prometheus_http_response_size_bytes_bucket)`, &Plan{Mode: ModeUnion, Labels: []string{"__name__", "__type__", "__unit__", "le"}}},
		{`quantile(0.5, rate(prometheus_http_requests_total[10s]))`, nil},
		{`stdvar(rate(prometheus_http_requests_total[10s]))`, nil},
		{`histogram_quantile(0.9, sum by (le) (rate(prometheus_http_request_duration_seconds_bucket[10s])))`, nil},
		{`max_over_time(go_memstats_alloc_bytes[10s:1s])`, nil},
		{`label_replace(up, "host", "$1", "instance", "(.+):[0-9]+")`, nil},
		{`topk(2, prometheus_http_request_duration_seconds_sum)`, nil},
		{`absent(up{job="prometheus"})`, nil},
		{`prometheus_http_requests_total / on (handler) group_left prometheus_http_request_duration_seconds_count`, nil},
		{`(prometheus_http_requests_total and on (handler) prometheus_http_request_duration_seconds_count > 3) unless on (code) prometheus_http_requests_total{code!="200"} or vector(0)`, nil},
		{`count_values("value", prometheus_http_requests_total)`, combineAll(CombineSum)},
		{`count_values by (handler) ("count", prometheus_http_response_size_bytes_bucket)`, combineAll(CombineSum)},
		{`sort_desc(sum by (handler) (rate(prometheus_http_response_size_bytes_sum[10s])))`, nil},
		{`vector(scalar(sum(up)))`, nil},
		{`max by (quantile) (prometheus_target_interval_length_seconds)`, combineAll(CombineMax)},
		{`rate(parity_native_seconds[20s])`, nil},
		{`histogram_count(rate(parity_native_seconds[1m]))`, nil},
	}
}

func TestPlanExprParity(t *testing.T) {
	p := parser.NewParser(parser.Options{})
	for _, tc := range parityExprs() {
		t.Run(tc.expr, func(t *testing.T) {
			expr, err := p.ParseExpr(tc.expr)
			require.NoError(t, err)
			got, ok := PlanExpr(expr)
			if tc.want == nil {
				require.False(t, ok, "planned %+v", got)
				return
			}
			require.True(t, ok)
			require.Equal(t, *tc.want, got)
		})
	}
}

func TestPlanExpr(t *testing.T) {
	union := func(by bool, ls ...string) *Plan { return &Plan{Mode: ModeUnion, By: by, Labels: ls} }
	for _, tc := range []struct {
		expr string
		want *Plan
	}{
		// Combine operators, every grouping and inner shape.
		{`sum(x)`, &Plan{Mode: ModeCombine, Combiner: CombineSum, FallbackOnWarnings: true}},
		{`(sum by (a) (x))`, &Plan{Mode: ModeCombine, Combiner: CombineSum, FallbackOnWarnings: true}},
		{`min without (a) (x offset 5m)`, combineAll(CombineMin)},
		{`group by (a) (x @ 1700000000)`, combineAll(CombineGroup)},
		{`max(x > 3)`, combineFn(CombineMax)},
		{`max(-x)`, combineFn(CombineMax)},
		{`max(2 * (x + 1))`, combineFn(CombineMax)},
		{`max(x * (2 - 1))`, combineFn(CombineMax)},
		{`max(clamp(x, 0, 10))`, combineFn(CombineMax)},
		{`max(round(x, 0.1))`, combineFn(CombineMax)},
		{`max(quantile_over_time(0.9, x[5m]))`, combineFn(CombineMax)},
		{`max(predict_linear(x[5m], 3600))`, combineFn(CombineMax)},
		{`max(max_over_time(rate(x[1m])[5m:30s]))`, combineFn(CombineMax)},
		{`count(histogram_count(rate(h[5m])))`, combineFn(CombineSum)},
		{`count by (a) ({__name__=~"a|b"})`, combineAll(CombineSum)},

		// Union operators need a grouping that keeps groups in one shard.
		{`avg by (b, a, a) (rate(x[5m]))`, union(true, "a", "b")},
		{`avg without (b, a) (rate(x[5m]))`, union(false, "__name__", "__type__", "__unit__", "a", "b")},
		{`avg without () (x)`, union(false, "__name__", "__type__", "__unit__")},
		{`stddev by (a) (x)`, union(true, "a")},
		{`quantile by (a) (0.9, x)`, union(true, "a")},
		{`topk by (a) (3, x)`, union(true, "a")},
		{`bottomk without (__name__) (1 + 2, x)`, union(false, "__name__", "__type__", "__unit__")},
		{`avg(x)`, nil},
		{`avg by () (x)`, nil},
		{`avg by (__name__) (x)`, nil},
		{`avg by (a, __type__) (x)`, nil},
		{`limitk by (a) (2, x)`, nil},
		{`limit_ratio by (a) (0.5, x)`, nil},

		// Not shardable.
		{`x`, nil},
		{`1 + 2`, nil},
		{`sum(x) * 2`, nil},
		{`sum(sum by (a) (x))`, nil},
		{`sum(x + y)`, nil},
		{`sum(x and y)`, nil},
		{`sum(x * on (a) y)`, nil},
		{`sum(x @ start())`, nil},
		{`sum(rate(x[5m] @ end()))`, nil},
		{`sum(max_over_time(x[5m:1m] @ start()))`, nil},
		{`sum(histogram_quantile(0.9, x))`, nil},
		{`sum(histogram_fraction(0, 1, x))`, nil},
		{`sum(label_replace(x, "a", "$1", "b", "(.*)"))`, nil},
		{`sum(absent_over_time(x[5m]))`, nil},
		{`sum(sort(x))`, nil},
		{`sum(clamp(x, scalar(y), 1))`, nil},
		{`sum(x * time())`, nil},
		{`sum(vector(1))`, nil},
		{`count(vector(time()))`, nil},
		{`topk by (a) (scalar(y), x)`, nil},
		{`quantile by (a) (scalar(y), x)`, nil},
		{`count_values by (a) ("a,b", x)`, nil},
		{`sum by ("a,b") (x)`, nil},
	} {
		t.Run(tc.expr, func(t *testing.T) {
			expr, err := parser.NewParser(parser.Options{EnableExperimentalFunctions: true}).ParseExpr(tc.expr)
			require.NoError(t, err)
			got, ok := PlanExpr(expr)
			if tc.want == nil {
				require.False(t, ok, "planned %+v", got)
				return
			}
			require.True(t, ok)
			require.Equal(t, *tc.want, got)
		})
	}
}

func TestPlanSelector(t *testing.T) {
	p := Plan{Mode: ModeUnion, By: true, Labels: []string{"a"}}
	s := p.Selector(1, 3)
	require.Equal(t, Selector{Index: 1, Total: 3, By: true, Labels: []string{"a"}}, s)
	require.NoError(t, s.Validate())
	s.Labels[0] = "b"
	require.Equal(t, "a", p.Labels[0], "the selector owns its labels")
}
