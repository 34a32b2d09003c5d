package tlsconfig

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc/credentials"
)

// Client holds the TLS material of a client and hands out configurations that
// follow it as its files change. It is safe for concurrent use.
type Client struct {
	cfg     ClientConfig
	keyPair *fileSet[tls.Certificate] // nil without a client certificate.
	roots   *fileSet[x509.CertPool]   // nil means the system roots.
	base    *tls.Config
}

// NewClient loads the CA and client certificate named by cfg. reg and logger
// may be nil.
func NewClient(cfg ClientConfig, reg prometheus.Registerer, logger *slog.Logger) (*Client, error) {
	if err := cfg.validateFields(); err != nil {
		return nil, err
	}
	m, err := newMetrics(reg)
	if err != nil {
		return nil, err
	}
	logger = orDiscard(logger)
	interval := cfg.reloadInterval()

	c := &Client{cfg: cfg}
	if cfg.CertFile != "" {
		if c.keyPair, err = newKeyPairSet(cfg.CertFile, cfg.KeyFile, interval, m, logger); err != nil {
			return nil, err
		}
	}
	if cfg.CAFile != "" {
		if c.roots, err = newCAPoolSet(cfg.CAFile, interval, m, logger); err != nil {
			return nil, err
		}
	}
	c.base = c.newConfig("")
	return c, nil
}

// TLSConfig returns a config for http.Transport.TLSClientConfig and similar.
// The same object is returned on every call and is never modified. The server
// certificate is checked against ClientConfig.ServerName or, when that is
// empty, against the SNI name of the connection, which is the dialled host
// name; a server dialled by IP address without a ServerName fails with
// ErrNoServerName (use DialTLSContext or TransportCredentials for that).
// Because verification is done in VerifyConnection, the VerifiedChains of
// the connection state are empty.
func (c *Client) TLSConfig() *tls.Config {
	return c.base
}

// newConfig builds a client config that verifies the server against
// serverName, or against the SNI name when serverName is empty.
func (c *Client) newConfig(serverName string) *tls.Config {
	cfg := &tls.Config{
		MinVersion: tls.VersionTLS12,
		ServerName: serverName,
		// The tls package verifies against RootCAs, which cannot be
		// swapped on a shared config without a race; VerifyConnection
		// does the verification against the current pool instead.
		InsecureSkipVerify: true,
	}
	if c.cfg.ServerName != "" {
		cfg.ServerName = c.cfg.ServerName
	}
	if !c.cfg.InsecureSkipVerify {
		name := cfg.ServerName
		cfg.VerifyConnection = func(cs tls.ConnectionState) error {
			return c.verify(cs, name)
		}
	}
	if c.keyPair != nil {
		cfg.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
			return c.keyPair.get(), nil
		}
	}
	return cfg
}

func (c *Client) verify(cs tls.ConnectionState, name string) error {
	if name == "" {
		name = cs.ServerName
	}
	if name == "" {
		return ErrNoServerName
	}
	if len(cs.PeerCertificates) == 0 {
		return errors.New("verify server certificate: server sent no certificate")
	}
	opts := x509.VerifyOptions{
		DNSName:       name,
		Intermediates: x509.NewCertPool(),
	}
	if c.roots != nil {
		opts.Roots = c.roots.get()
	}
	for _, ic := range cs.PeerCertificates[1:] {
		opts.Intermediates.AddCert(ic)
	}
	if _, err := cs.PeerCertificates[0].Verify(opts); err != nil {
		return fmt.Errorf("verify server certificate for %q: %w", name, err)
	}
	return nil
}

// DialTLSContext dials addr and completes a TLS handshake, verifying the
// server against ClientConfig.ServerName or else the host part of addr (which
// may be an IP address). It fits http.Transport.DialTLSContext. It offers no
// ALPN protocol, so HTTP servers speak HTTP/1.1 on the connection, which is
// what http.Transport expects from a custom TLS dialer unless
// ForceAttemptHTTP2 is set.
func (c *Client) DialTLSContext(ctx context.Context, network, addr string) (net.Conn, error) {
	var d net.Dialer
	raw, err := d.DialContext(ctx, network, addr)
	if err != nil {
		return nil, err
	}
	conn := tls.Client(raw, c.newConfig(hostOf(addr)))
	if err := conn.HandshakeContext(ctx); err != nil {
		return nil, errors.Join(fmt.Errorf("tls handshake with %s: %w", addr, err), raw.Close())
	}
	return conn, nil
}

// TransportCredentials returns gRPC client credentials that verify the server
// against ClientConfig.ServerName or else the host of the target authority
// (which may be an IP address), and present the current client certificate.
// They cannot be used on a server; use credentials.NewTLS with
// NewServerConfig for that.
func (c *Client) TransportCredentials() credentials.TransportCredentials {
	return &transportCredentials{client: c}
}

func hostOf(addr string) string {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return addr
	}
	return host
}

// transportCredentials builds a gRPC TLS handshake per connection from the
// client's current material.
type transportCredentials struct {
	client *Client
	// serverName overrides the name from the authority; set only by the
	// deprecated OverrideServerName.
	serverName string
}

func (t *transportCredentials) ClientHandshake(ctx context.Context, authority string, raw net.Conn) (net.Conn, credentials.AuthInfo, error) {
	name := t.serverName
	if name == "" {
		name = hostOf(authority)
	}
	return credentials.NewTLS(t.client.newConfig(name)).ClientHandshake(ctx, authority, raw)
}

func (t *transportCredentials) ServerHandshake(net.Conn) (net.Conn, credentials.AuthInfo, error) {
	return nil, nil, errors.New("tlsconfig client credentials cannot be used by a server")
}

func (t *transportCredentials) Info() credentials.ProtocolInfo {
	return credentials.NewTLS(t.client.newConfig(t.serverName)).Info()
}

func (t *transportCredentials) Clone() credentials.TransportCredentials {
	c := *t
	return &c
}

func (t *transportCredentials) OverrideServerName(name string) error {
	t.serverName = name
	return nil
}
