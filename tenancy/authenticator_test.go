package tenancy

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"io"
	"math/big"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
)

const testTenantsFile = `
tenants:
  - name: team-a
    tokens_sha256: ["{{token-a}}", "{{token-a2}}"]
    client_cert: {common_name: "edge-a"}
  - name: team-b
    tokens_sha256: ["{{token-b}}"]
    client_cert: {dns_san: "edge-b.example"}
  - name: team-c
    client_cert: {organization: "org-c"}
  - name: team-d
    client_cert: {uri_san: "spiffe://strata/d"}
  - name: team-e
    client_cert: {common_name: "shared"}
  - name: team-f
    client_cert: {organization: "shared-org"}
`

// renderTenants replaces {{token}} with HashToken(token).
func renderTenants(s string) string {
	for {
		i := strings.Index(s, "{{")
		if i < 0 {
			return s
		}
		j := strings.Index(s[i:], "}}")
		s = s[:i] + HashToken(s[i+2:i+j]) + s[i+j+2:]
	}
}

func writeTenants(t testing.TB, path, content string) {
	t.Helper()
	// Write and rename, as a careful operator or a config reloader does.
	tmp := path + ".tmp"
	require.NoError(t, os.WriteFile(tmp, []byte(renderTenants(content)), 0o600))
	require.NoError(t, os.Rename(tmp, path))
}

func newTestAuthenticator(t testing.TB, content string) (*Authenticator, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "tenants.yaml")
	writeTenants(t, path, content)
	a, err := NewAuthenticator(path, nil, nil)
	require.NoError(t, err)
	return a, path
}

type certKind int

const (
	noCert certKind = iota
	verifiedCert
	unverifiedCert // in PeerCertificates only
)

type authCase struct {
	name       string
	auth       []string // Authorization header values
	tenants    []string // tenant header values
	cert       *x509.Certificate
	certKind   certKind
	wantTenant string
	wantStatus int
	wantErr    string
}

func leaf(cn string, mod func(c *x509.Certificate)) *x509.Certificate {
	c := &x509.Certificate{Subject: pkix.Name{CommonName: cn}}
	if mod != nil {
		mod(c)
	}
	return c
}

func authCases() []authCase {
	certA := leaf("edge-a", nil)
	certB := leaf("whatever", func(c *x509.Certificate) { c.DNSNames = []string{"x.example", "edge-b.example"} })
	certC := leaf("c", func(c *x509.Certificate) { c.Subject.Organization = []string{"other", "org-c"} })
	certD := leaf("d", func(c *x509.Certificate) { c.URIs = []*url.URL{{Scheme: "spiffe", Host: "strata", Path: "/d"}} })
	certNone := leaf("nobody", nil)
	certShared := leaf("shared", func(c *x509.Certificate) { c.Subject.Organization = []string{"shared-org"} })
	return []authCase{
		{name: "token", auth: []string{"Bearer token-a"}, wantTenant: "team-a", wantStatus: 200},
		{name: "second token of the tenant", auth: []string{"Bearer token-a2"}, wantTenant: "team-a", wantStatus: 200},
		{name: "token, lowercase scheme, extra spaces", auth: []string{"bearer   token-a"}, wantTenant: "team-a", wantStatus: 200},
		{name: "token, header agrees", auth: []string{"Bearer token-a"}, tenants: []string{"team-a"}, wantTenant: "team-a", wantStatus: 200},
		{name: "token, empty header", auth: []string{"Bearer token-a"}, tenants: []string{""}, wantTenant: "team-a", wantStatus: 200},
		{name: "token, header disagrees", auth: []string{"Bearer token-a"}, tenants: []string{"team-b"}, wantStatus: 403, wantErr: `names tenant "team-b" but the credentials belong to tenant "team-a"`},
		{name: "token, default tenant header", auth: []string{"Bearer token-a"}, tenants: []string{"default-tenant"}, wantStatus: 403, wantErr: "default-tenant"},
		{name: "token, one of two headers disagrees", auth: []string{"Bearer token-a"}, tenants: []string{"team-a", "team-b"}, wantStatus: 403},
		{name: "token of another tenant than the header", auth: []string{"Bearer token-b"}, tenants: []string{"team-a"}, wantStatus: 403},
		{name: "header alone", tenants: []string{"team-a"}, wantStatus: 401, wantErr: "no credentials"},
		{name: "nothing", wantStatus: 401, wantErr: "no credentials"},
		{name: "unknown token", auth: []string{"Bearer token-x"}, wantStatus: 401, wantErr: "unknown bearer token"},
		{name: "unknown token, header", auth: []string{"Bearer token-x"}, tenants: []string{"team-a"}, wantStatus: 401},
		{name: "token hash as token", auth: []string{"Bearer " + HashToken("token-a")}, wantStatus: 401},
		{name: "token with trailing space", auth: []string{"Bearer token-a "}, wantStatus: 401},
		{name: "basic auth", auth: []string{"Basic dG9rZW4tYQ=="}, wantStatus: 401, wantErr: "Bearer <token>"},
		{name: "scheme only", auth: []string{"Bearer"}, wantStatus: 401},
		{name: "empty token", auth: []string{"Bearer "}, wantStatus: 401, wantErr: "empty bearer token"},
		{name: "bare token", auth: []string{"token-a"}, wantStatus: 401},
		{name: "two authorization headers", auth: []string{"Bearer token-a", "Bearer token-a"}, wantStatus: 401, wantErr: "2 Authorization headers"},
		{name: "cert by common name", cert: certA, certKind: verifiedCert, wantTenant: "team-a", wantStatus: 200},
		{name: "cert by DNS SAN", cert: certB, certKind: verifiedCert, wantTenant: "team-b", wantStatus: 200},
		{name: "cert by organization", cert: certC, certKind: verifiedCert, wantTenant: "team-c", wantStatus: 200},
		{name: "cert by URI SAN", cert: certD, certKind: verifiedCert, wantTenant: "team-d", wantStatus: 200},
		{name: "cert, header agrees", cert: certA, certKind: verifiedCert, tenants: []string{"team-a"}, wantTenant: "team-a", wantStatus: 200},
		{name: "cert, header disagrees", cert: certA, certKind: verifiedCert, tenants: []string{"team-b"}, wantStatus: 403},
		{name: "unverified cert", cert: certA, certKind: unverifiedCert, wantStatus: 401},
		{name: "unverified cert, header", cert: certA, certKind: unverifiedCert, tenants: []string{"team-a"}, wantStatus: 401},
		{name: "unverified cert of a, token of b", cert: certA, certKind: unverifiedCert, auth: []string{"Bearer token-b"}, wantTenant: "team-b", wantStatus: 200},
		{name: "token and cert agree", cert: certA, certKind: verifiedCert, auth: []string{"Bearer token-a"}, wantTenant: "team-a", wantStatus: 200},
		{name: "token and cert disagree", cert: certB, certKind: verifiedCert, auth: []string{"Bearer token-a"}, wantStatus: 403, wantErr: `bearer token belongs to tenant "team-a" but the client certificate to tenant "team-b"`},
		{name: "unknown token, known cert", cert: certA, certKind: verifiedCert, auth: []string{"Bearer token-x"}, wantStatus: 401},
		{name: "cert of no tenant", cert: certNone, certKind: verifiedCert, wantStatus: 401, wantErr: "belongs to no tenant"},
		{name: "cert of no tenant, token", cert: certNone, certKind: verifiedCert, auth: []string{"Bearer token-b"}, wantTenant: "team-b", wantStatus: 200},
		{name: "cert of several tenants", cert: certShared, certKind: verifiedCert, wantStatus: 403, wantErr: "several tenants"},
	}
}

func (c authCase) request(header string) *http.Request {
	r := httptest.NewRequest(http.MethodPost, "/api/v1/receive", nil)
	for _, v := range c.auth {
		r.Header.Add("Authorization", v)
	}
	for _, v := range c.tenants {
		r.Header.Add(header, v)
	}
	r.TLS = c.tlsState()
	return r
}

func (c authCase) tlsState() *tls.ConnectionState {
	switch c.certKind {
	case verifiedCert:
		ca := leaf("ca", nil)
		return &tls.ConnectionState{PeerCertificates: []*x509.Certificate{c.cert}, VerifiedChains: [][]*x509.Certificate{{c.cert, ca}}}
	case unverifiedCert:
		return &tls.ConnectionState{PeerCertificates: []*x509.Certificate{c.cert}}
	}
	return nil
}

func TestAuthenticate(t *testing.T) {
	a, _ := newTestAuthenticator(t, testTenantsFile)
	for _, header := range []string{DefaultTenantHeader, "X-Scope-OrgID"} {
		for _, tc := range authCases() {
			t.Run(header+"/"+tc.name, func(t *testing.T) {
				tenant, status, err := a.Authenticate(tc.request(header), header)
				require.Equal(t, tc.wantStatus, status, "err: %v", err)
				require.Equal(t, tc.wantTenant, tenant)
				if tc.wantStatus == 200 {
					require.NoError(t, err)
					return
				}
				require.Error(t, err)
				if tc.wantErr != "" {
					require.Contains(t, err.Error(), tc.wantErr)
				}
				for _, v := range tc.auth {
					if tok, ok := strings.CutPrefix(v, "Bearer "); ok && tok != "" {
						require.NotContains(t, err.Error(), tok, "the error repeats the token")
					}
				}
			})
		}
	}
}

func TestAuthenticateGRPC(t *testing.T) {
	a, _ := newTestAuthenticator(t, testTenantsFile)
	wantCode := map[int]codes.Code{200: codes.OK, 401: codes.Unauthenticated, 403: codes.PermissionDenied}
	for _, tc := range authCases() {
		t.Run(tc.name, func(t *testing.T) {
			md := metadata.MD{}
			for _, v := range tc.auth {
				md.Append("authorization", v)
			}
			for _, v := range tc.tenants {
				md.Append("thanos-tenant", v)
			}
			var p *peer.Peer
			if st := tc.tlsState(); st != nil {
				p = &peer.Peer{AuthInfo: credentials.TLSInfo{State: *st}}
			}
			tenant, code, err := a.AuthenticateGRPC(md, p, DefaultTenantHeader)
			require.Equal(t, wantCode[tc.wantStatus], code, "err: %v", err)
			require.Equal(t, tc.wantTenant, tenant)
			require.Equal(t, code, GRPCCode(err))
		})
	}
}

func TestMiddleware(t *testing.T) {
	a, _ := newTestAuthenticator(t, testTenantsFile)
	var seen struct {
		header []string
		ctx    string
		auth   string
	}
	h := a.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen.header = r.Header.Values(DefaultTenantHeader)
		seen.ctx, _ = TenantFromContext(r.Context())
		seen.auth = r.Header.Get("Authorization")
		w.WriteHeader(http.StatusNoContent)
	}), "")

	t.Run("header set from the credential", func(t *testing.T) {
		r := httptest.NewRequest(http.MethodPost, "/", nil)
		r.Header.Set("Authorization", "Bearer token-a")
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		require.Equal(t, http.StatusNoContent, w.Code)
		require.Equal(t, []string{"team-a"}, seen.header)
		require.Equal(t, "team-a", seen.ctx)
		require.Empty(t, r.Header.Values(DefaultTenantHeader), "the caller's request was modified")
	})
	t.Run("two agreeing headers collapse to one", func(t *testing.T) {
		r := httptest.NewRequest(http.MethodPost, "/", nil)
		r.Header.Set("Authorization", "Bearer token-b")
		r.Header.Add(DefaultTenantHeader, "team-b")
		r.Header.Add(DefaultTenantHeader, "")
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		require.Equal(t, http.StatusNoContent, w.Code)
		require.Equal(t, []string{"team-b"}, seen.header)
	})
	t.Run("401", func(t *testing.T) {
		seen.ctx = ""
		r := httptest.NewRequest(http.MethodPost, "/", nil)
		r.Header.Set(DefaultTenantHeader, "team-a")
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		require.Equal(t, http.StatusUnauthorized, w.Code)
		require.Contains(t, w.Header().Get("WWW-Authenticate"), "Bearer")
		require.Contains(t, w.Body.String(), "no credentials")
		require.Empty(t, seen.ctx, "next was called")
	})
	t.Run("403", func(t *testing.T) {
		r := httptest.NewRequest(http.MethodPost, "/", nil)
		r.Header.Set("Authorization", "Bearer token-a")
		r.Header.Set(DefaultTenantHeader, "team-b")
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		require.Equal(t, http.StatusForbidden, w.Code)
		require.Empty(t, w.Header().Get("WWW-Authenticate"))
		require.Contains(t, w.Body.String(), `"team-b"`)
		require.Contains(t, w.Body.String(), `"team-a"`)
	})
}

// TestMiddlewareTLS runs the middleware behind real TLS servers: one that
// verifies client certificates and one that asks for any certificate but
// does not verify it, where a certificate must count for nothing.
func TestMiddlewareTLS(t *testing.T) {
	a, _ := newTestAuthenticator(t, testTenantsFile)
	ca, caKey := newCA(t)
	goodA := newClientCert(t, "edge-a", ca, caKey)
	selfA := newClientCert(t, "edge-a", nil, nil) // self-signed, same name

	handler := a.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, r.Header.Get(DefaultTenantHeader))
	}), "")
	pool := x509.NewCertPool()
	pool.AddCert(ca)
	start := func(auth tls.ClientAuthType, pool *x509.CertPool) *httptest.Server {
		srv := httptest.NewUnstartedServer(handler)
		srv.TLS = &tls.Config{ClientAuth: auth, ClientCAs: pool, MinVersion: tls.VersionTLS12}
		srv.StartTLS()
		t.Cleanup(srv.Close)
		return srv
	}
	verifying := start(tls.VerifyClientCertIfGiven, pool)
	// Without ClientCAs the server names no acceptable CA, so the client
	// sends whatever certificate it has.
	unverifying := start(tls.RequireAnyClientCert, nil)

	do := func(srv *httptest.Server, cert *tls.Certificate, header string) (int, string) {
		tr := srv.Client().Transport.(*http.Transport).Clone()
		if cert != nil {
			tr.TLSClientConfig.Certificates = []tls.Certificate{*cert}
		}
		defer tr.CloseIdleConnections()
		req, err := http.NewRequest(http.MethodGet, srv.URL, nil)
		require.NoError(t, err)
		if header != "" {
			req.Header.Set(DefaultTenantHeader, header)
		}
		resp, err := (&http.Client{Transport: tr}).Do(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		return resp.StatusCode, string(b)
	}

	code, body := do(verifying, &goodA, "")
	require.Equal(t, http.StatusOK, code, body)
	require.Equal(t, "team-a", body)
	code, _ = do(verifying, &goodA, "team-b")
	require.Equal(t, http.StatusForbidden, code)
	code, _ = do(verifying, nil, "team-a")
	require.Equal(t, http.StatusUnauthorized, code)
	code, body = do(unverifying, &selfA, "team-a")
	require.Equal(t, http.StatusUnauthorized, code, body)
	code, _ = do(unverifying, &goodA, "")
	require.Equal(t, http.StatusUnauthorized, code, "a certificate the server did not verify was trusted")
}

func newCA(t *testing.T) (*x509.Certificate, *ecdsa.PrivateKey) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "test ca"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	require.NoError(t, err)
	c, err := x509.ParseCertificate(der)
	require.NoError(t, err)
	return c, key
}

// newClientCert issues a client certificate from ca, or a self-signed one if
// ca is nil.
func newClientCert(t *testing.T, cn string, ca *x509.Certificate, caKey *ecdsa.PrivateKey) tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2),
		Subject:      pkix.Name{CommonName: cn},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	parent, signer := tmpl, key
	if ca != nil {
		parent, signer = ca, caKey
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, &key.PublicKey, signer)
	require.NoError(t, err)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}
