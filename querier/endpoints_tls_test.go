package querier_test

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"

	"github.com/stratametrics/strata/internal/testpki"
	"github.com/stratametrics/strata/querier"
	"github.com/stratametrics/strata/storeapi"
	"github.com/stratametrics/strata/storeapi/infopb"
	"github.com/stratametrics/strata/storeapi/storepb"
	"github.com/stratametrics/strata/tlsconfig"
)

func TestParseSDConfigTLS(t *testing.T) {
	p := testpki.New(t)
	cases := []struct {
		name    string
		in      string
		want    querier.SDConfig
		wantErr string
	}{
		{
			name: "per group",
			in: "- targets: [\"a:1\"]\n  tls_config:\n    ca_file: " + p.CAFile + "\n    cert_file: " + p.ClientCert +
				"\n    key_file: " + p.ClientKey + "\n    server_name: store.test\n" +
				"- targets: [\"b:2\"]\n  tls_config: {ca_file: " + p.WrongCAFile + ", insecure_skip_verify: true}\n" +
				"- targets: [\"c:3\"]\n",
			want: querier.SDConfig{
				{Targets: []string{"a:1"}, TLSConfig: &tlsconfig.ClientConfig{CAFile: p.CAFile, CertFile: p.ClientCert, KeyFile: p.ClientKey, ServerName: "store.test"}},
				{Targets: []string{"b:2"}, TLSConfig: &tlsconfig.ClientConfig{CAFile: p.WrongCAFile, InsecureSkipVerify: true}},
				{Targets: []string{"c:3"}},
			},
		},
		{
			name: "empty tls_config is TLS with the system roots",
			in:   "- targets: [\"a:1\"]\n  tls_config: {}\n",
			want: querier.SDConfig{{Targets: []string{"a:1"}, TLSConfig: &tlsconfig.ClientConfig{}}},
		},
		{name: "unknown tls field", in: "- targets: [\"a:1\"]\n  tls_config: {ca: x}\n", wantErr: "field ca not found"},
		{name: "server-side field", in: "- targets: [\"a:1\"]\n  tls_config: {client_ca_file: x}\n", wantErr: "field client_ca_file not found"},
		{name: "reload interval is not a field", in: "- targets: [\"a:1\"]\n  tls_config: {reloadinterval: 1s}\n", wantErr: "field reloadinterval not found"},
		{name: "cert without key", in: "- targets: [\"a:1\"]\n  tls_config: {cert_file: " + p.ClientCert + "}\n", wantErr: "group 0: tls_config: cert_file"},
		{name: "missing CA file", in: "- targets: [\"a:1\"]\n- targets: [\"b:1\"]\n  tls_config: {ca_file: " + filepath.Join(p.Dir, "nope.pem") + "}\n", wantErr: "group 1: tls_config: read CA file"},
		{name: "CA file is not PEM", in: "- targets: [\"a:1\"]\n  tls_config: {ca_file: " + p.Dir + "}\n", wantErr: "group 0: tls_config"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := querier.ParseSDConfig([]byte(c.in))
			if c.wantErr != "" {
				require.ErrorContains(t, err, c.wantErr)
				return
			}
			require.NoError(t, err)
			require.Equal(t, c.want, got)
		})
	}
}

// serveTLSStore serves an empty TSDB's Store API with external labels ext
// over TLS with cfg, until the test ends.
func serveTLSStore(t *testing.T, cfg tlsconfig.ServerConfig, ext labels.Labels) string {
	t.Helper()
	tc, err := tlsconfig.NewServerConfig(cfg, nil, nil)
	require.NoError(t, err)
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	srv := grpc.NewServer(grpc.Creds(credentials.NewTLS(tc)))
	s := storeapi.NewTSDBStore(openTSDB(t, nil), ext, "store", nil)
	storepb.RegisterStoreServer(srv, s)
	infopb.RegisterInfoServer(srv, s)
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(srv.Stop)
	return lis.Addr().String()
}

// health returns the health of every endpoint of set by address.
func health(set *querier.EndpointSet) map[string]bool {
	out := map[string]bool{}
	for _, e := range set.Endpoints() {
		out[e.Address] = e.Healthy
	}
	return out
}

func TestEndpointSetTLSPerGroup(t *testing.T) {
	// Two stores that each require a client certificate of their own CA.
	a, b := testpki.New(t), testpki.New(t)
	addrA := serveTLSStore(t, tlsconfig.ServerConfig{CertFile: a.ServerCert, KeyFile: a.ServerKey, ClientCAFile: a.CAFile}, labels.FromStrings("store", "a"))
	addrB := serveTLSStore(t, tlsconfig.ServerConfig{CertFile: b.ServerCert, KeyFile: b.ServerKey, ClientCAFile: b.CAFile}, labels.FromStrings("store", "b"))
	group := func(addr string, p *testpki.PKI) string {
		return "- targets: [\"" + addr + "\"]\n  tls_config: {ca_file: " + p.CAFile + ", cert_file: " + p.ClientCert + ", key_file: " + p.ClientKey + "}\n"
	}

	file := filepath.Join(t.TempDir(), "endpoints.yaml")
	write := func(content string) { require.NoError(t, os.WriteFile(file, []byte(content), 0o600)) }
	write(group(addrA, a) + group(addrB, b))
	set, err := querier.NewEndpointSet(querier.EndpointSetOptions{SDFile: file, InfoTimeout: 2 * time.Second}, nil, nil)
	require.NoError(t, err)
	defer func() { require.NoError(t, set.Close()) }()
	ctx := context.Background()

	require.NoError(t, set.Refresh(ctx))
	require.Equal(t, map[string]bool{addrA: true, addrB: true}, health(set), "each group dials with its own CA and client certificate")

	// Swapped, each store gets a client certificate of the other CA and
	// sees a server certificate its client does not trust: both connections
	// are redialed with the new configuration and refused.
	write(group(addrA, b) + group(addrB, a))
	require.NoError(t, set.Refresh(ctx))
	st := set.Endpoints()
	require.Len(t, st, 2)
	for _, e := range st {
		require.False(t, e.Healthy, e.Address)
		require.Error(t, e.LastError)
	}

	// Without a tls_config, and no default, the group dials plaintext, which
	// a TLS server refuses.
	write("- targets: [\"" + addrA + "\"]\n" + group(addrB, b))
	require.NoError(t, set.Refresh(ctx))
	require.Equal(t, map[string]bool{addrA: false, addrB: true}, health(set))
}

func TestEndpointSetTLSDefault(t *testing.T) {
	p := testpki.New(t)
	addr := serveTLSStore(t, tlsconfig.ServerConfig{CertFile: p.ServerCert, KeyFile: p.ServerKey, ClientCAFile: p.CAFile}, labels.FromStrings("store", "a"))
	file := filepath.Join(t.TempDir(), "endpoints.yaml")
	// A group without tls_config uses the set's default; one with its own
	// (here a client certificate of the wrong CA) does not.
	_, port, err := net.SplitHostPort(addr)
	require.NoError(t, err)
	localhost := net.JoinHostPort("localhost", port)
	require.NoError(t, os.WriteFile(file, []byte(strings.Join([]string{
		"- targets: [\"" + localhost + "\"]",
		"- targets: [\"" + addr + "\"]",
		"  tls_config: {ca_file: " + p.CAFile + ", cert_file: " + p.WrongClientCert + ", key_file: " + p.WrongClientKey + "}",
	}, "\n")), 0o600))

	cases := []struct {
		name string
		tls  *tlsconfig.ClientConfig
		// want is the health of the group without a tls_config; the one
		// with a client certificate of the wrong CA is always refused.
		want bool
	}{
		{name: "mutual TLS by default", tls: &tlsconfig.ClientConfig{CAFile: p.CAFile, CertFile: p.ClientCert, KeyFile: p.ClientKey}, want: true},
		{name: "no client certificate", tls: &tlsconfig.ClientConfig{CAFile: p.CAFile}},
		{name: "server certificate of an untrusted CA", tls: &tlsconfig.ClientConfig{CAFile: p.WrongCAFile, CertFile: p.ClientCert, KeyFile: p.ClientKey}},
		{name: "plaintext"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			set, err := querier.NewEndpointSet(querier.EndpointSetOptions{SDFile: file, InfoTimeout: 2 * time.Second, TLS: c.tls}, nil, nil)
			require.NoError(t, err)
			defer func() { require.NoError(t, set.Close()) }()
			require.NoError(t, set.Refresh(context.Background()))
			require.Equal(t, map[string]bool{localhost: c.want, addr: false}, health(set))
		})
	}
}

func TestNewEndpointSetTLSFilesChecked(t *testing.T) {
	_, err := querier.NewEndpointSet(querier.EndpointSetOptions{
		Endpoints: []string{"a:1"},
		TLS:       &tlsconfig.ClientConfig{CAFile: filepath.Join(t.TempDir(), "missing.pem")},
	}, nil, nil)
	require.ErrorContains(t, err, "endpoint tls")
}
