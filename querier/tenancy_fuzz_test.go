package querier_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/prometheus/tsdb"
	"github.com/stretchr/testify/require"

	"github.com/stratametrics/strata/querier"
	"github.com/stratametrics/strata/storeapi/storeapitest"
	"github.com/stratametrics/strata/tenancy"
)

// FuzzTenancyTenant resolves requests with any Authorization and tenant header values, with and
// without a tenants file, and checks the rules of Tenancy.Tenant: a request is given a tenant
// only if its credentials prove it (or, without authentication, the header or the default names
// it), a header naming another tenant is never accepted, and every tenant given is a valid name.
func FuzzTenancyTenant(f *testing.F) {
	for _, seed := range []struct{ auth, hdr, hdr2 string }{
		{"Bearer token-a", "", ""},
		{"Bearer token-a", "a", ""},
		{"Bearer token-a", "b", ""},
		{"bearer  token-b", "b", "b"},
		{"", "a", ""},
		{"", "a", "b"},
		{"", "../a", ""},
		{"Basic dG9rZW4tYQ==", "a", ""},
		{"Bearer", "", ""},
		{"Bearer token-a\x00", "", ""},
		{"", "", "a"},
		{"Bearer token-c", "a", "a"},
	} {
		f.Add(seed.auth, seed.hdr, seed.hdr2)
	}
	withAuth, err := querier.NewTenancy(querier.TenancyOptions{Authenticator: tenancyTestAuth(f)})
	require.NoError(f, err)
	withHeader, err := querier.NewTenancy(querier.TenancyOptions{})
	require.NoError(f, err)
	tokens := map[string]string{"token-a": "a", "token-b": "b"}

	f.Fuzz(func(t *testing.T, auth, hdr, hdr2 string) {
		req := httptest.NewRequest(http.MethodGet, "/api/v1/query", nil)
		if auth != "" {
			req.Header["Authorization"] = []string{auth}
		}
		var hdrs []string
		for _, h := range []string{hdr, hdr2} {
			if h != "" {
				hdrs = append(hdrs, h)
			}
		}
		if len(hdrs) > 0 {
			req.Header["Thanos-Tenant"] = hdrs
		}

		tenant, status, err := withAuth.Tenant(req)
		switch {
		case err == nil:
			require.Equal(t, http.StatusOK, status)
			// The token proves the tenant: the value after the scheme is its token.
			scheme, token, ok := strings.Cut(auth, " ")
			require.True(t, ok, "authenticated without a bearer token: %q", auth)
			require.True(t, strings.EqualFold(scheme, "bearer"))
			require.Equal(t, tenant, tokens[strings.TrimLeft(token, " ")], "auth %q", auth)
			for _, h := range hdrs {
				require.Equal(t, tenant, h, "accepted a header naming another tenant")
			}
		default:
			require.Contains(t, []int{http.StatusUnauthorized, http.StatusForbidden}, status, err.Error())
			require.Empty(t, tenant)
			require.NotContains(t, err.Error(), "token-")
		}

		tenant, status, err = withHeader.Tenant(req)
		switch {
		case err == nil:
			require.Equal(t, http.StatusOK, status)
			require.NoError(t, tenancy.ValidateTenant(tenant))
			if len(hdrs) == 0 {
				require.Equal(t, querier.DefaultTenantID, tenant)
			}
			for _, h := range hdrs {
				require.Equal(t, tenant, h)
			}
		default:
			require.Equal(t, http.StatusBadRequest, status)
			require.Empty(t, tenant)
		}
	})
}

// FuzzTenancyQuery evaluates any query as tenant a twice: over storage that holds tenants a and
// b, and over storage that holds tenant a's series only. Under tenancy b's data must make no
// difference to the answer, whatever the query does with matchers, or, label_replace,
// subqueries or @.
func FuzzTenancyQuery(f *testing.F) {
	for _, q := range []string{
		`up`,
		`{tenant_id=~".+"}`,
		`{tenant_id="b"}`,
		`up or {__name__=~".+"}`,
		`label_replace(up{tenant_id="b"}, "tenant_id", "a", "", "")`,
		`label_replace({__name__=~".+"}, "tenant_id", "b", "", "")`,
		`sum by (tenant_id) (up)`,
		`{__name__=~".+",tenant_id!="a"}`,
		`count({__name__=~".+"})`,
		`max_over_time(up[5m:1m] @ 1700000060)`,
		`rate(http_requests_total[1m] offset -30s)`,
		`absent(only_b_metric)`,
		`up * on(instance) group_left(secret_b) only_b_metric`,
		`sort_desc(topk(3, {job=~".+"}))`,
		`count_values("v", up)`,
		`up{tenant_id="a"} or on() vector(1)`,
		`scalar(sum(up))`,
	} {
		f.Add(q)
	}
	both := fuzzTenancyDB(f, true)
	onlyA := fuzzTenancyDB(f, false)
	ten, err := querier.NewTenancy(querier.TenancyOptions{})
	require.NoError(f, err)
	opts := querier.DefaultAPIOptions()
	opts.Tenancy = ten
	opts.Timeout = 10 * time.Second
	opts.MaxSamples = 100000
	newAPI := func(db *tsdb.DB) http.Handler {
		mux := http.NewServeMux()
		querier.NewAPI(db, opts, prometheus.NewRegistry(), nil).Register(mux)
		return mux
	}
	hBoth, hOnlyA := newAPI(both), newAPI(onlyA)

	f.Fuzz(func(t *testing.T, q string) {
		if len(q) > 256 {
			return
		}
		for _, path := range []string{
			"/api/v1/query?" + url.Values{"query": {q}, "time": {"1700000060"}}.Encode(),
			"/api/v1/query_range?" + url.Values{"query": {q}, "start": {"1700000000"}, "end": {"1700000060"}, "step": {"30s"}}.Encode(),
		} {
			codeBoth, bodyBoth := fuzzGet(hBoth, path)
			codeA, bodyA := fuzzGet(hOnlyA, path)
			if codeBoth == http.StatusServiceUnavailable || codeA == http.StatusServiceUnavailable {
				continue // a timeout, which depends on the machine
			}
			require.Equal(t, codeA, codeBoth, "query %q: %s", q, bodyBoth)
			require.Equal(t, bodyA, bodyBoth, "query %q: tenant b's data changed tenant a's answer", q)
		}
	})
}

// fuzzTenancyDB returns a TSDB whose series carry tenant_id, with tenant b's series if withB.
func fuzzTenancyDB(f *testing.F, withB bool) *tsdb.DB {
	f.Helper()
	db, err := tsdb.Open(f.TempDir(), nil, nil, tsdb.DefaultOptions(), nil)
	require.NoError(f, err)
	f.Cleanup(func() { require.NoError(f, db.Close()) })
	data := []storeapitest.Series{
		tenancySeries(1, "__name__", "up", "job", "node", "instance", "i1", "tenant_id", "a"),
		tenancySeries(10, "__name__", "http_requests_total", "job", "api", "code", "200", "tenant_id", "a"),
		tenancySeries(3, "__name__", "only_a_metric", "job", "ajob", "tenant_id", "a"),
	}
	if withB {
		data = append(data,
			tenancySeries(bValue, "__name__", "up", "job", "node", "instance", "i1", "tenant_id", "b"),
			tenancySeries(bValue, "__name__", "up", "job", "node", "instance", "bonly", "tenant_id", "b"),
			tenancySeries(bValue, "__name__", "http_requests_total", "job", "api", "code", "200", "tenant_id", "b"),
			tenancySeries(bValue, "__name__", "only_b_metric", "job", "ajob", "secret_b", "x", "tenant_id", "b"),
			// A series without any tenant: enforcement must not let it through either.
			tenancySeries(bValue, "__name__", "up", "job", "node", "instance", "untenanted"),
		)
	}
	app := db.AppenderV2(context.Background())
	require.NoError(f, storeapitest.AppendAll(app, data))
	require.NoError(f, app.Commit())
	return db
}

func fuzzGet(h http.Handler, target string) (int, string) {
	req := httptest.NewRequest(http.MethodGet, target, nil)
	req.Header.Set("Thanos-Tenant", "a")
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec.Code, rec.Body.String()
}
