package querier_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/prometheus/model/exemplar"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/metadata"
	"github.com/prometheus/prometheus/tsdb"
	"github.com/stretchr/testify/require"

	"github.com/stratametrics/strata/querier"
	"github.com/stratametrics/strata/storeapi"
	"github.com/stratametrics/strata/storeapi/storeapitest"
	"github.com/stratametrics/strata/tenancy"
)

// tenancyT0 is the first sample time of the tenancy fixture, in seconds; samples follow every
// 15s up to tenancyT0+60.
const tenancyT0 = 1700000000

// bValue is the value of every sample of tenant b; tenant a's values are small, so a response to
// a that contains it shows b's data.
const bValue = 7777

// bMarkers are strings that only tenant b's data holds: a response to tenant a containing any of
// them leaks b's data.
var bMarkers = []string{"7777", "bonly", "secret_b", "only_b_metric", "trace-b-secret", `"tenant_id":"b"`}

func tenancySamples(v float64) []storeapitest.Sample {
	return floats(tenancyT0*1000, (tenancyT0+61)*1000, 15000, func(int64) float64 { return v })
}

func tenancySeries(v float64, kv ...string) storeapitest.Series {
	return storeapitest.Series{Labels: labels.FromStrings(kv...), Samples: tenancySamples(v)}
}

// tenancyFixture is two tenants' data with the same metric names, label names and values, plus
// some of each tenant's own:
//   - store A: a receiver's TSDB of tenant a (external label tenant_id="a");
//   - store B: tenant b's (tenant_id="b"), with the same series, a series only b has
//     (instance="bonly") and a metric only b has (only_b_metric{secret_b="x"});
//   - store M: a TSDB whose series carry tenant_id themselves, both tenants in one store, as a
//     store over compacted blocks serves them. It is also the exemplar store, holding an exemplar
//     of each tenant on http_requests_total.
type tenancyFixture struct {
	storeA, storeB, storeM *testStore
	queryable              *querier.Queryable
	exemplars              *tsdb.DB
}

func newTenancyFixture(t *testing.T) *tenancyFixture {
	t.Helper()
	f := &tenancyFixture{}
	f.storeA = startTSDBStore(t, []storeapitest.Series{
		tenancySeries(1, "__name__", "up", "job", "node", "instance", "i1"),
		tenancySeries(10, "__name__", "http_requests_total", "job", "api", "code", "200"),
		tenancySeries(3, "__name__", "only_a_metric", "job", "ajob"),
	}, labels.FromStrings("tenant_id", "a"))
	f.storeB = startTSDBStore(t, []storeapitest.Series{
		tenancySeries(bValue, "__name__", "up", "job", "node", "instance", "i1"),
		tenancySeries(bValue, "__name__", "up", "job", "node", "instance", "bonly"),
		tenancySeries(bValue, "__name__", "http_requests_total", "job", "api", "code", "200"),
		tenancySeries(bValue, "__name__", "only_b_metric", "job", "ajob", "secret_b", "x"),
	}, labels.FromStrings("tenant_id", "b"))

	opts := tsdb.DefaultOptions()
	opts.EnableExemplarStorage = true
	opts.MaxExemplars = 100
	db, err := tsdb.Open(t.TempDir(), nil, nil, opts, nil)
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, db.Close()) })
	reqA := labels.FromStrings("__name__", "http_requests_total", "job", "api", "code", "200", "src", "bucket", "tenant_id", "a")
	reqB := labels.FromStrings("__name__", "http_requests_total", "job", "api", "code", "200", "src", "bucket", "tenant_id", "b")
	app := db.AppenderV2(context.Background())
	require.NoError(t, storeapitest.AppendAll(app, []storeapitest.Series{
		tenancySeries(1, "__name__", "up", "job", "node", "instance", "i1", "src", "bucket", "tenant_id", "a"),
		tenancySeries(bValue, "__name__", "up", "job", "node", "instance", "i1", "src", "bucket", "tenant_id", "b"),
		tenancySeries(bValue, "__name__", "only_b_metric", "secret_b", "x", "src", "bucket", "tenant_id", "b"),
		{Labels: reqA, Samples: tenancySamples(20)},
		{Labels: reqB, Samples: tenancySamples(bValue)},
	}))
	require.NoError(t, app.Commit())
	app1 := db.Appender(context.Background())
	for _, e := range []struct {
		lset  labels.Labels
		trace string
		v     float64
	}{{reqA, "trace-a", 20}, {reqB, "trace-b-secret", bValue}} {
		_, err := app1.AppendExemplar(0, e.lset, exemplar.Exemplar{
			Labels: labels.FromStrings("trace_id", e.trace), Value: e.v, Ts: (tenancyT0 + 60) * 1000, HasTs: true,
		})
		require.NoError(t, err)
	}
	require.NoError(t, app1.Commit())
	s := storeapi.NewTSDBStore(db, labels.EmptyLabels(), "store", nil)
	f.storeM = serveStore(t, s, s)
	f.exemplars = db

	set := newEndpointSet(t, f.storeA.addr, f.storeB.addr, f.storeM.addr)
	f.queryable = querier.NewQueryable(set, querier.Options{}, nil, nil)
	return f
}

// api serves the query API over the fixture, with tenancy if ten is set. Metadata knows b's
// metric, to show that it is not served under tenancy.
func (f *tenancyFixture) api(t *testing.T, ten *querier.Tenancy) http.Handler {
	t.Helper()
	opts := querier.DefaultAPIOptions()
	opts.Context = querier.WithRequestParams
	opts.ExemplarQueryable = f.exemplars
	opts.Tenancy = ten
	opts.Metadata = func(context.Context, string, int, int) (map[string][]metadata.Metadata, error) {
		return map[string][]metadata.Metadata{"only_b_metric": {{Type: "gauge", Help: "secret_b help"}}}, nil
	}
	mux := http.NewServeMux()
	querier.NewAPI(f.queryable, opts, prometheus.NewRegistry(), nil).Register(mux)
	return mux
}

func newTestTenancy(t *testing.T, opts querier.TenancyOptions) *querier.Tenancy {
	t.Helper()
	ten, err := querier.NewTenancy(opts)
	require.NoError(t, err)
	return ten
}

// tenancyGet sends GET path?params with the tenant header set to tenant (none if empty) and
// returns the status and body.
func tenancyGet(t *testing.T, h http.Handler, path string, params url.Values, header http.Header) (int, string) {
	t.Helper()
	req := httptest.NewRequest(http.MethodGet, path+"?"+params.Encode(), nil)
	for k, vs := range header {
		for _, v := range vs {
			req.Header.Add(k, v)
		}
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec.Code, rec.Body.String()
}

func tenantHeader(tenant string) http.Header {
	return http.Header{"Thanos-Tenant": {tenant}}
}

// requireNoB fails if body holds any of tenant b's data.
func requireNoB(t *testing.T, body string) {
	t.Helper()
	for _, m := range bMarkers {
		require.NotContains(t, body, m, "tenant a's answer holds tenant b's data")
	}
}

// tenancyCase is a request of tenant a and what a must see in the answer besides nothing of b.
type tenancyCase struct {
	name   string
	path   string
	params url.Values
	code   int      // 200 when zero
	want   []string // substrings a's answer must hold: its own data
	exact  string   // the whole data field, when set
}

func tenancyCases() []tenancyCase {
	at := fmt.Sprint(tenancyT0 + 60)
	q := func(name, query string, want ...string) tenancyCase {
		return tenancyCase{name: "query " + name, path: "/api/v1/query", params: params("query", query, "time", at), want: want}
	}
	qr := func(name, query string, want ...string) tenancyCase {
		return tenancyCase{name: "query_range " + name, path: "/api/v1/query_range", params: params("query", query, "start", fmt.Sprint(tenancyT0), "end", at, "step", "15s"), want: want}
	}
	const aSeries = `"tenant_id":"a"`
	cases := []tenancyCase{
		q("tenant regex", `{tenant_id=~".+"}`, aSeries, `"only_a_metric"`),
		q("other tenant", `{tenant_id="b"}`),
		q("or everything", `up or {__name__=~".+"}`, aSeries, `"only_a_metric"`),
		q("label_replace of the other tenant", `label_replace(up{tenant_id="b"}, "tenant_id", "a", "", "")`),
		q("label_replace of everything", `label_replace({__name__=~".+"}, "tenant_id", "a", "", "")`, aSeries),
		q("sum by tenant", `sum by (tenant_id) (up)`, `{"metric":{"tenant_id":"a"},"value":[`+at+`,"2"]}`),
		q("sum of all", `sum(up)`, `"value":[`+at+`,"2"]`),
		q("count of names", `count({__name__=~"only_.*"})`, `"value":[`+at+`,"1"]`),
		q("negative tenant matcher", `{__name__=~".+",tenant_id!="a"}`),
		q("or on other tenant", `up{tenant_id="a"} or on() up{tenant_id="b"}`, aSeries),
		q("unless other tenant", `up unless on(instance) up{tenant_id="b"}`),
		q("subquery and at", `max_over_time({__name__=~"up|only_b_metric"}[1m:15s] @ end())`, aSeries),
		q("absent of b's metric", `absent(only_b_metric)`, aSeries),
		q("group_left from b", `up * on(instance) group_left(secret_b) only_b_metric`),
		q("info-like join on everything", `count by (__name__) ({__name__=~".+"})`, `"only_a_metric"`),
		q("offset", `{__name__=~".+"} offset 15s`, aSeries),
		qr("tenant regex", `{tenant_id=~".+"}`, aSeries),
		qr("other tenant", `{tenant_id="b"}`),
		qr("or everything", `up or {__name__=~".+"}`, aSeries),
		qr("label_replace", `label_replace(up{tenant_id="b"}, "tenant_id", "a", "", "")`),
		qr("sum by tenant", `sum by (tenant_id) (up)`, `"tenant_id":"a"`),
		{name: "series tenant regex", path: "/api/v1/series", params: params("match[]", `{tenant_id=~".+"}`), want: []string{aSeries, "only_a_metric"}},
		{name: "series other tenant", path: "/api/v1/series", params: params("match[]", `{tenant_id="b"}`), exact: `[]`},
		{name: "series several match", path: "/api/v1/series", params: params("match[]", `up`, "match[]", `{__name__=~".+"}`), want: []string{aSeries}},
		{name: "series b's metric", path: "/api/v1/series", params: params("match[]", `{__name__=~"only_b.*"}`), exact: `[]`},
		{name: "series without match", path: "/api/v1/series", params: url.Values{}, code: http.StatusBadRequest},
		{name: "labels without match", path: "/api/v1/labels", params: url.Values{}, exact: `["__name__","code","instance","job","src","tenant_id"]`},
		{name: "labels of other tenant", path: "/api/v1/labels", params: params("match[]", `{tenant_id="b"}`), exact: `[]`},
		{name: "labels of everything", path: "/api/v1/labels", params: params("match[]", `{__name__=~".+"}`), exact: `["__name__","code","instance","job","src","tenant_id"]`},
		{name: "label values of instance", path: "/api/v1/label/instance/values", params: url.Values{}, exact: `["i1"]`},
		{name: "label values of tenant", path: "/api/v1/label/tenant_id/values", params: url.Values{}, exact: `["a"]`},
		{name: "label values of tenant with regex", path: "/api/v1/label/tenant_id/values", params: params("match[]", `{tenant_id=~".*b.*|a"}`), exact: `["a"]`},
		{name: "label values of names", path: "/api/v1/label/__name__/values", params: url.Values{}, exact: `["http_requests_total","only_a_metric","up"]`},
		{name: "label values of b's label", path: "/api/v1/label/secret_b/values", params: url.Values{}, exact: `[]`},
		{name: "label values matching b", path: "/api/v1/label/instance/values", params: params("match[]", `{tenant_id="b"}`), exact: `[]`},
		{name: "exemplars", path: "/api/v1/query_exemplars", params: params("query", `http_requests_total`), want: []string{"trace-a"}},
		{name: "exemplars tenant regex", path: "/api/v1/query_exemplars", params: params("query", `{tenant_id=~".+",__name__=~".+"}`), want: []string{"trace-a"}},
		{name: "exemplars other tenant", path: "/api/v1/query_exemplars", params: params("query", `http_requests_total{tenant_id="b"}`), exact: `[]`},
		{name: "exemplars or", path: "/api/v1/query_exemplars", params: params("query", `http_requests_total{tenant_id="a"} or http_requests_total{tenant_id!="a"}`), want: []string{"trace-a"}},
		{name: "metadata", path: "/api/v1/metadata", params: url.Values{}, exact: `{}`},
	}
	return cases
}

// TestTenancyIsolation asks every API, as tenant a, for tenant b's data in every way the
// fixture allows, and checks that a gets its own data and none of b's.
func TestTenancyIsolation(t *testing.T) {
	f := newTenancyFixture(t)
	h := f.api(t, newTestTenancy(t, querier.TenancyOptions{}))
	for _, tc := range tenancyCases() {
		t.Run(tc.name, func(t *testing.T) {
			code, body := tenancyGet(t, h, tc.path, tc.params, tenantHeader("a"))
			wantCode := tc.code
			if wantCode == 0 {
				wantCode = http.StatusOK
			}
			require.Equal(t, wantCode, code, body)
			requireNoB(t, body)
			for _, w := range tc.want {
				require.Contains(t, body, w)
			}
			if tc.exact != "" {
				var env struct {
					Data json.RawMessage `json:"data"`
				}
				require.NoError(t, json.Unmarshal([]byte(body), &env), body)
				require.JSONEq(t, tc.exact, string(env.Data))
			}
		})
	}
	// The tenant matcher also keeps tenant a's requests away from the store that only holds b.
	require.Zero(t, f.storeB.seriesCalls.Load(), "tenant a's requests reached tenant b's store")
	require.NotZero(t, f.storeA.seriesCalls.Load())
}

// TestTenancyFixtureLeaksWithoutTenancy is the control of TestTenancyIsolation: without
// tenancy the same requests do return b's data, so the markers and queries can find a leak.
func TestTenancyFixtureLeaksWithoutTenancy(t *testing.T) {
	f := newTenancyFixture(t)
	h := f.api(t, nil)
	leaked := 0
	for _, tc := range tenancyCases() {
		_, body := tenancyGet(t, h, tc.path, tc.params, tenantHeader("a"))
		if slices.ContainsFunc(bMarkers, func(m string) bool { return strings.Contains(body, m) }) {
			leaked++
		}
	}
	// Every case but those that ask for nothing of b or fail anyway leaks.
	require.GreaterOrEqual(t, leaked, 30)
	_, body := tenancyGet(t, h, "/api/v1/label/tenant_id/values", nil, nil)
	require.Contains(t, body, `["a","b"]`)
}

// TestTenancyOtherTenant checks the fixture the other way round: b sees its own data, and not
// a's, and a request without the header is the default tenant's, which has no data.
func TestTenancyOtherTenant(t *testing.T) {
	f := newTenancyFixture(t)
	h := f.api(t, newTestTenancy(t, querier.TenancyOptions{}))
	at := fmt.Sprint(tenancyT0 + 60)

	code, body := tenancyGet(t, h, "/api/v1/query", params("query", `sort(up or {tenant_id="a"})`, "time", at), tenantHeader("b"))
	require.Equal(t, http.StatusOK, code, body)
	require.Contains(t, body, "bonly")
	require.Contains(t, body, `"tenant_id":"b"`)
	require.NotContains(t, body, `"tenant_id":"a"`)
	require.NotContains(t, body, "only_a_metric")

	code, body = tenancyGet(t, h, "/api/v1/label/tenant_id/values", nil, nil)
	require.Equal(t, http.StatusOK, code, body)
	require.JSONEq(t, `{"status":"success","data":[]}`, body)

	code, body = tenancyGet(t, h, "/api/v1/query", params("query", "up"), tenantHeader("../b"))
	require.Equal(t, http.StatusBadRequest, code, body)
	require.Contains(t, body, `"errorType":"bad_data"`)

	code, body = tenancyGet(t, h, "/api/v1/query", params("query", "up"), http.Header{"Thanos-Tenant": {"a", "b"}})
	require.Equal(t, http.StatusBadRequest, code, body)
	requireNoB(t, body)
}

// tenancyRules is a ruler's /api/v1/rules: rules confined to a, to b, and to nobody.
const tenancyRules = `{"status":"success","data":{"groups":[
 {"name":"mixed","file":"f.yaml","lastEvaluation":"2024-01-01T00:00:00Z","rules":[
  {"name":"ADown","query":"up{tenant_id=\"a\"} == 0","type":"alerting","health":"ok","alerts":[
   {"labels":{"alertname":"ADown","tenant_id":"a","instance":"i1"},"state":"firing","activeAt":"2024-01-01T00:00:00Z","value":"0"}]},
  {"name":"BDown","query":"up{tenant_id=\"b\"} == 0","type":"alerting","health":"ok","alerts":[
   {"labels":{"alertname":"BDown","tenant_id":"b","instance":"bonly"},"state":"firing","activeAt":"2024-01-01T00:00:00Z","value":"0"}]},
  {"name":"AnyDown","query":"up == 0","type":"alerting","health":"ok","alerts":[
   {"labels":{"alertname":"AnyDown","tenant_id":"a","instance":"i1"},"state":"firing","activeAt":"2024-01-01T00:00:00Z","value":"0"},
   {"labels":{"alertname":"AnyDown","tenant_id":"b","instance":"bonly"},"state":"firing","activeAt":"2024-01-01T00:00:00Z","value":"0"}]},
  {"name":"a:up:sum","query":"sum(up{tenant_id=\"a\"})","type":"recording","health":"ok"},
  {"name":"all:up:sum","query":"sum(up)","type":"recording","health":"ok"},
  {"name":"a_or_b","query":"up{tenant_id=\"a\"} or only_b_metric","type":"recording","health":"ok"},
  {"name":"a_regex","query":"up{tenant_id=~\"a\"}","type":"recording","health":"ok"},
  {"name":"broken","query":"up{","type":"recording","health":"ok"}]},
 {"name":"b-only","file":"f.yaml","lastEvaluation":"2024-01-01T00:00:00Z","rules":[
  {"name":"b:secret_b","query":"only_b_metric{tenant_id=\"b\",secret_b=\"x\"}","type":"recording","health":"ok"}]}
]}}`

// TestTenancyRules checks that a tenant sees only the rules confined to it, and the alerts of
// those rules only, through the rules proxy.
func TestTenancyRules(t *testing.T) {
	// The ruler's /api/v1/alerts has every alert; under tenancy the proxy must not use it.
	allAlerts := `{"status":"success","data":{"alerts":[{"labels":{"alertname":"BDown","tenant_id":"b"},"state":"firing"},{"labels":{"alertname":"AnyDown","tenant_id":"a"},"state":"firing"}]}}`
	ruler := newTestRuler(t, "", http.StatusOK, tenancyRules, allAlerts)
	h := newTestRulesProxy(t, querier.RulesOptions{
		Rulers:  []string{ruler.URL},
		Tenancy: newTestTenancy(t, querier.TenancyOptions{}),
	}, nil)

	type rule struct {
		Name   string `json:"name"`
		Alerts []struct {
			Labels map[string]string `json:"labels"`
		} `json:"alerts"`
	}
	var rules struct {
		Data struct {
			Groups []struct {
				Name  string `json:"name"`
				Rules []rule `json:"rules"`
			} `json:"groups"`
		} `json:"data"`
	}
	code, body := tenancyGet(t, h, "/api/v1/rules", nil, tenantHeader("a"))
	require.Equal(t, http.StatusOK, code, body)
	requireNoB(t, body)
	require.NoError(t, json.Unmarshal([]byte(body), &rules))
	require.Len(t, rules.Data.Groups, 1)
	require.Equal(t, "mixed", rules.Data.Groups[0].Name)
	var names []string
	for _, r := range rules.Data.Groups[0].Rules {
		names = append(names, r.Name)
	}
	require.Equal(t, []string{"ADown", "a:up:sum"}, names)
	require.Len(t, rules.Data.Groups[0].Rules[0].Alerts, 1)
	require.Equal(t, "a", rules.Data.Groups[0].Rules[0].Alerts[0].Labels["tenant_id"])

	code, body = tenancyGet(t, h, "/api/v1/alerts", nil, tenantHeader("a"))
	require.Equal(t, http.StatusOK, code, body)
	requireNoB(t, body)
	var alerts struct {
		Data struct {
			Alerts []struct {
				Labels map[string]string `json:"labels"`
			} `json:"alerts"`
		} `json:"data"`
	}
	require.NoError(t, json.Unmarshal([]byte(body), &alerts))
	require.Len(t, alerts.Data.Alerts, 1, body)
	require.Equal(t, map[string]string{"alertname": "ADown", "tenant_id": "a", "instance": "i1"}, alerts.Data.Alerts[0].Labels)
	require.Contains(t, ruler.seen(), "type=alert")

	// b sees its own rules and alert.
	code, body = tenancyGet(t, h, "/api/v1/rules", nil, tenantHeader("b"))
	require.Equal(t, http.StatusOK, code, body)
	require.Contains(t, body, `"BDown"`)
	require.Contains(t, body, `"b:secret_b"`)
	require.NotContains(t, body, `"ADown"`)
	require.NotContains(t, body, `"AnyDown"`)

	// Without tenancy every rule is served: the filter above is what hides them.
	open := newTestRulesProxy(t, querier.RulesOptions{Rulers: []string{ruler.URL}}, prometheus.NewRegistry())
	_, body = tenancyGet(t, open, "/api/v1/rules", nil, tenantHeader("a"))
	require.Contains(t, body, `"AnyDown"`)
	require.Contains(t, body, `"b:secret_b"`)
}

// tenancyTestAuth authenticates by the tenants file's rules, from a real tenants file.
func tenancyTestAuth(t testing.TB) *tenancy.Authenticator {
	t.Helper()
	path := t.TempDir() + "/tenants.yaml"
	content := fmt.Sprintf("tenants:\n  - name: a\n    tokens_sha256: [%q]\n  - name: b\n    tokens_sha256: [%q]\n",
		tenancy.HashToken("token-a"), tenancy.HashToken("token-b"))
	require.NoError(t, os.WriteFile(path, []byte(content), 0o600))
	auth, err := tenancy.NewAuthenticator(path, nil, nil)
	require.NoError(t, err)
	return auth
}

// TestTenancyAuthentication is the table of credentials against the query API and the rules
// proxy with a tenants file: good ones are confined to their tenant, the others get 401 or 403
// in Prometheus' error envelope and no data.
func TestTenancyAuthentication(t *testing.T) {
	f := newTenancyFixture(t)
	ten := newTestTenancy(t, querier.TenancyOptions{Authenticator: tenancyTestAuth(t)})
	api := f.api(t, ten)
	ruler := newTestRuler(t, "", http.StatusOK, tenancyRules, `{"status":"success","data":{"alerts":[]}}`)
	rules := newTestRulesProxy(t, querier.RulesOptions{Rulers: []string{ruler.URL}, Tenancy: ten}, nil)

	for _, tc := range []struct {
		name      string
		header    http.Header
		code      int
		errorType string
		tenant    string // the tenant whose data the answer holds
	}{
		{name: "good token", header: http.Header{"Authorization": {"Bearer token-a"}}, code: 200, tenant: "a"},
		{name: "good token of b", header: http.Header{"Authorization": {"Bearer token-b"}}, code: 200, tenant: "b"},
		{name: "good token and its tenant", header: http.Header{"Authorization": {"Bearer token-a"}, "Thanos-Tenant": {"a"}}, code: 200, tenant: "a"},
		{name: "lowercase scheme", header: http.Header{"Authorization": {"bearer token-a"}}, code: 200, tenant: "a"},
		{name: "missing credential", header: nil, code: 401, errorType: "unauthorized"},
		{name: "unknown token", header: http.Header{"Authorization": {"Bearer token-c"}}, code: 401, errorType: "unauthorized"},
		{name: "good token and another tenant", header: http.Header{"Authorization": {"Bearer token-a"}, "Thanos-Tenant": {"b"}}, code: 403, errorType: "forbidden"},
		{name: "header only", header: http.Header{"Thanos-Tenant": {"a"}}, code: 401, errorType: "unauthorized"},
		{name: "basic auth", header: http.Header{"Authorization": {"Basic dG9rZW4tYQ=="}}, code: 401, errorType: "unauthorized"},
		{name: "no scheme", header: http.Header{"Authorization": {"token-a"}}, code: 401, errorType: "unauthorized"},
		{name: "empty token", header: http.Header{"Authorization": {"Bearer "}}, code: 401, errorType: "unauthorized"},
		{name: "two tokens", header: http.Header{"Authorization": {"Bearer token-a", "Bearer token-b"}}, code: 401, errorType: "unauthorized"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, ep := range []struct {
				h    http.Handler
				path string
			}{{api, "/api/v1/label/tenant_id/values"}, {api, "/api/v1/query"}, {rules, "/api/v1/rules"}, {api, "/api/v1/status/buildinfo"}} {
				form := url.Values{}
				if ep.path == "/api/v1/query" {
					form = params("query", `{tenant_id=~".+"}`, "time", fmt.Sprint(tenancyT0+60))
				}
				req := httptest.NewRequest(http.MethodGet, ep.path+"?"+form.Encode(), nil)
				req.Header = tc.header.Clone()
				if req.Header == nil {
					req.Header = http.Header{}
				}
				rec := httptest.NewRecorder()
				ep.h.ServeHTTP(rec, req)
				body, err := io.ReadAll(rec.Body)
				require.NoError(t, err)
				require.Equal(t, tc.code, rec.Code, "%s: %s", ep.path, body)
				require.Equal(t, "application/json", rec.Header().Get("Content-Type"))
				var env struct {
					Status    string          `json:"status"`
					ErrorType string          `json:"errorType"`
					Error     string          `json:"error"`
					Data      json.RawMessage `json:"data"`
				}
				require.NoError(t, json.Unmarshal(body, &env), string(body))
				if tc.code != 200 {
					require.Equal(t, "error", env.Status)
					require.Equal(t, tc.errorType, env.ErrorType)
					require.NotEmpty(t, env.Error)
					require.NotContains(t, env.Error, "token-")
					require.Empty(t, env.Data)
					if tc.code == 401 {
						require.True(t, strings.HasPrefix(rec.Header().Get("WWW-Authenticate"), "Bearer"))
					}
					return
				}
				require.Equal(t, "success", env.Status)
				switch ep.path {
				case "/api/v1/label/tenant_id/values":
					require.JSONEq(t, fmt.Sprintf("[%q]", tc.tenant), string(env.Data))
				case "/api/v1/query":
					require.Contains(t, string(env.Data), `"tenant_id":"`+tc.tenant+`"`)
					other := map[string]string{"a": "b", "b": "a"}[tc.tenant]
					require.NotContains(t, string(env.Data), `"tenant_id":"`+other+`"`)
				case "/api/v1/rules":
					want := map[string]string{"a": "ADown", "b": "BDown"}[tc.tenant]
					require.Contains(t, string(env.Data), want)
				}
			}
		})
	}
}

// params builds url.Values from name, value pairs.
func params(kv ...string) url.Values {
	v := url.Values{}
	for i := 0; i+1 < len(kv); i += 2 {
		v.Add(kv[i], kv[i+1])
	}
	return v
}
