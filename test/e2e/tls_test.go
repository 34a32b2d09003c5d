package e2e

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/golang/snappy"
	"github.com/prometheus/prometheus/prompb"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"

	"github.com/stratametrics/strata/block"
	"github.com/stratametrics/strata/block/blocktest"
	"github.com/stratametrics/strata/internal/testpki"
	"github.com/stratametrics/strata/objstore"
	"github.com/stratametrics/strata/storeapi/storepb"
	"github.com/stratametrics/strata/tlsconfig"
)

// serverTLSArgs are the --<prefix>.tls-* flags of a server presenting the
// PKI's server certificate and requiring client certificates of its CA.
func serverTLSArgs(p *testpki.PKI, prefix string) []string {
	return []string{
		"--" + prefix + ".tls-cert=" + p.ServerCert,
		"--" + prefix + ".tls-key=" + p.ServerKey,
		"--" + prefix + ".tls-client-ca=" + p.CAFile,
	}
}

// clientTLSArgs are the --<prefix>.tls-* flags of a client trusting the PKI's
// CA and presenting the given certificate, none when cert is empty.
func clientTLSArgs(p *testpki.PKI, prefix, cert, key string) []string {
	args := []string{"--" + prefix + ".tls-ca=" + p.CAFile}
	if cert != "" {
		args = append(args, "--"+prefix+".tls-cert="+cert, "--"+prefix+".tls-key="+key)
	}
	return args
}

// httpsClient trusts the PKI's CA and presents its client certificate.
func httpsClient(t *testing.T, p *testpki.PKI) *http.Client {
	t.Helper()
	return &http.Client{Transport: &http.Transport{TLSClientConfig: clientTLSConfig(t, p)}}
}

func clientTLSConfig(t *testing.T, p *testpki.PKI) *tls.Config {
	t.Helper()
	pool := x509.NewCertPool()
	require.True(t, pool.AppendCertsFromPEM(p.CA.PEM))
	cert, err := tls.LoadX509KeyPair(p.ClientCert, p.ClientKey)
	require.NoError(t, err)
	return &tls.Config{RootCAs: pool, Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
}

// grpcStoreClient dials a Store API over mutual TLS with the PKI's client
// certificate.
func grpcStoreClient(t *testing.T, p *testpki.PKI, addr string) storepb.StoreClient {
	t.Helper()
	c, err := tlsconfig.NewClient(tlsconfig.ClientConfig{CAFile: p.CAFile, CertFile: p.ClientCert, KeyFile: p.ClientKey}, nil, nil)
	require.NoError(t, err)
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(c.TransportCredentials()))
	require.NoError(t, err)
	t.Cleanup(func() { _ = conn.Close() })
	return storepb.NewStoreClient(conn)
}

// queryAnswer is an instant query's answer: how many series, and the warnings.
type queryAnswer struct {
	series   int
	warnings []string
}

func queryWithWarnings(ctx context.Context, baseURL, expr string, at time.Time) (queryAnswer, error) {
	params := url.Values{"query": {expr}, "time": {strconv.FormatFloat(float64(at.UnixMilli())/1000, 'f', 3, 64)}}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, baseURL+"/api/v1/query?"+params.Encode(), nil)
	if err != nil {
		return queryAnswer{}, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return queryAnswer{}, err
	}
	defer func() { _ = resp.Body.Close() }()
	var body struct {
		Status string `json:"status"`
		Error  string `json:"error"`
		Data   struct {
			Result []json.RawMessage `json:"result"`
		} `json:"data"`
		Warnings []string `json:"warnings"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		return queryAnswer{}, err
	}
	if body.Status != "success" {
		return queryAnswer{}, fmt.Errorf("query %s: %d %s", expr, resp.StatusCode, body.Error)
	}
	return queryAnswer{series: len(body.Data.Result), warnings: body.Warnings}, nil
}

// pushSample pushes one sample of name{} at ts over client.
func pushSample(t *testing.T, client *http.Client, rwURL, name string, ts time.Time, v float64) (int, string) {
	t.Helper()
	code, body, err := pushRW1(context.Background(), client, rwURL, "", []prompb.TimeSeries{{
		Labels:  []prompb.Label{{Name: "__name__", Value: name}},
		Samples: []prompb.Sample{{Timestamp: ts.UnixMilli(), Value: v}},
	}})
	require.NoError(t, err)
	return code, body
}

// TestTLSQuerierToStoresMTLS runs a receiver and a store gateway that require
// client certificates on their Store API. Queriers with the right client
// certificate, given per group in an SD file or by flags for every endpoint,
// read both; a querier with a client certificate of another CA, or with none,
// reads nothing: both endpoints are unhealthy, and its answers say why.
func TestTLSQuerierToStoresMTLS(t *testing.T) {
	ctx := context.Background()
	p := testpki.New(t)

	// A receiver holding a pushed sample, its Store API behind mutual TLS.
	rcvGRPC := freeAddr(t)
	rcv := startReceive(t, t.TempDir(), append([]string{"--grpc-address=" + rcvGRPC}, serverTLSArgs(p, "grpc")...)...)
	now := time.Now()
	code, body := pushSample(t, http.DefaultClient, rcv.rwURL, "tls_e2e_pushed", now, 42)
	require.Equal(t, http.StatusNoContent, code, body)

	// A store gateway over a filesystem bucket with one block of three series.
	bucketDir := t.TempDir()
	bucketYAML := fmt.Sprintf("{type: FILESYSTEM, config: {directory: %q}}", bucketDir)
	bkt, err := objstore.NewBucket(ctx, []byte(bucketYAML), nil, nil)
	require.NoError(t, err)
	t.Cleanup(func() { _ = bkt.Close() })
	blockMint := now.Add(-3 * time.Hour).UnixMilli()
	blockDir := t.TempDir()
	id := blocktest.Create(t, blockDir, blockMint, blockMint+2*time.Hour.Milliseconds(), 3)
	meta, err := block.ReadMetaFromDir(filepath.Join(blockDir, id.String()))
	require.NoError(t, err)
	meta.Thanos.Labels = map[string]string{"tenant_id": "default-tenant", "source": "bucket"}
	meta.Thanos.Source = block.SourceTest
	require.NoError(t, block.Upload(ctx, nil, bkt, filepath.Join(blockDir, id.String()), meta))
	storeGRPC, storeHTTP := freeAddr(t), freeAddr(t)
	gw := startProcess(t, "strata store", strataBin, append([]string{"store",
		"--objstore.config=" + bucketYAML,
		"--data-dir=" + t.TempDir(),
		"--grpc-address=" + storeGRPC,
		"--http-address=" + storeHTTP,
		"--sync-block-duration=1s",
	}, serverTLSArgs(p, "grpc")...)...)
	waitHTTP(t, gw, "http://"+storeHTTP+"/-/ready", time.Minute)
	blockTime := time.UnixMilli(blockMint + time.Hour.Milliseconds())

	// Right: one SD group per store, each with its own tls_config (the store
	// verified by name, the receiver by IP address).
	_, storePort, _ := strings.Cut(storeGRPC, ":")
	sdFile := filepath.Join(t.TempDir(), "endpoints.yaml")
	require.NoError(t, os.WriteFile(sdFile, []byte(fmt.Sprintf(`
- targets: [%q]
  tls_config: {ca_file: %q, cert_file: %q, key_file: %q}
- targets: [%q]
  tls_config: {ca_file: %q, cert_file: %q, key_file: %q, server_name: localhost}
`, rcvGRPC, p.CAFile, p.ClientCert, p.ClientKey, "127.0.0.1:"+storePort, p.CAFile, p.ClientCert, p.ClientKey)), 0o600))
	good := map[string]string{
		"sd file groups": startQuerierArgs(t, "--endpoint.sd-config-file="+sdFile),
		"endpoint flags": startQuerierArgs(t, append([]string{"--endpoint=" + rcvGRPC, "--endpoint=" + storeGRPC},
			clientTLSArgs(p, "endpoint", p.ClientCert, p.ClientKey)...)...),
	}
	for name, q := range good {
		t.Run(name, func(t *testing.T) {
			require.EventuallyWithT(t, func(c *assert.CollectT) {
				a, err := queryWithWarnings(ctx, q, "tls_e2e_pushed", now)
				if assert.NoError(c, err) {
					assert.Equal(c, 1, a.series, "the receiver's sample")
					assert.Empty(c, a.warnings)
				}
				a, err = queryWithWarnings(ctx, q, "test_metric", blockTime)
				if assert.NoError(c, err) {
					assert.Equal(c, 3, a.series, "the bucket's series")
					assert.Empty(c, a.warnings)
				}
			}, time.Minute, 200*time.Millisecond)
			requireEndpointHealth(t, q, 2, 0)
		})
	}

	// Wrong: a client certificate of another CA, or none at all. Both
	// servers refuse the handshake.
	bad := map[string]string{
		"client certificate of another CA": startQuerierArgs(t, append([]string{"--endpoint=" + rcvGRPC, "--endpoint=" + storeGRPC},
			clientTLSArgs(p, "endpoint", p.WrongClientCert, p.WrongClientKey)...)...),
		"no client certificate": startQuerierArgs(t, append([]string{"--endpoint=" + rcvGRPC, "--endpoint=" + storeGRPC},
			clientTLSArgs(p, "endpoint", "", "")...)...),
		"plaintext": startQuerierArgs(t, "--endpoint="+rcvGRPC, "--endpoint="+storeGRPC),
	}
	for name, q := range bad {
		t.Run(name, func(t *testing.T) {
			requireEndpointHealth(t, q, 0, 2)
			for _, c := range []struct {
				expr string
				at   time.Time
			}{{"tls_e2e_pushed", now}, {"test_metric", blockTime}} {
				a, err := queryWithWarnings(ctx, q, c.expr, c.at)
				require.NoError(t, err, "partial responses are on: the answer is empty, with warnings")
				require.Zero(t, a.series, c.expr)
				require.Len(t, a.warnings, 2, "%s: one warning per endpoint: %v", c.expr, a.warnings)
				joined := strings.Join(a.warnings, "\n")
				for _, addr := range []string{rcvGRPC, storeGRPC} {
					require.Contains(t, joined, "endpoint "+addr+" is unhealthy")
				}
			}
		})
	}

	// The refusals are the servers' verdict on the client certificates:
	// checked directly, each server sends the matching TLS alert.
	wrongCert, err := tls.LoadX509KeyPair(p.WrongClientCert, p.WrongClientKey)
	require.NoError(t, err)
	for _, addr := range []string{rcvGRPC, storeGRPC} {
		cfg := clientTLSConfig(t, p)
		require.NoError(t, handshakeAndRead(addr, cfg), "%s accepts the right client certificate", addr)
		// GetClientCertificate sends the certificate even though it does not
		// chain to a CA the server names, as the querier's client does.
		cfg.Certificates = nil
		cfg.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &wrongCert, nil }
		require.ErrorContains(t, handshakeAndRead(addr, cfg), "remote error: tls: unknown certificate authority", addr)
		cfg.GetClientCertificate = nil
		require.ErrorContains(t, handshakeAndRead(addr, cfg), "remote error: tls: certificate required", addr)
	}
}

// handshakeAndRead completes a TLS handshake with addr as an HTTP/2 client
// and reads the server's first frame. With TLS 1.3 a server's refusal of the
// client certificate arrives as an alert on that read.
func handshakeAndRead(addr string, cfg *tls.Config) error {
	cfg = cfg.Clone()
	cfg.NextProtos = []string{"h2"}
	conn, err := tls.Dial("tcp", addr, cfg)
	if err != nil {
		return err
	}
	defer func() { _ = conn.Close() }()
	if err := conn.SetDeadline(time.Now().Add(10 * time.Second)); err != nil {
		return err
	}
	if _, err := conn.Write([]byte("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")); err != nil {
		return err
	}
	_, err = conn.Read(make([]byte, 1))
	return err
}

// requireEndpointHealth waits until the querier at baseURL counts healthy and
// unhealthy endpoints, after at least one Info round for each.
func requireEndpointHealth(t *testing.T, baseURL string, healthy, unhealthy float64) {
	t.Helper()
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		for health, want := range map[string]float64{"healthy": healthy, "unhealthy": unhealthy} {
			v, ok, err := metricValueWith(context.Background(), baseURL+"/metrics", "strata_querier_endpoints", `health="`+health+`"`)
			if assert.NoError(c, err) && assert.True(c, ok) {
				assert.Equal(c, want, v, health)
			}
		}
		errs, _, err := metricValueWith(context.Background(), baseURL+"/metrics", "strata_querier_endpoint_info_requests_total", "")
		if assert.NoError(c, err) {
			assert.GreaterOrEqual(c, errs, 2.0, "every endpoint was probed")
		}
	}, time.Minute, 200*time.Millisecond)
}

// TestTLSReplicatingReceiversMTLS runs two receivers, RF=2, that forward to
// each other over mutual TLS: a write to either is on both. Routers whose
// peer client certificate is signed by another CA, or that have none, cannot
// forward, and their writes fail with 503 (no quorum).
func TestTLSReplicatingReceiversMTLS(t *testing.T) {
	p := testpki.New(t)
	grpcAddrs := distinctFreeAddrs(t, 2)
	ring := filepath.Join(t.TempDir(), "hashrings.json")
	require.NoError(t, os.WriteFile(ring, []byte(fmt.Sprintf(`[{"endpoints": [%q, %q]}]`, grpcAddrs[0], grpcAddrs[1])), 0o600))

	startNode := func(name string, extra ...string) (rwURL string) {
		rw, httpAddr := freeAddr(t), freeAddr(t)
		args := append([]string{"receive",
			"--remote-write.address=" + rw,
			"--http-address=" + httpAddr,
			"--tsdb.path=" + t.TempDir(),
			"--cluster.node-name=" + name,
			"--receive.replication-factor=2",
			"--receive.hashrings-file=" + ring,
			"--receive.hashrings-file-refresh-interval=1s",
		}, extra...)
		proc := startProcess(t, "strata receive "+name, strataBin, args...)
		waitHTTP(t, proc, "http://"+httpAddr+"/-/ready", time.Minute)
		return "https://" + rw + "/api/v1/receive"
	}
	var nodeRW []string
	for i, addr := range grpcAddrs {
		args := []string{"--grpc-address=" + addr, "--receive.local-endpoint=" + addr}
		args = append(args, serverTLSArgs(p, "grpc")...)
		args = append(args, serverTLSArgs(p, "remote-write")...)
		args = append(args, clientTLSArgs(p, "receive.peer", p.ClientCert, p.ClientKey)...)
		nodeRW = append(nodeRW, startNode(fmt.Sprintf("node-%d", i), args...))
	}
	client := httpsClient(t, p)

	// A write to each node is acknowledged only once both hold it: with RF=2
	// the quorum is 2, so the other node must have taken the forward.
	now := time.Now()
	for i, rw := range nodeRW {
		require.EventuallyWithT(t, func(c *assert.CollectT) {
			code, body, err := pushRW1(context.Background(), client, rw, "", []prompb.TimeSeries{{
				Labels:  []prompb.Label{{Name: "__name__", Value: fmt.Sprintf("tls_e2e_replicated_%d", i)}},
				Samples: []prompb.Sample{{Timestamp: now.UnixMilli(), Value: float64(i)}},
			}})
			if assert.NoError(c, err) {
				assert.Equal(c, http.StatusNoContent, code, body)
			}
		}, 30*time.Second, 200*time.Millisecond, "write through node-%d", i)
	}
	for i, addr := range grpcAddrs {
		got := seriesSamplesMatching(t, grpcStoreClient(t, p, addr),
			&storepb.LabelMatcher{Type: storepb.LabelMatcher_RE, Name: "__name__", Value: "tls_e2e_replicated_.*"})
		require.Len(t, got, 2, "node-%d holds both written series: %v", i, got)
	}

	// Routers that place every series on the two nodes but cannot reach them.
	routers := map[string][]string{
		"peer client certificate of another CA": clientTLSArgs(p, "receive.peer", p.WrongClientCert, p.WrongClientKey),
		"no peer client certificate":            clientTLSArgs(p, "receive.peer", "", ""),
	}
	for name, peerArgs := range routers {
		t.Run(name, func(t *testing.T) {
			args := append([]string{"--receive.mode=router", "--grpc-address=" + freeAddr(t)}, serverTLSArgs(p, "remote-write")...)
			rw := startNode("router", append(args, peerArgs...)...)
			code, body := pushSample(t, client, rw, "tls_e2e_refused", time.Now(), 1)
			require.Equal(t, http.StatusServiceUnavailable, code, body)
			for i, addr := range grpcAddrs {
				got := seriesSamplesMatching(t, grpcStoreClient(t, p, addr),
					&storepb.LabelMatcher{Type: storepb.LabelMatcher_EQ, Name: "__name__", Value: "tls_e2e_refused"})
				require.Empty(t, got, "node-%d took a forward it should have refused", i)
			}
		})
	}
}

// TestTLSCertRotation replaces the certificate and key of a receiver's
// remote-write listener on disk: a new connection gets the new certificate,
// while a connection opened before keeps its certificate and keeps working,
// and the process is the same one.
func TestTLSCertRotation(t *testing.T) {
	p := testpki.New(t)
	rcv := startReceive(t, t.TempDir(), serverTLSArgs(p, "remote-write")...)
	u, err := url.Parse(rcv.rwURL)
	require.NoError(t, err)
	rwAddr := u.Host
	pid := rcv.cmd.Process.Pid
	cfg := clientTLSConfig(t, p)

	old, err := tls.Dial("tcp", rwAddr, cfg)
	require.NoError(t, err)
	defer func() { _ = old.Close() }()
	require.Equal(t, int64(testpki.ServerSerial), old.ConnectionState().PeerCertificates[0].SerialNumber.Int64())
	oldReader := bufio.NewReader(old)
	require.Equal(t, http.StatusNoContent, pushOn(t, old, oldReader, rwAddr, "tls_e2e_rotation", 1))

	const newSerial = testpki.ServerSerial + 1
	certPEM, keyPEM := p.CA.Issue(t, newSerial, true)
	testpki.WriteFile(t, p.ServerCert, certPEM)
	testpki.WriteFile(t, p.ServerKey, keyPEM)

	require.Eventually(t, func() bool {
		c, err := tls.Dial("tcp", rwAddr, cfg)
		if err != nil {
			return false
		}
		defer func() { _ = c.Close() }()
		return c.ConnectionState().PeerCertificates[0].SerialNumber.Int64() == newSerial
	}, 30*time.Second, 100*time.Millisecond, "a new connection gets the certificate with serial %d", newSerial)

	// The connection from before the rotation still has the old certificate
	// and still works.
	require.Equal(t, int64(testpki.ServerSerial), old.ConnectionState().PeerCertificates[0].SerialNumber.Int64())
	require.Equal(t, http.StatusNoContent, pushOn(t, old, oldReader, rwAddr, "tls_e2e_rotation", 2))

	select {
	case <-rcv.done:
		t.Fatalf("the receiver exited: %v", rcv.err)
	default:
	}
	require.Equal(t, pid, rcv.cmd.Process.Pid)
	reloads, ok, err := metricValueWith(context.Background(), rcv.httpURL+"/metrics", "strata_tls_reloads_total", `result="success"`)
	require.NoError(t, err)
	require.True(t, ok)
	require.GreaterOrEqual(t, reloads, 1.0)
}

// pushOn sends one remote-write request with one sample over an established
// HTTP/1.1 connection and returns the status code.
func pushOn(t *testing.T, conn io.Writer, r *bufio.Reader, host, name string, v float64) int {
	t.Helper()
	raw, err := (&prompb.WriteRequest{Timeseries: []prompb.TimeSeries{{
		Labels:  []prompb.Label{{Name: "__name__", Value: name}},
		Samples: []prompb.Sample{{Timestamp: time.Now().UnixMilli(), Value: v}},
	}}}).Marshal()
	require.NoError(t, err)
	req, err := http.NewRequest(http.MethodPost, "https://"+host+"/api/v1/receive", bytes.NewReader(snappy.Encode(nil, raw)))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/x-protobuf")
	req.Header.Set("Content-Encoding", "snappy")
	req.Header.Set("X-Prometheus-Remote-Write-Version", "0.1.0")
	require.NoError(t, req.Write(conn))
	resp, err := http.ReadResponse(r, req)
	require.NoError(t, err)
	_, _ = io.Copy(io.Discard, resp.Body)
	require.NoError(t, resp.Body.Close())
	return resp.StatusCode
}

// TestTLSPrometheusRemoteWriteMTLS has a real Prometheus remote-write its own
// metrics to a receiver over HTTPS with a client certificate, as an edge
// site pushing out to a central strata does.
func TestTLSPrometheusRemoteWriteMTLS(t *testing.T) {
	bin := requireBinary(t, "prometheus")
	p := testpki.New(t)
	grpcAddr := freeAddr(t)
	// The client certificate names the tenant: an edge site needs no token.
	tenants := filepath.Join(t.TempDir(), "tenants.yaml")
	require.NoError(t, os.WriteFile(tenants, []byte(fmt.Sprintf(
		"tenants:\n- name: edge-berlin\n  client_cert: {common_name: test-%d}\n", testpki.ClientSerial)), 0o600))
	rcv := startReceive(t, t.TempDir(), append([]string{"--grpc-address=" + grpcAddr, "--auth.tenants-file=" + tenants},
		append(serverTLSArgs(p, "remote-write"), serverTLSArgs(p, "grpc")...)...)...)
	rwURL := strings.Replace(rcv.rwURL, "http://", "https://", 1)

	promAddr := freeAddr(t)
	cfgFile := filepath.Join(t.TempDir(), "prometheus.yml")
	require.NoError(t, os.WriteFile(cfgFile, []byte(fmt.Sprintf(`
global:
  scrape_interval: 1s
scrape_configs:
  - job_name: prometheus
    static_configs: [{targets: [%q]}]
remote_write:
  - url: %s
    queue_config: {batch_send_deadline: 200ms, min_backoff: 50ms, max_backoff: 500ms}
    tls_config: {ca_file: %q, cert_file: %q, key_file: %q}
`, promAddr, rwURL, p.CAFile, p.ClientCert, p.ClientKey)), 0o600))
	prom := startProcess(t, "prometheus", bin,
		"--config.file="+cfgFile,
		"--storage.tsdb.path="+t.TempDir(),
		"--web.listen-address="+promAddr,
	)
	waitHTTP(t, prom, "http://"+promAddr+"/-/ready", time.Minute)

	store := grpcStoreClient(t, p, grpcAddr)
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		stream, err := store.Series(context.Background(), &storepb.SeriesRequest{
			MinTime:  0,
			MaxTime:  time.Now().Add(time.Minute).UnixMilli(),
			Matchers: []*storepb.LabelMatcher{{Type: storepb.LabelMatcher_EQ, Name: "__name__", Value: "prometheus_build_info"}},
		})
		if !assert.NoError(c, err) {
			return
		}
		n := 0
		for {
			resp, err := stream.Recv()
			if err == io.EOF {
				break
			}
			if !assert.NoError(c, err) {
				return
			}
			if s := resp.GetSeries(); s != nil {
				n++
				tenant := ""
				for _, l := range s.GetLabels() {
					if l.GetName() == "tenant_id" {
						tenant = l.GetValue()
					}
				}
				assert.Equal(c, "edge-berlin", tenant, "stored as the certificate's tenant")
			}
		}
		assert.Equal(c, 1, n, "prometheus_build_info arrived over HTTPS")
	}, time.Minute, 250*time.Millisecond)
	failed, _, err := metricValueWith(context.Background(), "http://"+promAddr+"/metrics", "prometheus_remote_storage_samples_failed_total", "")
	require.NoError(t, err)
	require.Zero(t, failed)
}
