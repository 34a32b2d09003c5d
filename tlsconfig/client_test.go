package tlsconfig_test

import (
	"crypto/x509"
	"net/http"
	"strconv"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/stratametrics/strata/tlsconfig"
)

func TestClientCertificateRotation(t *testing.T) {
	for _, tc := range []struct {
		name  string
		write func(t *testing.T, path string, data []byte)
	}{
		{"atomic rename", writeAtomic},
		{"in-place overwrite", writeInPlace},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := newPKI(t)
			url := newServer(t, tlsconfig.ServerConfig{CertFile: p.serverCert, KeyFile: p.serverKey, ClientCAFile: p.caFile}, nil)
			reg := prometheus.NewRegistry()
			client, err := tlsconfig.NewClient(tlsconfig.ClientConfig{CAFile: p.caFile, CertFile: p.clientCert, KeyFile: p.clientKey, ReloadInterval: fastReload}, reg, nil)
			require.NoError(t, err)

			before := newHTTPClient(t, client.TLSConfig())
			_, cli, err := get(before, url)
			require.NoError(t, err)
			require.Equal(t, strconv.Itoa(clientSerial), cli)

			cert, key := p.ca.Issue(t, clientSerial+1, false)
			tc.write(t, p.clientCert, cert)
			tc.write(t, p.clientKey, key)

			_, cli, err = get(newHTTPClient(t, client.TLSConfig()), url)
			require.NoError(t, err)
			require.Equal(t, strconv.Itoa(clientSerial+1), cli)

			_, cli, err = get(before, url)
			require.NoError(t, err)
			require.Equal(t, strconv.Itoa(clientSerial), cli, "the old connection is reused")
			require.Equal(t, 1.0, reloads(t, reg, "success"))
		})
	}
}

func TestClientBrokenCertificateKeepsOld(t *testing.T) {
	p := newPKI(t)
	url := newServer(t, tlsconfig.ServerConfig{CertFile: p.serverCert, KeyFile: p.serverKey, ClientCAFile: p.caFile}, nil)
	reg := prometheus.NewRegistry()
	client, err := tlsconfig.NewClient(tlsconfig.ClientConfig{CAFile: p.caFile, CertFile: p.clientCert, KeyFile: p.clientKey, ReloadInterval: fastReload}, reg, nil)
	require.NoError(t, err)

	writeAtomic(t, p.clientKey, []byte("not a key"))
	_, cli, err := get(newHTTPClient(t, client.TLSConfig()), url)
	require.NoError(t, err)
	require.Equal(t, strconv.Itoa(clientSerial), cli)
	require.Equal(t, 1.0, reloads(t, reg, "failure"))
}

func TestClientCARotation(t *testing.T) {
	p := newPKI(t)
	clientCAFile := p.dir + "/client-side-ca.pem"
	writeAtomic(t, clientCAFile, p.ca.PEM)
	url := newServer(t, tlsconfig.ServerConfig{CertFile: p.serverCert, KeyFile: p.serverKey}, nil)
	client := newClient(t, tlsconfig.ClientConfig{CAFile: clientCAFile})

	before := newHTTPClient(t, client.TLSConfig())
	srv, _, err := get(before, url)
	require.NoError(t, err)
	require.Equal(t, strconv.Itoa(serverSerial), srv)

	// The server moves to a certificate from a new CA: the client refuses it.
	cert, key := p.otherCA.Issue(t, serverSerial+1, true)
	writeAtomic(t, p.serverCert, cert)
	writeAtomic(t, p.serverKey, key)
	_, _, err = get(newHTTPClient(t, client.TLSConfig()), url)
	var uae x509.UnknownAuthorityError
	require.ErrorAs(t, err, &uae)

	// Once the client's CA file has the new CA, it accepts it.
	writeAtomic(t, clientCAFile, p.otherCA.PEM)
	srv, _, err = get(newHTTPClient(t, client.TLSConfig()), url)
	require.NoError(t, err)
	require.Equal(t, strconv.Itoa(serverSerial+1), srv)

	srv, _, err = get(before, url)
	require.NoError(t, err)
	require.Equal(t, strconv.Itoa(serverSerial), srv, "the old connection is reused")
}

func TestClientServerName(t *testing.T) {
	p := newPKI(t)
	tc := newServerConfig(t, tlsconfig.ServerConfig{CertFile: p.serverCert, KeyFile: p.serverKey})
	port := serveHTTPS(t, tc)
	ipURL := "https://127.0.0.1:" + port

	for _, tc := range []struct {
		name      string
		cfg       tlsconfig.ClientConfig
		url       string
		dial      bool
		wantErrIs error
		wantErr   string
	}{
		{name: "SNI host name", cfg: tlsconfig.ClientConfig{CAFile: p.caFile}, url: "https://localhost:" + port},
		{name: "IP without server name", cfg: tlsconfig.ClientConfig{CAFile: p.caFile}, url: ipURL, wantErrIs: tlsconfig.ErrNoServerName},
		{name: "IP through DialTLSContext", cfg: tlsconfig.ClientConfig{CAFile: p.caFile}, url: ipURL, dial: true},
		{name: "IP with server name", cfg: tlsconfig.ClientConfig{CAFile: p.caFile, ServerName: "localhost"}, url: ipURL},
		{name: "wrong server name", cfg: tlsconfig.ClientConfig{CAFile: p.caFile, ServerName: "example.com"}, url: ipURL, wantErr: "certificate is valid for localhost, not example.com"},
		{name: "wrong server name through DialTLSContext", cfg: tlsconfig.ClientConfig{CAFile: p.caFile, ServerName: "example.com"}, url: ipURL, dial: true, wantErr: "not example.com"},
		{name: "insecure skip verify", cfg: tlsconfig.ClientConfig{CAFile: p.otherCAFile, InsecureSkipVerify: true}, url: ipURL},
		{name: "system roots", cfg: tlsconfig.ClientConfig{}, url: "https://localhost:" + port, wantErr: "x509: certificate signed by unknown authority"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			client := newClient(t, tc.cfg)
			var c *http.Client
			if tc.dial {
				tr := &http.Transport{DialTLSContext: client.DialTLSContext}
				t.Cleanup(tr.CloseIdleConnections)
				c = &http.Client{Transport: tr}
			} else {
				c = newHTTPClient(t, client.TLSConfig())
			}
			srv, _, err := get(c, tc.url)
			switch {
			case tc.wantErrIs != nil:
				require.ErrorIs(t, err, tc.wantErrIs)
			case tc.wantErr != "":
				require.ErrorContains(t, err, tc.wantErr)
			default:
				require.NoError(t, err)
				require.Equal(t, strconv.Itoa(serverSerial), srv)
			}
		})
	}
}
