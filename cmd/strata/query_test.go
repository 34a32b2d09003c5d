package main

import (
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/stratametrics/strata/tenancy"
)

// newTestQuery builds strata query from args, over an endpoint that is never polled: the tests
// here are about what happens before a request reaches the stores.
func newTestQuery(t *testing.T, args ...string) (*queryComponent, http.Handler) {
	t.Helper()
	c, err := parseQueryArgs(append([]string{"--endpoint=127.0.0.1:1"}, args...))
	require.NoError(t, err)
	reg := prometheus.NewRegistry()
	q, err := newQueryComponent(c, reg, slog.New(slog.DiscardHandler))
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, q.close()) })
	return q, q.httpMux(reg)
}

func writeTenantsFile(t *testing.T) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "tenants.yaml")
	content := fmt.Sprintf("tenants:\n  - name: team-a\n    tokens_sha256: [%q]\n  - name: team-b\n    tokens_sha256: [%q]\n",
		tenancy.HashToken("secret-a"), tenancy.HashToken("secret-b"))
	require.NoError(t, os.WriteFile(path, []byte(content), 0o600))
	return path
}

type testResponse struct {
	code   int
	header http.Header
	env    struct {
		Status    string          `json:"status"`
		ErrorType string          `json:"errorType"`
		Error     string          `json:"error"`
		Data      json.RawMessage `json:"data"`
	}
	body string
}

func doQueryRequest(t *testing.T, h http.Handler, target string, header http.Header) testResponse {
	t.Helper()
	req := httptest.NewRequest(http.MethodGet, target, nil)
	for k, vs := range header {
		for _, v := range vs {
			req.Header.Add(k, v)
		}
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	b, err := io.ReadAll(rec.Body)
	require.NoError(t, err)
	res := testResponse{code: rec.Code, header: rec.Header(), body: string(b)}
	if rec.Header().Get("Content-Type") == "application/json" {
		require.NoError(t, json.Unmarshal(b, &res.env), string(b))
	}
	return res
}

// absentUp asks for absent(up): with no data it answers one series labelled with the tenant
// the query was confined to, which shows which tenant a request was given.
var absentUp = "/api/v1/query?" + url.Values{"query": {"absent(up)"}}.Encode()

func TestQueryTenancyFlags(t *testing.T) {
	c, err := parseQueryArgs([]string{"--endpoint=s:10901"})
	require.NoError(t, err)
	require.False(t, c.tenancy.enforce)
	require.Equal(t, "THANOS-TENANT", c.tenancy.header)
	require.Equal(t, "default-tenant", c.tenancy.defaultTenant)
	require.Equal(t, "tenant_id", c.tenancy.labelName)
	require.Empty(t, c.tenancy.tenantsFile)
	require.Equal(t, 10*time.Second, c.tenancy.reloadInterval)
	ten, auth, err := c.tenancy.build(nil, nil)
	require.NoError(t, err)
	require.Nil(t, ten)
	require.Nil(t, auth)

	// Each wanted error, by the arguments that give it.
	for want, args := range map[string][]string{
		"tenant label":        {"--query.enforce-tenancy", "--query.tenant-label-name=__name__"},
		"default tenant":      {"--query.enforce-tenancy", "--query.default-tenant-id=../x"},
		"tenant header":       {"--query.enforce-tenancy", "--query.tenant-header=bad header"},
		"--auth.tenants-file": {"--auth.tenants-file=" + filepath.Join(t.TempDir(), "missing.yaml")},
	} {
		c, err := parseQueryArgs(append([]string{"--endpoint=s:10901"}, args...))
		require.NoError(t, err)
		_, err = newQueryComponent(c, prometheus.NewRegistry(), slog.New(slog.DiscardHandler))
		require.ErrorContains(t, err, want)
	}
}

// TestQueryEnforceTenancyWithoutAuth: the tenant header names the tenant, or the default tenant
// does, and nothing asks for credentials.
func TestQueryEnforceTenancyWithoutAuth(t *testing.T) {
	_, h := newTestQuery(t, "--query.enforce-tenancy", "--query.tenant-header=X-Scope", "--query.default-tenant-id=anyone")
	for _, tc := range []struct {
		header http.Header
		tenant string
	}{
		{nil, "anyone"},
		{http.Header{"X-Scope": {"team-b"}}, "team-b"},
		{http.Header{"Thanos-Tenant": {"team-b"}}, "anyone"}, // not the configured header
	} {
		res := doQueryRequest(t, h, absentUp, tc.header)
		require.Equal(t, http.StatusOK, res.code, res.body)
		require.Contains(t, string(res.env.Data), `{"tenant_id":"`+tc.tenant+`"}`)
	}
	res := doQueryRequest(t, h, absentUp, http.Header{"X-Scope": {"a/b"}})
	require.Equal(t, http.StatusBadRequest, res.code, res.body)
	require.Equal(t, "bad_data", res.env.ErrorType)

	// Without the flag nothing is confined: absent(up) has no tenant label.
	_, open := newTestQuery(t)
	res = doQueryRequest(t, open, absentUp, http.Header{"Thanos-Tenant": {"team-b"}})
	require.Equal(t, http.StatusOK, res.code, res.body)
	require.NotContains(t, string(res.env.Data), "tenant_id")
}

// TestQueryAuthentication is the table of credentials against the HTTP endpoints of strata query
// with --auth.tenants-file, which implies enforcement.
func TestQueryAuthentication(t *testing.T) {
	_, h := newTestQuery(t, "--auth.tenants-file="+writeTenantsFile(t))

	for _, tc := range []struct {
		name      string
		header    http.Header
		code      int
		errorType string
		tenant    string
	}{
		{"good token", http.Header{"Authorization": {"Bearer secret-a"}}, 200, "", "team-a"},
		{"good token of b", http.Header{"Authorization": {"Bearer secret-b"}}, 200, "", "team-b"},
		{"good token and matching header", http.Header{"Authorization": {"Bearer secret-a"}, "Thanos-Tenant": {"team-a"}}, 200, "", "team-a"},
		{"missing credential", nil, 401, "unauthorized", ""},
		{"unknown token", http.Header{"Authorization": {"Bearer secret-c"}}, 401, "unauthorized", ""},
		{"good token and another tenant's header", http.Header{"Authorization": {"Bearer secret-a"}, "Thanos-Tenant": {"team-b"}}, 403, "forbidden", ""},
		{"header only", http.Header{"Thanos-Tenant": {"team-a"}}, 401, "unauthorized", ""},
		{"malformed authorization", http.Header{"Authorization": {"Bearersecret-a"}}, 401, "unauthorized", ""},
		{"basic scheme", http.Header{"Authorization": {"Basic c2VjcmV0LWE="}}, 401, "unauthorized", ""},
		{"token hash instead of token", http.Header{"Authorization": {"Bearer " + tenancy.HashToken("secret-a")}}, 401, "unauthorized", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, target := range []string{absentUp, "/api/v1/labels", "/api/v1/series?match[]=up", "/api/v1/rules", "/api/v1/alerts", "/api/v1/status/flags"} {
				res := doQueryRequest(t, h, target, tc.header)
				require.Equal(t, tc.code, res.code, "%s: %s", target, res.body)
				require.Equal(t, "application/json", res.header.Get("Content-Type"), target)
				if tc.code != http.StatusOK {
					require.Equal(t, "error", res.env.Status, target)
					require.Equal(t, tc.errorType, res.env.ErrorType, target)
					require.NotEmpty(t, res.env.Error, target)
					require.NotContains(t, res.env.Error, "secret-", target)
					if tc.code == http.StatusUnauthorized {
						require.Equal(t, `Bearer realm="strata"`, res.header.Get("WWW-Authenticate"), target)
					} else {
						require.Empty(t, res.header.Get("WWW-Authenticate"), target)
					}
					continue
				}
				require.Equal(t, "success", res.env.Status, target)
				if target == absentUp {
					require.Contains(t, string(res.env.Data), `{"tenant_id":"`+tc.tenant+`"}`)
				}
			}
		})
	}

	// The operational endpoints stay open.
	for _, target := range []string{"/-/healthy", "/-/ready", "/metrics"} {
		res := doQueryRequest(t, h, target, nil)
		require.Equal(t, http.StatusOK, res.code, target)
	}
	res := doQueryRequest(t, h, "/metrics", nil)
	require.Contains(t, res.body, `strata_tenancy_authentications_total{result="forbidden"}`)
	require.Contains(t, res.body, `strata_querier_api_requests_total{code="401",handler="query"}`)
}
