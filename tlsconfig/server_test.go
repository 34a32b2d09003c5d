package tlsconfig_test

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/stratametrics/strata/tlsconfig"
)

// fastReload makes every handshake check the files, so tests need not wait.
const fastReload = time.Nanosecond

func newServer(t *testing.T, cfg tlsconfig.ServerConfig, reg prometheus.Registerer) string {
	t.Helper()
	return "https://localhost:" + serveHTTPS(t, newServerConfigReg(t, cfg, reg))
}

func newServerConfig(t *testing.T, cfg tlsconfig.ServerConfig) *tls.Config {
	t.Helper()
	return newServerConfigReg(t, cfg, nil)
}

func newServerConfigReg(t *testing.T, cfg tlsconfig.ServerConfig, reg prometheus.Registerer) *tls.Config {
	t.Helper()
	if cfg.ReloadInterval == 0 {
		cfg.ReloadInterval = fastReload
	}
	tc, err := tlsconfig.NewServerConfig(cfg, reg, nil)
	require.NoError(t, err)
	require.Equal(t, uint16(tls.VersionTLS12), tc.MinVersion)
	return tc
}

func newClient(t *testing.T, cfg tlsconfig.ClientConfig) *tlsconfig.Client {
	t.Helper()
	if cfg.ReloadInterval == 0 {
		cfg.ReloadInterval = fastReload
	}
	c, err := tlsconfig.NewClient(cfg, nil, nil)
	require.NoError(t, err)
	return c
}

func TestServerMutualTLS(t *testing.T) {
	p := newPKI(t)
	port, serverLog := serveHTTPSLog(t, newServerConfig(t, tlsconfig.ServerConfig{CertFile: p.serverCert, KeyFile: p.serverKey, ClientCAFile: p.caFile}))
	url := "https://localhost:" + port

	// serverRefused waits for the server to log why it refused a handshake;
	// the client may see the alert or only a reset connection.
	serverRefused := func(t *testing.T, reason string) {
		require.Eventually(t, func() bool {
			return strings.Contains(serverLog.String(), reason)
		}, 10*time.Second, time.Millisecond, serverLog.String())
	}

	strangerCert, strangerKey := p.otherCA.Issue(t, 999, false)
	strangerCertFile, strangerKeyFile := p.dir+"/stranger.crt", p.dir+"/stranger.key"
	writeAtomic(t, strangerCertFile, strangerCert)
	writeAtomic(t, strangerKeyFile, strangerKey)

	for _, tc := range []struct {
		name    string
		client  tlsconfig.ClientConfig
		wantErr func(t *testing.T, err error)
	}{
		{
			name:   "right CA and client certificate",
			client: tlsconfig.ClientConfig{CAFile: p.caFile, CertFile: p.clientCert, KeyFile: p.clientKey},
		},
		{
			name:   "wrong CA",
			client: tlsconfig.ClientConfig{CAFile: p.otherCAFile, CertFile: p.clientCert, KeyFile: p.clientKey},
			wantErr: func(t *testing.T, err error) {
				var uae x509.UnknownAuthorityError
				require.ErrorAs(t, err, &uae)
			},
		},
		{
			name:   "no client certificate",
			client: tlsconfig.ClientConfig{CAFile: p.caFile},
			wantErr: func(t *testing.T, _ error) {
				serverRefused(t, "tls: client didn't provide a certificate")
			},
		},
		{
			name:   "client certificate from another CA",
			client: tlsconfig.ClientConfig{CAFile: p.caFile, CertFile: strangerCertFile, KeyFile: strangerKeyFile},
			wantErr: func(t *testing.T, _ error) {
				serverRefused(t, "tls: failed to verify certificate: x509: certificate signed by unknown authority")
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := newHTTPClient(t, newClient(t, tc.client).TLSConfig())
			srv, cli, err := get(c, url)
			if tc.wantErr != nil {
				require.Error(t, err)
				tc.wantErr(t, err)
				return
			}
			require.NoError(t, err)
			require.Equal(t, strconv.Itoa(serverSerial), srv)
			require.Equal(t, strconv.Itoa(clientSerial), cli)
		})
	}
}

func TestServerWithoutClientCA(t *testing.T) {
	p := newPKI(t)
	url := newServer(t, tlsconfig.ServerConfig{CertFile: p.serverCert, KeyFile: p.serverKey}, nil)

	// The client has a certificate but is never asked for it.
	c := newHTTPClient(t, newClient(t, tlsconfig.ClientConfig{CAFile: p.caFile, CertFile: p.clientCert, KeyFile: p.clientKey}).TLSConfig())
	srv, cli, err := get(c, url)
	require.NoError(t, err)
	require.Equal(t, strconv.Itoa(serverSerial), srv)
	require.Equal(t, "none", cli)
}

func TestServerCertificateRotation(t *testing.T) {
	for _, tc := range []struct {
		name  string
		write func(t *testing.T, path string, data []byte)
	}{
		{"atomic rename", writeAtomic},
		{"in-place overwrite", writeInPlace},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := newPKI(t)
			reg := prometheus.NewRegistry()
			url := newServer(t, tlsconfig.ServerConfig{CertFile: p.serverCert, KeyFile: p.serverKey, ClientCAFile: p.caFile}, reg)
			client := newClient(t, tlsconfig.ClientConfig{CAFile: p.caFile, CertFile: p.clientCert, KeyFile: p.clientKey})

			before := newHTTPClient(t, client.TLSConfig())
			srv, _, err := get(before, url)
			require.NoError(t, err)
			require.Equal(t, strconv.Itoa(serverSerial), srv)

			cert, key := p.ca.Issue(t, serverSerial+1, true)
			tc.write(t, p.serverCert, cert)
			tc.write(t, p.serverKey, key)

			// A new connection gets the new certificate.
			srv, _, err = get(newHTTPClient(t, client.TLSConfig()), url)
			require.NoError(t, err)
			require.Equal(t, strconv.Itoa(serverSerial+1), srv)

			// The connection opened before is reused and still works.
			srv, _, err = get(before, url)
			require.NoError(t, err)
			require.Equal(t, strconv.Itoa(serverSerial), srv)

			require.Equal(t, 1.0, reloads(t, reg, "success"))
		})
	}
}

func TestServerHalfWrittenPairKeepsOld(t *testing.T) {
	p := newPKI(t)
	reg := prometheus.NewRegistry()
	url := newServer(t, tlsconfig.ServerConfig{CertFile: p.serverCert, KeyFile: p.serverKey}, reg)
	client := newClient(t, tlsconfig.ClientConfig{CAFile: p.caFile})

	cert, key := p.ca.Issue(t, serverSerial+1, true)
	// Only the certificate is written: the pair on disk does not match.
	writeInPlace(t, p.serverCert, cert)
	srv, _, err := get(newHTTPClient(t, client.TLSConfig()), url)
	require.NoError(t, err)
	require.Equal(t, strconv.Itoa(serverSerial), srv)
	require.Equal(t, 1.0, reloads(t, reg, "failure"))

	// A certificate cut off in the middle does not load either.
	writeInPlace(t, p.serverCert, cert[:len(cert)/2])
	writeInPlace(t, p.serverKey, key)
	srv, _, err = get(newHTTPClient(t, client.TLSConfig()), url)
	require.NoError(t, err)
	require.Equal(t, strconv.Itoa(serverSerial), srv)
	require.Equal(t, 2.0, reloads(t, reg, "failure"))

	writeInPlace(t, p.serverCert, cert)
	srv, _, err = get(newHTTPClient(t, client.TLSConfig()), url)
	require.NoError(t, err)
	require.Equal(t, strconv.Itoa(serverSerial+1), srv)
	require.Equal(t, 1.0, reloads(t, reg, "success"))
}

func TestServerBrokenKeyKeepsServing(t *testing.T) {
	p := newPKI(t)
	reg := prometheus.NewRegistry()
	logger, logs := newTestLogger()
	tc, err := tlsconfig.NewServerConfig(tlsconfig.ServerConfig{CertFile: p.serverCert, KeyFile: p.serverKey, ReloadInterval: fastReload}, reg, logger)
	require.NoError(t, err)
	url := "https://localhost:" + serveHTTPS(t, tc)
	client := newClient(t, tlsconfig.ClientConfig{CAFile: p.caFile})

	cert, _ := p.ca.Issue(t, serverSerial+1, true)
	writeAtomic(t, p.serverCert, cert)
	writeAtomic(t, p.serverKey, []byte("-----BEGIN PRIVATE KEY-----\ngarbage\n-----END PRIVATE KEY-----\n"))

	for range 3 {
		srv, _, err := get(newHTTPClient(t, client.TLSConfig()), url)
		require.NoError(t, err)
		require.Equal(t, strconv.Itoa(serverSerial), srv)
	}
	// Reported once, not on every handshake.
	require.Equal(t, 1.0, reloads(t, reg, "failure"))
	require.Equal(t, 0.0, reloads(t, reg, "success"))
	require.Equal(t, 1, countLines(logs.String(), "reload tls material"), logs.String())
	require.Contains(t, logs.String(), p.serverKey)
}

func TestServerClientCARotation(t *testing.T) {
	p := newPKI(t)
	clientCAFile := p.dir + "/client-ca.pem"
	writeAtomic(t, clientCAFile, p.ca.PEM)
	url := newServer(t, tlsconfig.ServerConfig{CertFile: p.serverCert, KeyFile: p.serverKey, ClientCAFile: clientCAFile}, nil)

	cert, key := p.otherCA.Issue(t, clientSerial+1, false)
	certFile, keyFile := p.dir+"/new-client.crt", p.dir+"/new-client.key"
	writeAtomic(t, certFile, cert)
	writeAtomic(t, keyFile, key)
	client := newClient(t, tlsconfig.ClientConfig{CAFile: p.caFile, CertFile: certFile, KeyFile: keyFile})

	_, _, err := get(newHTTPClient(t, client.TLSConfig()), url)
	require.ErrorContains(t, err, "unknown certificate authority")

	writeAtomic(t, clientCAFile, p.otherCA.PEM)
	_, cli, err := get(newHTTPClient(t, client.TLSConfig()), url)
	require.NoError(t, err)
	require.Equal(t, strconv.Itoa(clientSerial+1), cli)
}

func TestServerReloadInterval(t *testing.T) {
	p := newPKI(t)
	url := newServer(t, tlsconfig.ServerConfig{CertFile: p.serverCert, KeyFile: p.serverKey, ReloadInterval: 20 * time.Millisecond}, nil)
	client := newClient(t, tlsconfig.ClientConfig{CAFile: p.caFile})

	cert, key := p.ca.Issue(t, serverSerial+1, true)
	writeAtomic(t, p.serverCert, cert)
	writeAtomic(t, p.serverKey, key)

	require.Eventually(t, func() bool {
		srv, _, err := get(newHTTPClient(t, client.TLSConfig()), url)
		return err == nil && srv == strconv.Itoa(serverSerial+1)
	}, 10*time.Second, 10*time.Millisecond)
}

func TestServerConfigIsStable(t *testing.T) {
	p := newPKI(t)
	tc, err := tlsconfig.NewServerConfig(tlsconfig.ServerConfig{CertFile: p.serverCert, KeyFile: p.serverKey, ClientCAFile: p.caFile}, nil, nil)
	require.NoError(t, err)
	require.Equal(t, tls.RequireAndVerifyClientCert, tc.ClientAuth)
	require.NotNil(t, tc.GetConfigForClient)
	require.Empty(t, tc.Certificates, "certificates must come from the reloading hooks")

	// Two metrics-registering configurations can share one registry.
	reg := prometheus.NewRegistry()
	for range 2 {
		_, err := tlsconfig.NewServerConfig(tlsconfig.ServerConfig{CertFile: p.serverCert, KeyFile: p.serverKey}, reg, nil)
		require.NoError(t, err)
	}
	_, err = tlsconfig.NewServerConfig(tlsconfig.ServerConfig{}, nil, nil)
	require.True(t, errors.Is(err, tlsconfig.ErrNoCertificate), err)
}

// TestServerConcurrentRotation hammers a server with new connections while
// its pair is rewritten in place: every handshake must succeed with one of
// the pairs, never a torn one (and -race must stay quiet).
func TestServerConcurrentRotation(t *testing.T) {
	p := newPKI(t)
	url := newServer(t, tlsconfig.ServerConfig{CertFile: p.serverCert, KeyFile: p.serverKey}, nil)
	client := newClient(t, tlsconfig.ClientConfig{CAFile: p.caFile})

	const rotations = 20
	type pair struct{ cert, key []byte }
	pairs := make([]pair, rotations)
	valid := map[string]bool{strconv.Itoa(serverSerial): true}
	for i := range pairs {
		pairs[i].cert, pairs[i].key = p.ca.Issue(t, int64(serverSerial+1+i), true)
		valid[strconv.Itoa(serverSerial+1+i)] = true
	}

	stop := make(chan struct{})
	errs := make(chan error, 4)
	for range 4 {
		go func() {
			for {
				select {
				case <-stop:
					errs <- nil
					return
				default:
				}
				c := &http.Client{Transport: &http.Transport{TLSClientConfig: client.TLSConfig(), DisableKeepAlives: true}}
				srv, _, err := get(c, url)
				if err == nil && !valid[srv] {
					err = fmt.Errorf("unexpected serial %s", srv)
				}
				if err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	for _, pr := range pairs {
		writeInPlace(t, p.serverCert, pr.cert)
		writeInPlace(t, p.serverKey, pr.key)
	}
	close(stop)
	for range 4 {
		require.NoError(t, <-errs)
	}
	// After the last rotation settles, new connections get the last pair.
	srv, _, err := get(newHTTPClient(t, client.TLSConfig()), url)
	require.NoError(t, err)
	require.Equal(t, strconv.Itoa(serverSerial+rotations), srv)
}
