package main

import (
	"crypto/tls"
	"fmt"
	"log/slog"
	"net"
	"net/http"

	"github.com/alecthomas/kingpin/v2"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"

	"github.com/stratametrics/strata/tlsconfig"
)

// serverTLS is the TLS configuration of one server of a component, from its
// --<prefix>.tls-cert, --<prefix>.tls-key and --<prefix>.tls-client-ca flags.
// A nil *serverTLS, or one whose flags are all empty, serves plaintext, so
// configurations built without flags keep working. The certificate, key and
// client CA are re-read when their files change; see package tlsconfig.
type serverTLS struct {
	prefix string
	cfg    *tlsconfig.ServerConfig
}

// registerServerTLS registers the --<prefix>.tls-* server flags on cmd.
func registerServerTLS(cmd *kingpin.CmdClause, prefix string) *serverTLS {
	return &serverTLS{prefix: prefix, cfg: tlsconfig.RegisterServerFlags(cmd, prefix)}
}

func (s *serverTLS) enabled() bool { return s != nil && s.cfg != nil && s.cfg.Enabled() }

// config returns the server's *tls.Config, or nil when TLS is off.
func (s *serverTLS) config(reg prometheus.Registerer, logger *slog.Logger) (*tls.Config, error) {
	if !s.enabled() {
		return nil, nil
	}
	cfg, err := tlsconfig.NewServerConfig(*s.cfg, reg, tlsLogger(logger, s.prefix))
	if err != nil {
		return nil, fmt.Errorf("--%s.tls-*: %w", s.prefix, err)
	}
	return cfg, nil
}

// listener returns lis, wrapped to serve TLS when TLS is on. On error lis is
// left open; the caller owns it either way.
func (s *serverTLS) listener(lis net.Listener, reg prometheus.Registerer, logger *slog.Logger) (net.Listener, error) {
	cfg, err := s.config(reg, logger)
	if err != nil || cfg == nil {
		return lis, err
	}
	return tls.NewListener(lis, cfg), nil
}

// grpcOptions returns the gRPC server options that turn TLS on, or none.
func (s *serverTLS) grpcOptions(reg prometheus.Registerer, logger *slog.Logger) ([]grpc.ServerOption, error) {
	cfg, err := s.config(reg, logger)
	if err != nil || cfg == nil {
		return nil, err
	}
	return []grpc.ServerOption{grpc.Creds(credentials.NewTLS(cfg))}, nil
}

// scheme is the URL scheme clients reach the server with.
func (s *serverTLS) scheme() string {
	if s.enabled() {
		return "https"
	}
	return "http"
}

// listenTLS is listen with the listener wrapped by t.
func listenTLS(addr string, h http.Handler, t *serverTLS, reg prometheus.Registerer, logger *slog.Logger) (*http.Server, net.Listener, error) {
	srv, lis, err := listen(addr, h)
	if err != nil {
		return nil, nil, err
	}
	tlsLis, err := t.listener(lis, reg, logger)
	if err != nil {
		_ = lis.Close()
		return nil, nil, err
	}
	if t.enabled() && logger != nil {
		// Refused handshakes (a wrong or missing client certificate) are
		// logged by the server; keep them in the component's log.
		srv.ErrorLog = slog.NewLogLogger(logger.With("server", t.prefix).Handler(), slog.LevelInfo)
	}
	return srv, tlsLis, nil
}

// clientTLSEnabled reports whether any of the --<prefix>.tls-* client flags
// is set. Without them a client dials plaintext (gRPC) or follows the URL's
// scheme with the system roots (HTTP).
func clientTLSEnabled(c *tlsconfig.ClientConfig) bool {
	return c != nil && *c != (tlsconfig.ClientConfig{})
}

// clientTLSOrNil returns c when any of its flags is set, else nil.
func clientTLSOrNil(c *tlsconfig.ClientConfig) *tlsconfig.ClientConfig {
	if !clientTLSEnabled(c) {
		return nil
	}
	return c
}

// newGRPCClientTLS returns the dial options of a gRPC client configured by
// the --<prefix>.tls-* flags, or none when no flag is set. The server is
// verified against --<prefix>.tls-server-name or else the host that is
// dialled, which may be an IP address.
func newGRPCClientTLS(prefix string, c *tlsconfig.ClientConfig, reg prometheus.Registerer, logger *slog.Logger) ([]grpc.DialOption, error) {
	if !clientTLSEnabled(c) {
		return nil, nil
	}
	client, err := tlsconfig.NewClient(*c, reg, tlsLogger(logger, prefix))
	if err != nil {
		return nil, fmt.Errorf("--%s.tls-*: %w", prefix, err)
	}
	return []grpc.DialOption{grpc.WithTransportCredentials(client.TransportCredentials())}, nil
}

// newHTTPClientTLS returns an HTTP client whose https connections use the
// --<prefix>.tls-* flags, or nil when no flag is set (the caller's default
// client then applies). Servers dialled by IP address are verified against
// that address unless --<prefix>.tls-server-name is given.
func newHTTPClientTLS(prefix string, c *tlsconfig.ClientConfig, reg prometheus.Registerer, logger *slog.Logger) (*http.Client, error) {
	if !clientTLSEnabled(c) {
		return nil, nil
	}
	client, err := tlsconfig.NewClient(*c, reg, tlsLogger(logger, prefix))
	if err != nil {
		return nil, fmt.Errorf("--%s.tls-*: %w", prefix, err)
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	// DialTLSContext verifies per connection against the dialled host, so
	// that servers addressed by IP work; it negotiates HTTP/1.1.
	tr.DialTLSContext = client.DialTLSContext
	return &http.Client{Transport: tr}, nil
}

// tlsLogger names the TLS configuration (its flag prefix) in the logs of its
// reloads; a nil logger stays nil, which tlsconfig takes as "discard".
func tlsLogger(logger *slog.Logger, prefix string) *slog.Logger {
	if logger == nil {
		return nil
	}
	return logger.With("tls", prefix)
}
