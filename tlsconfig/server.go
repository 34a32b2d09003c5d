package tlsconfig

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// NewServerConfig returns the *tls.Config of a server, for http.Server,
// tls.NewListener or credentials.NewTLS. It requires TLS 1.2 or later and
// offers h2 and http/1.1 through ALPN. The returned config is never modified;
// the certificate, key and client CAs behind it are re-read when their files
// change (see the package documentation), and each new handshake uses the
// material current when it starts.
//
// Callers may adjust fields such as CipherSuites or NextProtos on the returned
// config before it is first used; every handshake starts from a clone of it.
// reg and logger may be nil.
func NewServerConfig(cfg ServerConfig, reg prometheus.Registerer, logger *slog.Logger) (*tls.Config, error) {
	if err := cfg.validateFields(); err != nil {
		return nil, err
	}
	m, err := newMetrics(reg)
	if err != nil {
		return nil, err
	}
	logger = orDiscard(logger)
	interval := cfg.reloadInterval()

	keyPair, err := newKeyPairSet(cfg.CertFile, cfg.KeyFile, interval, m, logger)
	if err != nil {
		return nil, err
	}
	var clientCAs *fileSet[x509.CertPool]
	clientAuth := tls.NoClientCert
	if cfg.ClientCAFile != "" {
		clientCAs, err = newCAPoolSet(cfg.ClientCAFile, interval, m, logger)
		if err != nil {
			return nil, err
		}
		clientAuth = tls.RequireAndVerifyClientCert
	}

	base := &tls.Config{
		MinVersion: tls.VersionTLS12,
		NextProtos: []string{"h2", "http/1.1"},
		ClientAuth: clientAuth,
	}
	// GetCertificate is only consulted by code that uses base directly
	// without GetConfigForClient; it is set so that such code, and checks
	// like http.Server's "has a certificate", see the rotating certificate.
	base.GetCertificate = func(*tls.ClientHelloInfo) (*tls.Certificate, error) {
		return keyPair.get(), nil
	}
	base.GetConfigForClient = func(*tls.ClientHelloInfo) (*tls.Config, error) {
		// A fresh clone per handshake: the tls package and wrappers such
		// as gRPC's may hold on to it, so it must not be shared or
		// changed later. Certificate and CAs are fixed for the whole
		// handshake.
		c := base.Clone()
		c.GetConfigForClient = nil
		c.GetCertificate = nil
		c.Certificates = []tls.Certificate{*keyPair.get()}
		if clientCAs != nil {
			c.ClientCAs = clientCAs.get()
		}
		return c, nil
	}
	return base, nil
}

func newKeyPairSet(certFile, keyFile string, interval time.Duration, m *metrics, logger *slog.Logger) (*fileSet[tls.Certificate], error) {
	return newFileSet([]string{certFile, keyFile}, func(data [][]byte) (*tls.Certificate, error) {
		return parseKeyPair(certFile, keyFile, data[0], data[1])
	}, interval, m, logger)
}

func newCAPoolSet(file string, interval time.Duration, m *metrics, logger *slog.Logger) (*fileSet[x509.CertPool], error) {
	set, err := newFileSet([]string{file}, func(data [][]byte) (*x509.CertPool, error) {
		return parseCAPool(file, data[0])
	}, interval, m, logger)
	if err != nil {
		return nil, fmt.Errorf("load CA: %w", err)
	}
	return set, nil
}
