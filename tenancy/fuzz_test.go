package tenancy

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/prometheus/prometheus/promql/parser"
	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"
)

func FuzzParseTenantsFile(f *testing.F) {
	for _, s := range []string{
		renderTenants(testTenantsFile),
		"tenants: []\n",
		"tenants:\n  - name: a\n",
		"tenants:\n  - name: a\n    tokens_sha256: [" + strings.ToUpper(HashToken("x")) + "]\n",
		"tenants:\n  - name: a\n    client_cert: {common_name: x, dns_san: y, uri_san: 'spiffe://z', organization: o}\n",
		"tenants:\n  - name: a/b\n",
		"tenants:\n  - name: a\n  - name: a\n",
		"tenants:\n  - name: a\n    tokens_sha256: [" + HashToken("x") + "]\n  - name: b\n    tokens_sha256: [" + HashToken("x") + "]\n",
		"tenants:\n  - {name: a, client_cert: {}}\n",
		"tenants: [\n",
		"tenants: []\n---\ntenants: []\n",
		"tenants: &x [*x]\n",
		"{tenants: [{name: a, tokens_sha256: [zz]}]}",
		"",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		cfg, err := Parse(b)
		if err != nil {
			require.Nil(t, cfg)
			require.ErrorIs(t, err, ErrInvalidConfig)
			return
		}
		require.NoError(t, cfg.Validate())
		snap, err := compile(cfg)
		require.NoError(t, err)
		for _, tn := range cfg.Tenants {
			require.NoError(t, validateTenantName(tn.Name))
		}
		// Every token hash maps to its own tenant and only to it.
		for _, tn := range cfg.Tenants {
			for _, h := range tn.TokensSHA256 {
				n := 0
				for _, e := range snap.tokens {
					if strings.EqualFold(hex.EncodeToString(e.hash[:]), h) {
						n++
						require.Equal(t, tn.Name, snap.tenants[e.tenant])
					}
				}
				require.Equal(t, 1, n)
			}
		}
		// An accepted file written back out is accepted again, unchanged.
		out, err := yaml.Marshal(cfg)
		require.NoError(t, err)
		again, err := Parse(out)
		require.NoError(t, err, string(out))
		require.Equal(t, len(cfg.Tenants), len(again.Tenants))
		for i := range cfg.Tenants {
			require.Equal(t, cfg.Tenants[i].Name, again.Tenants[i].Name)
			require.Equal(t, len(cfg.Tenants[i].TokensSHA256), len(again.Tenants[i].TokensSHA256))
			require.Equal(t, cfg.Tenants[i].ClientCert, again.Tenants[i].ClientCert)
		}
	})
}

func FuzzEnforceQuery(f *testing.F) {
	for _, tc := range enforceQueries {
		f.Add(tc.q)
	}
	for _, s := range []string{
		`label_replace({__name__=~".+"}, "tenant_id", "b", "tenant_id", ".*")`,
		`sum without (tenant_id) (x{tenant_id=""})`,
		`{"tenant_id"="b", "__name__"="x"}`,
		`x[5m] offset 1m`,
		`max_over_time(x[1h:5m] @ 1000 offset -1m)`,
		`foo{a="\u0000"} # comment`,
		`sum(rate({__name__=~"a|b"}[1m])) by (tenant_id) > 0`,
		`1 and 2`,
		`x{`,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, q string) {
		out, err := EnforceQuery(q, tenantLabel, "a")
		if err != nil {
			require.Empty(t, out)
			return
		}
		e, err := parser.NewParser(parser.Options{}).ParseExpr(out)
		require.NoError(t, err, "enforced %q into %q which does not parse", q, out)
		for _, vs := range selectors(t, e) {
			require.Truef(t, hasTenantMatcher(vs.LabelMatchers, tenantLabel, "a"), "enforced %q into %q: selector %s", q, out, vs)
		}
		// The input's selectors are all still there.
		orig := selectors(t, mustParse(t, q))
		require.Len(t, selectors(t, e), len(orig), "enforced %q into %q", q, out)
	})
}

// FuzzAuthenticateHeaders sends arbitrary Authorization and tenant header
// values, with or without a client certificate, and requires that a success
// names exactly the tenant the credential maps to.
func FuzzAuthenticateHeaders(f *testing.F) {
	a, _ := newTestAuthenticator(f, testTenantsFile)
	tokenTenants := map[string]string{"token-a": "team-a", "token-a2": "team-a", "token-b": "team-b"}
	certs := []struct {
		state  *tls.ConnectionState
		tenant string // of a verified certificate
	}{
		{state: nil},
		{state: authCase{cert: leaf("edge-a", nil), certKind: verifiedCert}.tlsState(), tenant: "team-a"},
		{state: authCase{cert: leaf("c", func(c *x509.Certificate) { c.Subject.Organization = []string{"org-c"} }), certKind: verifiedCert}.tlsState(), tenant: "team-c"},
		{state: authCase{cert: leaf("edge-a", nil), certKind: unverifiedCert}.tlsState()},
		{state: authCase{cert: leaf("nobody", nil), certKind: verifiedCert}.tlsState()},
	}
	for _, s := range []struct {
		auth, tenant string
		cert         uint8
	}{
		{"Bearer token-a", "", 0},
		{"Bearer token-a", "team-a", 0},
		{"Bearer token-a", "team-b", 0},
		{"bearer token-b", "team-b", 1},
		{"Bearer token-b", "", 3},
		{"", "team-a", 0},
		{"", "team-a", 1},
		{"", "", 2},
		{"", "team-a", 3},
		{"Bearer  token-a2", "team-a\x00", 0},
		{"Bearer token-a\r\n", "team-a", 0},
		{"Basic token-a", "", 1},
		{"BEARER token-a", "TEAM-A", 4},
		{"Bearer " + HashToken("token-a"), "", 0},
	} {
		f.Add(s.auth, s.tenant, s.cert)
	}
	f.Fuzz(func(t *testing.T, auth, tenantHeader string, certIdx uint8) {
		c := certs[int(certIdx)%len(certs)]
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		// Set the maps directly: a hostile client is not bound by what
		// net/http's client would send.
		if auth != "" {
			r.Header["Authorization"] = []string{auth}
		}
		if tenantHeader != "" {
			r.Header[http.CanonicalHeaderKey(DefaultTenantHeader)] = []string{tenantHeader}
		}
		r.TLS = c.state
		tenant, status, err := a.Authenticate(r, DefaultTenantHeader)
		if err != nil {
			require.Empty(t, tenant)
			require.Contains(t, []int{http.StatusUnauthorized, http.StatusForbidden}, status)
			return
		}
		require.Equal(t, http.StatusOK, status)
		// An independent reading of the credentials.
		want := c.tenant
		if scheme, tok, ok := strings.Cut(auth, " "); ok && strings.EqualFold(scheme, "bearer") {
			tok = strings.TrimLeft(tok, " ")
			tt, known := tokenTenants[tok]
			require.True(t, known, "unknown token %q accepted as %q", tok, tenant)
			require.True(t, want == "" || want == tt, "token of %q and certificate of %q accepted", tt, want)
			want = tt
		} else {
			require.Empty(t, auth, "Authorization %q accepted", auth)
		}
		require.NotEmpty(t, want, "no credential, yet tenant %q", tenant)
		require.Equal(t, want, tenant)
		require.True(t, tenantHeader == "" || tenantHeader == tenant, "header %q accepted for tenant %q", tenantHeader, tenant)
	})
}
