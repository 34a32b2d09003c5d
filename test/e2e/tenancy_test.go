package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/prometheus/prompb"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/stratametrics/strata/tenancy"
)

// tenancyMarkers are strings that only one tenant's data holds, by tenant.
var tenancyMarkers = map[string][]string{
	"a": {"only_a_metric", "trace-a-e2e", `"tenant_id":"a"`},
	"b": {"7777", "bonly", "secret_b", "only_b_metric", "trace-b-secret", `"tenant_id":"b"`},
}

// TestTenancyIsolationEndToEnd writes the same metric names for tenants a and b into a real
// receiver, and reads them through a querier that authenticates with a tenants file and
// enforces tenancy: every query API, asked with hostile selectors, answers a's token with a's
// data only, b's token with b's only, and no token with 401.
func TestTenancyIsolationEndToEnd(t *testing.T) {
	grpcAddr := freeAddr(t)
	recv := startReceive(t, t.TempDir(), "--grpc-address="+grpcAddr, "--tsdb.max-exemplars=100")

	tenants := filepath.Join(t.TempDir(), "tenants.yaml")
	require.NoError(t, os.WriteFile(tenants, fmt.Appendf(nil, "tenants:\n  - name: a\n    tokens_sha256: [%s]\n  - name: b\n    tokens_sha256: [%s]\n",
		tenancy.HashToken("e2e-token-a"), tenancy.HashToken("e2e-token-b")), 0o600))
	queryURL := startQuerierArgs(t, "--endpoint="+grpcAddr, "--query.enforce-tenancy", "--auth.tenants-file="+tenants)

	now := time.Now()
	ts := now.UnixMilli()
	series := func(v float64, exemplarTrace string, kv ...string) prompb.TimeSeries {
		s := prompb.TimeSeries{Samples: []prompb.Sample{{Value: v, Timestamp: ts}}}
		for i := 0; i < len(kv); i += 2 {
			s.Labels = append(s.Labels, prompb.Label{Name: kv[i], Value: kv[i+1]})
		}
		if exemplarTrace != "" {
			s.Exemplars = []prompb.Exemplar{{Labels: []prompb.Label{{Name: "trace_id", Value: exemplarTrace}}, Value: v, Timestamp: ts}}
		}
		return s
	}
	ctx := context.Background()
	for tenant, ss := range map[string][]prompb.TimeSeries{
		"a": {
			series(1, "", "__name__", "up", "instance", "i1", "job", "node"),
			series(10, "trace-a-e2e", "__name__", "http_requests_total", "code", "200", "job", "api"),
			series(3, "", "__name__", "only_a_metric", "job", "ajob"),
		},
		"b": {
			series(7777, "", "__name__", "up", "instance", "i1", "job", "node"),
			series(7777, "", "__name__", "up", "instance", "bonly", "job", "node"),
			series(7777, "trace-b-secret", "__name__", "http_requests_total", "code", "200", "job", "api"),
			series(7777, "", "__name__", "only_b_metric", "job", "ajob", "secret_b", "x"),
		},
	} {
		code, body, err := pushRW1(ctx, http.DefaultClient, recv.rwURL, tenant, ss)
		require.NoError(t, err)
		require.Less(t, code, 300, body)
	}

	// The samples are at now, in milliseconds; a query at the next second sees them.
	at := fmt.Sprint(now.Unix() + 1)
	get := func(token, path string, params url.Values) (int, string, http.Header) {
		t.Helper()
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, queryURL+path+"?"+params.Encode(), nil)
		require.NoError(t, err)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		defer func() { _ = resp.Body.Close() }()
		b, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		return resp.StatusCode, string(b), resp.Header
	}
	// The receiver's Info reaches the querier within its poll interval.
	for tenant, want := range map[string]int{"a": 3, "b": 4} {
		require.EventuallyWithT(t, func(c *assert.CollectT) {
			code, body, _ := get("e2e-token-"+tenant, "/api/v1/query", url.Values{"query": {`{__name__=~".+"}`}, "time": {at}})
			if assert.Equal(c, http.StatusOK, code, body) {
				var env struct {
					Data struct {
						Result []json.RawMessage `json:"result"`
					} `json:"data"`
				}
				assert.NoError(c, json.Unmarshal([]byte(body), &env))
				assert.Len(c, env.Data.Result, want, body)
			}
		}, time.Minute, 200*time.Millisecond)
	}

	q := func(query string) url.Values { return url.Values{"query": {query}, "time": {at}} }
	qr := func(query string) url.Values {
		return url.Values{"query": {query}, "start": {fmt.Sprint(now.Unix() + 1 - 60)}, "end": {at}, "step": {"15s"}}
	}
	window := url.Values{"start": {fmt.Sprint(now.Unix() - 3600)}, "end": {fmt.Sprint(now.Unix() + 60)}}
	with := func(v url.Values, kv ...string) url.Values {
		out := url.Values{}
		for k, vs := range v {
			out[k] = append([]string(nil), vs...)
		}
		for i := 0; i < len(kv); i += 2 {
			out.Add(kv[i], kv[i+1])
		}
		return out
	}
	requests := []struct {
		path   string
		params url.Values
		own    bool // the tenant's own data is in the answer
	}{
		{"/api/v1/query", q(`{tenant_id=~".+"}`), true},
		{"/api/v1/query", q(`{__name__=~".+",tenant_id!="a"}`), false},
		{"/api/v1/query", q(`up or {__name__=~".+"}`), true},
		{"/api/v1/query", q(`label_replace({__name__=~".+"}, "tenant_id", "x", "", "")`), false},
		{"/api/v1/query", q(`sum by (tenant_id) ({__name__=~".+"})`), true},
		{"/api/v1/query", q(`count by (__name__) ({__name__=~"only_.+"})`), true},
		{"/api/v1/query_range", qr(`{tenant_id=~".+"}`), true},
		{"/api/v1/query_range", qr(`up{tenant_id="a"} or up{tenant_id="b"} or {__name__=~"only_.+"}`), true},
		{"/api/v1/series", with(window, "match[]", `{tenant_id=~".+"}`), true},
		{"/api/v1/series", with(window, "match[]", `{__name__=~"only_.+"}`, "match[]", `up`), true},
		{"/api/v1/labels", window, false},
		{"/api/v1/label/__name__/values", window, true},
		{"/api/v1/label/tenant_id/values", with(window, "match[]", `{tenant_id=~".+"}`), false},
		{"/api/v1/label/instance/values", window, false},
		// The receiver stores the exemplars, but the Store API has no exemplar call yet, so the
		// querier answers none: this checks authentication and that nothing leaks, and the
		// querier's unit tests check exemplar confinement over an exemplar store.
		{"/api/v1/query_exemplars", with(window, "query", `{__name__=~".+",tenant_id=~".+"}`), false},
	}
	for _, tc := range []struct{ tenant, other string }{{"a", "b"}, {"b", "a"}} {
		for _, r := range requests {
			code, body, _ := get("e2e-token-"+tc.tenant, r.path, r.params)
			require.Equal(t, http.StatusOK, code, "%s %v: %s", r.path, r.params, body)
			for _, m := range tenancyMarkers[tc.other] {
				require.NotContains(t, body, m, "tenant %s got tenant %s's data from %s %v", tc.tenant, tc.other, r.path, r.params)
			}
			if r.own {
				require.True(t, slices.ContainsFunc(tenancyMarkers[tc.tenant], func(m string) bool { return strings.Contains(body, m) }),
					"tenant %s does not see its own data in %s %v: %s", tc.tenant, r.path, r.params, body)
			}
		}
		code, body, _ := get("e2e-token-"+tc.tenant, "/api/v1/label/tenant_id/values", window)
		require.Equal(t, http.StatusOK, code, body)
		require.JSONEq(t, fmt.Sprintf(`{"status":"success","data":[%q]}`, tc.tenant), body)
	}

	// Without a token, or with a's token and b's tenant header, nothing is answered.
	for _, r := range requests {
		code, body, h := get("", r.path, r.params)
		require.Equal(t, http.StatusUnauthorized, code, body)
		require.Contains(t, h.Get("WWW-Authenticate"), "Bearer")
		require.Contains(t, body, `"errorType":"unauthorized"`)
		for _, ms := range tenancyMarkers {
			for _, m := range ms {
				require.NotContains(t, body, m)
			}
		}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, queryURL+"/api/v1/query?"+q("up").Encode(), nil)
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer e2e-token-a")
	req.Header.Set("THANOS-TENANT", "b")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	_, _ = io.Copy(io.Discard, resp.Body)
	require.NoError(t, resp.Body.Close())
	require.Equal(t, http.StatusForbidden, resp.StatusCode)
}
