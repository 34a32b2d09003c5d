package tenancy

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql"
	"github.com/prometheus/prometheus/promql/parser"
	"github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/tsdb"
	"github.com/stretchr/testify/require"
)

// openTenantsTSDB opens a TSDB holding the series of the given tenants, all
// with the same metric names and other labels; only the tenant label and the
// values differ (tenant b's values are 1000 times tenant a's).
func openTenantsTSDB(t *testing.T, tenants ...string) *tsdb.DB {
	t.Helper()
	db, err := tsdb.Open(t.TempDir(), nil, nil, tsdb.DefaultOptions(), nil)
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, db.Close()) })
	app := db.Appender(context.Background())
	for _, tenant := range tenants {
		scale := 1.0
		if tenant == "b" {
			scale = 1000
		}
		for _, s := range []labels.Labels{
			labels.FromStrings("__name__", "x", "job", "api", tenantLabel, tenant),
			labels.FromStrings("__name__", "x", "job", "db", tenantLabel, tenant),
			labels.FromStrings("__name__", "y", "job", "api", tenantLabel, tenant),
			labels.FromStrings("__name__", "only_"+tenant, tenantLabel, tenant),
		} {
			for i := int64(0); i <= 40; i++ {
				_, err := app.Append(0, s, i*15_000, scale*float64(i+1))
				require.NoError(t, err)
			}
		}
	}
	require.NoError(t, app.Commit())
	return db
}

// canonical renders a query result, or its error, in a stable order.
func canonical(res *promql.Result) string {
	if res.Err != nil {
		return "error: " + res.Err.Error()
	}
	switch v := res.Value.(type) {
	case promql.Vector:
		lines := make([]string, len(v))
		for i, s := range v {
			lines[i] = s.String()
		}
		sort.Strings(lines)
		return strings.Join(lines, "\n")
	case promql.Matrix:
		lines := make([]string, len(v))
		for i, s := range v {
			lines[i] = s.String()
		}
		sort.Strings(lines)
		return strings.Join(lines, "\n")
	default:
		return v.String()
	}
}

// resultLabels returns the label sets of an instant or range result.
func resultLabels(res *promql.Result) []labels.Labels {
	var out []labels.Labels
	switch v := res.Value.(type) {
	case promql.Vector:
		for _, s := range v {
			out = append(out, s.Metric)
		}
	case promql.Matrix:
		for _, s := range v {
			out = append(out, s.Metric)
		}
	}
	return out
}

// TestEnforcedQueriesNeverSeeOtherTenants evaluates hostile queries, confined
// to tenant a, on a TSDB holding tenants a and b, and requires the same
// answer as on a TSDB holding tenant a alone: tenant b's data does not reach
// the result in any form, counted, renamed or joined.
func TestEnforcedQueriesNeverSeeOtherTenants(t *testing.T) {
	both := openTenantsTSDB(t, "a", "b")
	onlyA := openTenantsTSDB(t, "a")
	engine := promql.NewEngine(promql.EngineOpts{
		MaxSamples:           1e6,
		Timeout:              time.Minute,
		LookbackDelta:        5 * time.Minute,
		EnableAtModifier:     true,
		EnableNegativeOffset: true,
		Parser:               parser.NewParser(parser.Options{}),
	})
	ctx := context.Background()
	end := time.UnixMilli(40 * 15_000)
	// The result is read before Close: Close hands its memory back to
	// the engine's pools.
	instant := func(db storage.Queryable, q string) (string, []labels.Labels) {
		qry, err := engine.NewInstantQuery(ctx, db, nil, q, end)
		require.NoError(t, err, q)
		defer qry.Close()
		res := qry.Exec(ctx)
		return canonical(res), resultLabels(res)
	}
	ranged := func(db storage.Queryable, q string) (string, []labels.Labels) {
		qry, err := engine.NewRangeQuery(ctx, db, nil, q, time.UnixMilli(0), end, time.Minute)
		require.NoError(t, err, q)
		defer qry.Close()
		res := qry.Exec(ctx)
		return canonical(res), resultLabels(res)
	}

	hostile := []struct {
		q string
		// renames says the query rewrites the tenant label itself, so a
		// tenant_id="b" label in the result carries tenant a's data.
		renames bool
	}{
		{q: `{tenant_id=~".+"}`},
		{q: `{tenant_id="b"}`},
		{q: `{__name__=~".+", tenant_id!="a"}`},
		{q: `{__name__=~".+"}`},
		{q: `{__name__=~".+", tenant_id=~"a|b"}`},
		{q: `count by (tenant_id) ({__name__=~".+"})`},
		{q: `count({__name__=~".+"})`},
		{q: `sum(x)`},
		{q: `only_b`},
		{q: `absent(only_b)`},
		{q: `x or on() {tenant_id="b"}`},
		{q: `x or only_b`},
		{q: `x unless on() only_b`},
		{q: `x + on(job) group_left y`},
		{q: `x * ignoring(tenant_id) group_left x`},
		{q: `label_replace(x, "tenant_id", "b", "", "")`, renames: true},
		{q: `label_replace({__name__=~".+"}, "tenant_id", "b", "tenant_id", ".*")`, renames: true},
		{q: `label_replace(x, "tenant_id", "b", "", "") or {tenant_id="b"}`, renames: true},
		{q: `label_replace(x, "tenant_id", "b", "", "") and on(tenant_id) x`, renames: true},
		{q: `label_join(x, "tenant_id", "", "job")`, renames: true},
		{q: `max_over_time(rate({__name__=~"x|only_.+", tenant_id=~".+"}[2m])[5m:1m])`},
		{q: `sum_over_time(x[10m] @ end())`},
		{q: `x offset 2m`},
		{q: `topk(scalar(count(only_b) or vector(1)), x)`},
		{q: `count_values("v", {tenant_id=~".+"})`},
		{q: `vector(1)`},
	}
	for _, tc := range hostile {
		t.Run(tc.q, func(t *testing.T) {
			q, err := EnforceQuery(tc.q, tenantLabel, "a")
			require.NoError(t, err)
			for kind, run := range map[string]func(storage.Queryable, string) (string, []labels.Labels){"instant": instant, "range": ranged} {
				got, gotLabels := run(both, q)
				want, _ := run(onlyA, q)
				require.Equal(t, want, got, "%s query %s", kind, q)
				require.NotContains(t, got, "error", "%s query %s", kind, q)
				if tc.renames {
					continue
				}
				for _, ls := range gotLabels {
					if v := ls.Get(tenantLabel); v != "" {
						require.Equal(t, "a", v, "%s query %s returned %s", kind, q, ls)
					}
				}
			}
		})
	}

	// The test can fail: the same queries unconfined do see tenant b.
	for _, q := range []string{`{tenant_id=~".+"}`, `count by (tenant_id) ({__name__=~".+"})`, `x or on() {tenant_id="b"}`} {
		want, _ := instant(onlyA, q)
		got, _ := instant(both, q)
		require.NotEqual(t, want, got, q)
	}
}

// TestLabelReplaceCannotWiden shows that rewriting the tenant label happens
// after selection: the renamed series are tenant a's, with a's values.
func TestLabelReplaceCannotWiden(t *testing.T) {
	db := openTenantsTSDB(t, "a", "b")
	engine := promql.NewEngine(promql.EngineOpts{MaxSamples: 1e6, Timeout: time.Minute, LookbackDelta: 5 * time.Minute})
	ctx := context.Background()
	q, err := EnforceQuery(`label_replace(x, "tenant_id", "b", "", "")`, tenantLabel, "a")
	require.NoError(t, err)
	qry, err := engine.NewInstantQuery(ctx, db, nil, q, time.UnixMilli(40*15_000))
	require.NoError(t, err)
	defer qry.Close()
	res := qry.Exec(ctx)
	require.NoError(t, res.Err)
	vec, err := res.Vector()
	require.NoError(t, err)
	require.Len(t, vec, 2, "one series per job of tenant a, none of b")
	for _, s := range vec {
		require.Equal(t, "b", s.Metric.Get(tenantLabel), "renamed")
		require.Equal(t, 41.0, s.F, fmt.Sprintf("%s carries a value of tenant b", s.Metric))
	}
}
