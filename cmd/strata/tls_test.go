package main

import (
	"net/http"
	"path/filepath"
	"testing"

	"github.com/alecthomas/kingpin/v2"
	"github.com/stretchr/testify/require"

	"github.com/stratametrics/strata/internal/testpki"
	"github.com/stratametrics/strata/tlsconfig"
)

// TestTLSFlags checks that every command has its TLS flags, under the names
// the documentation gives.
func TestTLSFlags(t *testing.T) {
	p := testpki.New(t)
	server := func(prefix string) []string {
		return []string{"--" + prefix + ".tls-cert=" + p.ServerCert, "--" + prefix + ".tls-key=" + p.ServerKey, "--" + prefix + ".tls-client-ca=" + p.CAFile}
	}
	client := func(prefix string) []string {
		return []string{"--" + prefix + ".tls-ca=" + p.CAFile, "--" + prefix + ".tls-cert=" + p.ClientCert, "--" + prefix + ".tls-key=" + p.ClientKey,
			"--" + prefix + ".tls-server-name=store.test", "--" + prefix + ".tls-insecure-skip-verify"}
	}
	wantServer := tlsconfig.ServerConfig{CertFile: p.ServerCert, KeyFile: p.ServerKey, ClientCAFile: p.CAFile}
	wantClient := tlsconfig.ClientConfig{CAFile: p.CAFile, CertFile: p.ClientCert, KeyFile: p.ClientKey, ServerName: "store.test", InsecureSkipVerify: true}
	join := func(parts ...[]string) []string {
		var out []string
		for _, p := range parts {
			out = append(out, p...)
		}
		return out
	}

	rc, err := parseReceiveArgs(join(server("remote-write"), server("http"), server("grpc"), client("receive.peer")))
	require.NoError(t, err)
	for _, s := range []*serverTLS{rc.rwTLS, rc.httpTLS, rc.grpcTLS} {
		require.Equal(t, wantServer, *s.cfg, s.prefix)
	}
	require.Equal(t, wantClient, *rc.peerTLS)

	sc, err := parseStoreArgs(join(server("grpc"), server("http")))
	require.NoError(t, err)
	require.Equal(t, wantServer, *sc.grpcTLS.cfg)
	require.Equal(t, wantServer, *sc.httpTLS.cfg)

	cc, err := parseCompactArgs(server("http"))
	require.NoError(t, err)
	require.Equal(t, wantServer, *cc.httpTLS.cfg)

	ru, err := parseRuleArgs(join(server("http"), client("query"), client("endpoint"), client("alertmanagers"), client("remote-write")))
	require.NoError(t, err)
	require.Equal(t, wantServer, *ru.httpTLS.cfg)
	for _, c := range []*tlsconfig.ClientConfig{ru.queryTLS, ru.endpointTLS, ru.alertmanagersTLS, ru.remoteWriteTLS} {
		require.Equal(t, wantClient, *c)
	}

	app := kingpin.New("strata", "")
	name, _ := queryCommand(app)
	_, err = app.Parse(append([]string{name}, join(server("http"), client("endpoint"), client("rule"))...))
	require.NoError(t, err)

	// Without flags, everything stays plaintext.
	rc, err = parseReceiveArgs(nil)
	require.NoError(t, err)
	require.False(t, rc.grpcTLS.enabled())
	require.False(t, clientTLSEnabled(rc.peerTLS))
	opts, err := rc.grpcTLS.grpcOptions(nil, nil)
	require.NoError(t, err)
	require.Empty(t, opts)
}

func TestListenTLS(t *testing.T) {
	p := testpki.New(t)
	h := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusTeapot) })

	_, _, err := listenTLS("127.0.0.1:0", h, &serverTLS{prefix: "http", cfg: &tlsconfig.ServerConfig{
		CertFile: filepath.Join(p.Dir, "missing.pem"), KeyFile: p.ServerKey,
	}}, nil, nil)
	require.ErrorContains(t, err, "--http.tls-*")

	_, _, err = listenTLS("127.0.0.1:0", h, &serverTLS{prefix: "http", cfg: &tlsconfig.ServerConfig{ClientCAFile: p.CAFile}}, nil, nil)
	require.ErrorIs(t, err, tlsconfig.ErrNoCertificate)

	srv, lis, err := listenTLS("127.0.0.1:0", h, &serverTLS{prefix: "http", cfg: &tlsconfig.ServerConfig{CertFile: p.ServerCert, KeyFile: p.ServerKey}}, nil, nil)
	require.NoError(t, err)
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(func() { _ = srv.Close() })

	c, err := newHTTPClientTLS("rule", &tlsconfig.ClientConfig{CAFile: p.CAFile}, nil, nil)
	require.NoError(t, err)
	resp, err := c.Get("https://" + lis.Addr().String() + "/")
	require.NoError(t, err, "an IP address is verified against the certificate's IP SAN")
	require.NoError(t, resp.Body.Close())
	require.Equal(t, http.StatusTeapot, resp.StatusCode)

	c, err = newHTTPClientTLS("rule", &tlsconfig.ClientConfig{CAFile: p.WrongCAFile}, nil, nil)
	require.NoError(t, err)
	_, err = c.Get("https://" + lis.Addr().String() + "/")
	require.Error(t, err, "a server certificate of another CA is refused")

	resp, err = http.Get("http://" + lis.Addr().String() + "/")
	require.NoError(t, err)
	require.NoError(t, resp.Body.Close())
	require.Equal(t, http.StatusBadRequest, resp.StatusCode, "plaintext HTTP is not served")
}
