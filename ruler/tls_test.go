package ruler

import (
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/stretchr/testify/require"

	"github.com/stratametrics/strata/internal/testpki"
	"github.com/stratametrics/strata/tlsconfig"
)

// TestClientsTLS runs the ruler against a query API and a receiver that both
// require client certificates: the query client given in QueryHTTPClient and
// the remote write queues configured by RemoteWriteTLS present theirs.
func TestClientsTLS(t *testing.T) {
	p := testpki.New(t)
	serveMTLS := func(h http.Handler) string {
		cfg, err := tlsconfig.NewServerConfig(tlsconfig.ServerConfig{CertFile: p.ServerCert, KeyFile: p.ServerKey, ClientCAFile: p.CAFile}, nil, nil)
		require.NoError(t, err)
		srv := httptest.NewUnstartedServer(h)
		srv.TLS = cfg
		srv.StartTLS()
		t.Cleanup(srv.Close)
		return srv.URL
	}
	queryURL := serveMTLS(queryAPI(t, openTSDB(t)).Config.Handler)
	rc, _ := startReceiver(t, nil)
	recvURL := serveMTLS(rc) + "/api/v1/receive"

	clientCfg := tlsconfig.ClientConfig{CAFile: p.CAFile, CertFile: p.ClientCert, KeyFile: p.ClientKey}
	client, err := tlsconfig.NewClient(clientCfg, nil, nil)
	require.NoError(t, err)
	ruleFile := filepath.Join(t.TempDir(), "rules.yaml")
	writeFile(t, ruleFile, recordingRules)
	startRuler(t, Config{
		DataDir:         t.TempDir(),
		RuleFiles:       []string{ruleFile},
		EvalInterval:    time.Minute,
		QueryURLs:       []string{queryURL},
		QueryHTTPClient: &http.Client{Transport: &http.Transport{DialTLSContext: client.DialTLSContext}},
		RemoteWriteURLs: []string{recvURL},
		RemoteWriteTLS:  &clientCfg,
		ExternalLabels:  labels.FromStrings("ruler_replica", "a"),
		FlushDeadline:   time.Second,
	})
	require.Eventually(t, func() bool { return len(rc.find("job:up:sum")) > 0 }, time.Minute, 50*time.Millisecond)
	require.Equal(t, 3.0, rc.find("job:up:sum")[0].value, "evaluated over the TLS query API")
}

func TestPromTLSConfig(t *testing.T) {
	require.Zero(t, promTLSConfig(nil))
	got := promTLSConfig(&tlsconfig.ClientConfig{CAFile: "ca", CertFile: "c", KeyFile: "k", ServerName: "am.example", InsecureSkipVerify: true})
	require.Equal(t, "ca", got.CAFile)
	require.Equal(t, "c", got.CertFile)
	require.Equal(t, "k", got.KeyFile)
	require.Equal(t, "am.example", got.ServerName)
	require.True(t, got.InsecureSkipVerify)
}
