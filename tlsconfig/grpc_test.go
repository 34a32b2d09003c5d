package tlsconfig_test

import (
	"context"
	"crypto/tls"
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"

	"github.com/stratametrics/strata/tlsconfig"
)

// serveGRPC serves the health service with cfg on a loopback port and puts
// the serial of the client certificate in the "client-serial" header.
func serveGRPC(t *testing.T, cfg *tls.Config) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	srv := grpc.NewServer(
		grpc.Creds(credentials.NewTLS(cfg)),
		grpc.UnaryInterceptor(func(ctx context.Context, req any, _ *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
			serial := "none"
			if p, ok := peer.FromContext(ctx); ok {
				if info, ok := p.AuthInfo.(credentials.TLSInfo); ok && len(info.State.PeerCertificates) > 0 {
					serial = info.State.PeerCertificates[0].SerialNumber.String()
				}
			}
			if err := grpc.SetHeader(ctx, metadata.Pairs("client-serial", serial)); err != nil {
				return nil, err
			}
			return handler(ctx, req)
		}),
	)
	healthpb.RegisterHealthServer(srv, health.NewServer())
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(srv.Stop)
	return ln.Addr().String()
}

func dialGRPC(t *testing.T, addr string, client *tlsconfig.Client) *grpc.ClientConn {
	t.Helper()
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(client.TransportCredentials()))
	require.NoError(t, err)
	t.Cleanup(func() { _ = conn.Close() })
	return conn
}

// check calls Health.Check and returns the serials of the server certificate
// and of the client certificate the server saw.
func check(conn *grpc.ClientConn) (serverSerial, clientSerial string, err error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var (
		p  peer.Peer
		md metadata.MD
	)
	resp, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{}, grpc.Peer(&p), grpc.Header(&md))
	if err != nil {
		return "", "", err
	}
	if resp.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		return "", "", status.Errorf(codes.Internal, "status %v", resp.GetStatus())
	}
	info := p.AuthInfo.(credentials.TLSInfo)
	return info.State.PeerCertificates[0].SerialNumber.String(), md.Get("client-serial")[0], nil
}

func TestGRPCMutualTLS(t *testing.T) {
	p := newPKI(t)
	addr := serveGRPC(t, newServerConfig(t, tlsconfig.ServerConfig{CertFile: p.serverCert, KeyFile: p.serverKey, ClientCAFile: p.caFile}))

	for _, tc := range []struct {
		name    string
		addr    string
		client  tlsconfig.ClientConfig
		refused bool
		// wantErr is checked when the client itself refuses; a refusal by
		// the server surfaces as whatever the transport saw first.
		wantErr string
	}{
		{name: "right CA by IP", addr: addr, client: tlsconfig.ClientConfig{CAFile: p.caFile, CertFile: p.clientCert, KeyFile: p.clientKey}},
		{name: "right CA by name", addr: "localhost:" + portOf(t, addr), client: tlsconfig.ClientConfig{CAFile: p.caFile, CertFile: p.clientCert, KeyFile: p.clientKey}},
		{name: "wrong CA", addr: addr, client: tlsconfig.ClientConfig{CAFile: p.otherCAFile, CertFile: p.clientCert, KeyFile: p.clientKey}, refused: true, wantErr: "x509: certificate signed by unknown authority"},
		{name: "wrong server name", addr: addr, client: tlsconfig.ClientConfig{CAFile: p.caFile, CertFile: p.clientCert, KeyFile: p.clientKey, ServerName: "example.com"}, refused: true, wantErr: "not example.com"},
		{name: "no client certificate", addr: addr, client: tlsconfig.ClientConfig{CAFile: p.caFile}, refused: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv, cli, err := check(dialGRPC(t, tc.addr, newClient(t, tc.client)))
			if tc.refused {
				require.Equal(t, codes.Unavailable, status.Code(err), err)
				if tc.wantErr != "" {
					require.ErrorContains(t, err, tc.wantErr)
				}
				return
			}
			require.NoError(t, err)
			require.Equal(t, strconv.Itoa(serverSerial), srv)
			require.Equal(t, strconv.Itoa(clientSerial), cli)
		})
	}
}

func TestGRPCRotation(t *testing.T) {
	p := newPKI(t)
	addr := serveGRPC(t, newServerConfig(t, tlsconfig.ServerConfig{CertFile: p.serverCert, KeyFile: p.serverKey, ClientCAFile: p.caFile}))
	client := newClient(t, tlsconfig.ClientConfig{CAFile: p.caFile, CertFile: p.clientCert, KeyFile: p.clientKey})

	before := dialGRPC(t, addr, client)
	srv, cli, err := check(before)
	require.NoError(t, err)
	require.Equal(t, strconv.Itoa(serverSerial), srv)
	require.Equal(t, strconv.Itoa(clientSerial), cli)

	cert, key := p.ca.Issue(t, serverSerial+1, true)
	writeAtomic(t, p.serverCert, cert)
	writeAtomic(t, p.serverKey, key)
	cert, key = p.ca.Issue(t, clientSerial+1, false)
	writeInPlace(t, p.clientCert, cert)
	writeInPlace(t, p.clientKey, key)

	srv, cli, err = check(dialGRPC(t, addr, client))
	require.NoError(t, err)
	require.Equal(t, strconv.Itoa(serverSerial+1), srv)
	require.Equal(t, strconv.Itoa(clientSerial+1), cli)

	srv, cli, err = check(before)
	require.NoError(t, err)
	require.Equal(t, strconv.Itoa(serverSerial), srv, "the old connection keeps working")
	require.Equal(t, strconv.Itoa(clientSerial), cli)
}

func TestGRPCCredentialsAreClientOnly(t *testing.T) {
	creds := newClient(t, tlsconfig.ClientConfig{}).TransportCredentials()
	require.Equal(t, "tls", creds.Info().SecurityProtocol)
	_, _, err := creds.Clone().ServerHandshake(nil)
	require.Error(t, err)
}

func portOf(t *testing.T, addr string) string {
	t.Helper()
	_, port, err := net.SplitHostPort(addr)
	require.NoError(t, err)
	return port
}
