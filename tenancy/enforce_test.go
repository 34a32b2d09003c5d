package tenancy

import (
	"testing"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql/parser"
	"github.com/stretchr/testify/require"

	"github.com/stratametrics/strata/tsdbshard"
)

const tenantLabel = tsdbshard.DefaultTenantLabelName

// selectors returns every vector selector of expr.
func selectors(t testing.TB, expr parser.Expr) []*parser.VectorSelector {
	t.Helper()
	var out []*parser.VectorSelector
	parser.Inspect(expr, func(n parser.Node, _ []parser.Node) error {
		if vs, ok := n.(*parser.VectorSelector); ok {
			out = append(out, vs)
		}
		return nil
	})
	return out
}

func mustParse(t testing.TB, q string) parser.Expr {
	t.Helper()
	e, err := parser.NewParser(parser.Options{}).ParseExpr(q)
	require.NoError(t, err, q)
	return e
}

var enforceQueries = []struct {
	q         string
	selectors int
}{
	{`up`, 1},
	{`{__name__=~".+"}`, 1},
	{`{tenant_id=~".+"}`, 1},
	{`up{tenant_id="b"}`, 1},
	{`up{tenant_id!="a"}`, 1},
	{`{"my.metric", tenant_id="b"}`, 1},
	{`rate(http_requests_total{job="api"}[5m])`, 1},
	{`sum by (job) (rate(x[5m]))`, 1},
	{`count by (tenant_id) ({__name__=~".+"})`, 1},
	{`max_over_time(rate(x[5m])[1h:1m])`, 1},
	{`max_over_time(max_over_time((rate(x[5m]) or y)[1h:1m] offset 5m)[2h:5m])`, 2},
	{`changes(x[1h:])`, 1},
	{`x or on() {tenant_id="b"}`, 2},
	{`x unless y`, 2},
	{`x and on(job) y`, 2},
	{`x + on(job) group_left(tenant_id) y`, 2},
	{`x == on() group_right sum(y)`, 2},
	{`x > bool 2`, 1},
	{`-x`, 1},
	{`(((x)))`, 1},
	{`label_replace(x, "tenant_id", "b", "", "")`, 1},
	{`label_join(x, "foo", ",", "tenant_id", "job")`, 1},
	{`absent(nonexistent)`, 1},
	{`absent(nonexistent{tenant_id="b"})`, 1},
	{`absent_over_time(x[5m])`, 1},
	{`x @ end()`, 1},
	{`x @ 100`, 1},
	{`rate(x[5m] @ start())`, 1},
	{`x offset -5m`, 1},
	{`x offset 1h @ 10`, 1},
	{`rate(x[5m:1m] offset 10m)`, 1},
	{`topk(scalar(y), x)`, 2},
	{`count_values("v", x)`, 1},
	{`quantile(0.9, x)`, 1},
	{`quantile(scalar(q), x)`, 2},
	{`histogram_quantile(0.9, sum by (le) (rate(h_bucket[5m])))`, 1},
	{`predict_linear(x[1h], 3600)`, 1},
	{`timestamp(x)`, 1},
	{`sort_desc(x) / ignoring(job) y * on() vector(1)`, 2},
	{`1 + 1`, 0},
	{`"string"`, 0},
	{`time()`, 0},
	{`vector(1)`, 0},
	{`scalar(x)`, 1},
}

func TestEnforceQuery(t *testing.T) {
	for _, tc := range enforceQueries {
		t.Run(tc.q, func(t *testing.T) {
			out, err := EnforceQuery(tc.q, tenantLabel, "a")
			require.NoError(t, err)
			orig := selectors(t, mustParse(t, tc.q))
			require.Len(t, orig, tc.selectors, "test table")

			e := mustParse(t, out)
			got := selectors(t, e)
			require.Len(t, got, tc.selectors, out)
			for i, vs := range got {
				require.Truef(t, hasTenantMatcher(vs.LabelMatchers, tenantLabel, "a"), "selector %s in %s", vs, out)
				// Nothing was dropped: the original matchers plus one.
				require.Len(t, vs.LabelMatchers, len(orig[i].LabelMatchers)+1, vs.String())
				for _, m := range orig[i].LabelMatchers {
					require.Contains(t, matcherStrings(vs.LabelMatchers), m.String())
				}
				require.Equal(t, orig[i].Name, vs.Name)
				require.Equal(t, orig[i].OriginalOffset, vs.OriginalOffset)
				require.Equal(t, orig[i].Timestamp, vs.Timestamp)
				require.Equal(t, orig[i].StartOrEnd, vs.StartOrEnd)
			}
			require.NoError(t, CheckExpr(e, tenantLabel, "a"))

			// Enforcing again changes nothing that matters: still valid.
			again, err := EnforceQuery(out, tenantLabel, "a")
			require.NoError(t, err)
			require.NoError(t, CheckExpr(mustParse(t, again), tenantLabel, "a"))
		})
	}
}

func matcherStrings(ms []*labels.Matcher) []string {
	out := make([]string, len(ms))
	for i, m := range ms {
		out[i] = m.String()
	}
	return out
}

func TestEnforceExprKeepsNameAndSharedSlices(t *testing.T) {
	e := mustParse(t, `up{job="x"} + up{job="x"}`)
	vs := selectors(t, e)
	// Make both selectors share one backing array, with spare capacity, as
	// a caller building an AST by hand might.
	shared := make([]*labels.Matcher, 2, 8)
	copy(shared, vs[0].LabelMatchers)
	vs[0].LabelMatchers, vs[1].LabelMatchers = shared, shared[:2]

	require.NoError(t, EnforceExpr(e, tenantLabel, "a"))
	for _, v := range vs {
		require.Equal(t, "up", v.Name)
		require.Equal(t, `up{job="x",tenant_id="a"}`, v.String())
	}
	require.Len(t, shared, 2)
	require.Nil(t, shared[:3][2], "the shared slice was written to")
}

func TestEnforceKeepsTenantMatchersInConjunction(t *testing.T) {
	e := mustParse(t, `x{tenant_id="b"} or {tenant_id=~".+"}`)
	require.NoError(t, EnforceExpr(e, tenantLabel, "a"))
	vs := selectors(t, e)
	require.Equal(t, `x{tenant_id="a",tenant_id="b"}`, vs[0].String())
	require.Equal(t, `{tenant_id="a",tenant_id=~".+"}`, vs[1].String())
	// The conjunction for another tenant matches nothing.
	matches := func(ms []*labels.Matcher, ls labels.Labels) bool {
		for _, m := range ms {
			if !m.Matches(ls.Get(m.Name)) {
				return false
			}
		}
		return true
	}
	for _, tenant := range []string{"a", "b"} {
		ls := labels.FromStrings("__name__", "x", tenantLabel, tenant)
		require.False(t, matches(vs[0].LabelMatchers, ls), tenant)
		require.Equal(t, tenant == "a", matches(vs[1].LabelMatchers, ls), tenant)
	}
}

func TestEnforceErrors(t *testing.T) {
	for _, tc := range []struct {
		name, q, label, tenant string
		isEnforce              bool
	}{
		{name: "empty tenant", q: "up", label: tenantLabel, tenant: "", isEnforce: true},
		{name: "invalid tenant", q: "up", label: tenantLabel, tenant: "a/b", isEnforce: true},
		{name: "name label", q: "up", label: "__name__", tenant: "a", isEnforce: true},
		{name: "reserved label", q: "up", label: "__tenant", tenant: "a", isEnforce: true},
		{name: "bad label", q: "up", label: "tenant-id", tenant: "a", isEnforce: true},
		{name: "empty label", q: "up", label: "", tenant: "a", isEnforce: true},
		{name: "syntax", q: "up{", label: tenantLabel, tenant: "a"},
		{name: "empty query", q: "", label: tenantLabel, tenant: "a"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, err := EnforceQuery(tc.q, tc.label, tc.tenant)
			require.Error(t, err)
			require.Empty(t, out)
			if tc.isEnforce {
				require.ErrorIs(t, err, ErrEnforce)
			}
		})
	}
	require.ErrorIs(t, EnforceExpr(nil, tenantLabel, "a"), ErrEnforce)
	require.ErrorIs(t, CheckExpr(mustParse(t, "up + up{tenant_id=\"a\"}"), tenantLabel, "a"), ErrEnforce)
	require.ErrorIs(t, CheckExpr(mustParse(t, "up{tenant_id=~\"a\"}"), tenantLabel, "a"), ErrEnforce)
}

func TestEnforceMatchers(t *testing.T) {
	in := []*labels.Matcher{labels.MustNewMatcher(labels.MatchRegexp, "__name__", ".+")}
	out := EnforceMatchers(in, tenantLabel, "a")
	require.Len(t, in, 1)
	require.Equal(t, []string{`__name__=~".+"`, `tenant_id="a"`}, matcherStrings(out))

	// Invalid targets fail closed: nothing matches.
	for _, bad := range []struct{ label, tenant string }{{tenantLabel, ""}, {"__name__", "a"}, {tenantLabel, "a/b"}} {
		out := EnforceMatchers(nil, bad.label, bad.tenant)
		require.Len(t, out, 1)
		for _, v := range []string{"", "a", "up", ".*"} {
			require.False(t, out[0].Matches(v))
		}
	}
}

func TestEnforceSelectors(t *testing.T) {
	sets, err := EnforceSelectors(nil, tenantLabel, "a")
	require.NoError(t, err)
	require.Len(t, sets, 1)
	require.Equal(t, []string{`tenant_id="a"`}, matcherStrings(sets[0]))

	strs, err := EnforceMatchSelectors([]string{}, tenantLabel, "a")
	require.NoError(t, err)
	require.Equal(t, []string{`{tenant_id="a"}`}, strs)

	strs, err = EnforceMatchSelectors([]string{`up`, `{tenant_id=~".+"}`, `{"my.metric", job=~"a|b"}`}, tenantLabel, "a")
	require.NoError(t, err)
	require.Equal(t, []string{
		`{__name__="up",tenant_id="a"}`,
		`{tenant_id=~".+",tenant_id="a"}`,
		`{__name__="my.metric",job=~"a|b",tenant_id="a"}`,
	}, strs)

	_, err = EnforceMatchSelectors([]string{`up{`}, tenantLabel, "a")
	require.Error(t, err)
	_, err = EnforceSelectors([]string{`up`}, tenantLabel, "")
	require.ErrorIs(t, err, ErrEnforce)
	_, err = EnforceMatchSelectors(nil, "bad-label", "a")
	require.ErrorIs(t, err, ErrEnforce)
}
