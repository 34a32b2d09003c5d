package tlsconfig_test

import (
	"bytes"
	"crypto/tls"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/stratametrics/strata/internal/testpki"
)

// pki is the shared test PKI under the names these tests use.
type pki struct {
	dir                   string
	ca, otherCA           *testpki.CA
	caFile, otherCAFile   string
	serverCert, serverKey string
	clientCert, clientKey string
}

const (
	serverSerial = testpki.ServerSerial
	clientSerial = testpki.ClientSerial
)

func newPKI(t *testing.T) *pki {
	t.Helper()
	p := testpki.New(t)
	return &pki{
		dir: p.Dir, ca: p.CA, otherCA: p.Wrong, caFile: p.CAFile, otherCAFile: p.WrongCAFile,
		serverCert: p.ServerCert, serverKey: p.ServerKey, clientCert: p.ClientCert, clientKey: p.ClientKey,
	}
}

// writeAtomic replaces path the way careful tools do: a temp file in the
// same directory, renamed over it.
func writeAtomic(t *testing.T, path string, data []byte) { testpki.WriteFile(t, path, data) }

// writeInPlace truncates and rewrites path, as a naive tool would.
func writeInPlace(t *testing.T, path string, data []byte) {
	t.Helper()
	require.NoError(t, os.WriteFile(path, data, 0o600))
}

// serveHTTPS serves on a loopback port with cfg and answers every request
// with the serial of the client certificate, or "none". It returns the port.
func serveHTTPS(t *testing.T, cfg *tls.Config) string {
	t.Helper()
	port, _ := serveHTTPSLog(t, cfg)
	return port
}

// serveHTTPSLog is serveHTTPS that also returns the server's error log, where
// failed handshakes are reported.
func serveHTTPSLog(t *testing.T, cfg *tls.Config) (string, *logBuffer) {
	t.Helper()
	errLog := &logBuffer{}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	srv := &http.Server{
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          log.New(errLog, "", 0),
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if len(r.TLS.PeerCertificates) == 0 {
				_, _ = io.WriteString(w, "none")
				return
			}
			_, _ = io.WriteString(w, r.TLS.PeerCertificates[0].SerialNumber.String())
		}),
	}
	go func() { _ = srv.Serve(tls.NewListener(ln, cfg)) }()
	t.Cleanup(func() { _ = srv.Close() })
	_, port, err := net.SplitHostPort(ln.Addr().String())
	require.NoError(t, err)
	return port, errLog
}

func newHTTPClient(t *testing.T, cfg *tls.Config) *http.Client {
	t.Helper()
	tr := &http.Transport{TLSClientConfig: cfg}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 30 * time.Second}
}

// get fetches url and returns the serial of the server certificate and the
// client serial the server saw.
func get(c *http.Client, url string) (serverSerial, clientSerial string, err error) {
	resp, err := c.Get(url)
	if err != nil {
		return "", "", err
	}
	defer func() { _ = resp.Body.Close() }()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", "", err
	}
	if resp.StatusCode != http.StatusOK {
		return "", "", fmt.Errorf("status %d: %s", resp.StatusCode, body)
	}
	return resp.TLS.PeerCertificates[0].SerialNumber.String(), string(body), nil
}

// reloads returns strata_tls_reloads_total{result} from reg.
func reloads(t *testing.T, reg *prometheus.Registry, result string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	require.NoError(t, err)
	for _, mf := range mfs {
		if mf.GetName() != "strata_tls_reloads_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "result" && l.GetValue() == result {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	t.Fatalf("strata_tls_reloads_total{result=%q} not found", result)
	return 0
}

// logBuffer is a concurrency-safe log sink.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func newTestLogger() (*slog.Logger, *logBuffer) {
	b := &logBuffer{}
	return slog.New(slog.NewTextHandler(b, nil)), b
}

func countLines(s, substr string) int {
	n := 0
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, substr) {
			n++
		}
	}
	return n
}
