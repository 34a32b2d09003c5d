package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/golang/snappy"
	"github.com/prometheus/prometheus/prompb"
	"github.com/stretchr/testify/require"

	"github.com/stratametrics/strata/tenancy"
)

// pushAuth sends one Remote Write 1.0 request with a bearer token (none if
// empty) and a tenant header (none if empty).
func pushAuth(t *testing.T, url, token, tenant string, series []prompb.TimeSeries) (int, http.Header, string) {
	t.Helper()
	raw, err := (&prompb.WriteRequest{Timeseries: series}).Marshal()
	require.NoError(t, err)
	req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(snappy.Encode(nil, raw)))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/x-protobuf")
	req.Header.Set("Content-Encoding", "snappy")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if tenant != "" {
		req.Header.Set("THANOS-TENANT", tenant)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer func() { _ = resp.Body.Close() }()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, resp.Header, string(body)
}

func limitsSeries(from, n int, ts int64) []prompb.TimeSeries {
	out := make([]prompb.TimeSeries, n)
	for i := range out {
		out[i] = prompb.TimeSeries{
			Labels:  []prompb.Label{{Name: "__name__", Value: "e2e_limits"}, {Name: "i", Value: strconv.Itoa(from + i)}},
			Samples: []prompb.Sample{{Value: 1, Timestamp: ts}},
		}
	}
	return out
}

type tenantsAnswer struct {
	Status string `json:"status"`
	Data   []struct {
		Tenant           string            `json:"tenant"`
		Requests         uint64            `json:"requests"`
		SamplesReceived  uint64            `json:"samples_received"`
		BytesReceived    uint64            `json:"bytes_received"`
		SamplesDiscarded map[string]uint64 `json:"samples_discarded"`
		ActiveSeries     int               `json:"active_series"`
		Limits           map[string]any    `json:"limits"`
	} `json:"data"`
}

func getTenants(t *testing.T, httpURL string) tenantsAnswer {
	t.Helper()
	resp, err := http.Get(httpURL + "/api/v1/tenants")
	require.NoError(t, err)
	defer func() { _ = resp.Body.Close() }()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	var a tenantsAnswer
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&a))
	return a
}

// TestReceiveAuthLimitsAndUsage runs strata receive with a tenants file and a
// limits file: writes authenticate, limits answer with their codes, a
// rewritten limits file applies without a restart, and a real Prometheus with
// a bearer token writes as its tenant while one with a wrong token is refused.
func TestReceiveAuthLimitsAndUsage(t *testing.T) {
	dir := t.TempDir()
	tenantsFile := filepath.Join(dir, "tenants.yaml")
	require.NoError(t, os.WriteFile(tenantsFile, []byte(fmt.Sprintf(`tenants:
- name: team-a
  tokens_sha256: [%s]
- name: team-b
  tokens_sha256: [%s]
`, tenancy.HashToken("token-a"), tenancy.HashToken("token-b"))), 0o600))
	limitsFile := filepath.Join(dir, "limits.yaml")
	writeLimits := func(content string) {
		// Written aside and renamed, so that the receiver never reads half a file.
		tmp := limitsFile + ".tmp"
		require.NoError(t, os.WriteFile(tmp, []byte(content), 0o600))
		require.NoError(t, os.Rename(tmp, limitsFile))
	}
	writeLimits(`
defaults: {max_labels_per_series: 5}
tenants:
  team-b: {max_active_series: 3, ingestion_rate: 100, ingestion_burst: 100}
`)
	r := startReceive(t, filepath.Join(dir, "tsdb"),
		"--auth.tenants-file="+tenantsFile,
		"--limits.config-file="+limitsFile,
		"--limits.reload-interval=200ms",
	)
	ts := time.Now().UnixMilli()

	// Authentication.
	code, hdr, body := pushAuth(t, r.rwURL, "", "team-a", limitsSeries(0, 1, ts))
	require.Equal(t, http.StatusUnauthorized, code, body)
	require.Contains(t, hdr.Get("WWW-Authenticate"), "Bearer")
	code, _, body = pushAuth(t, r.rwURL, "token-a", "team-b", limitsSeries(0, 1, ts))
	require.Equal(t, http.StatusForbidden, code, body)
	code, _, body = pushAuth(t, r.rwURL, "token-a", "", limitsSeries(0, 10, ts))
	require.Equal(t, http.StatusNoContent, code, body)

	// Labels: 400 naming the limit; the good series of the request is written.
	bad := prompb.TimeSeries{Labels: []prompb.Label{{Name: "__name__", Value: "e2e_limits"}, {Name: "a", Value: "1"}, {Name: "b", Value: "2"}, {Name: "c", Value: "3"}, {Name: "d", Value: "4"}, {Name: "e", Value: "5"}},
		Samples: []prompb.Sample{{Value: 1, Timestamp: ts}}}
	code, _, body = pushAuth(t, r.rwURL, "token-a", "team-a", append(limitsSeries(10, 1, ts), bad))
	require.Equal(t, http.StatusBadRequest, code, body)
	require.Contains(t, body, "max_labels_per_series=5")

	// Active series and rate: 429 with Retry-After.
	code, hdr, body = pushAuth(t, r.rwURL, "token-b", "", limitsSeries(0, 5, ts))
	require.Equal(t, http.StatusTooManyRequests, code, body)
	require.Contains(t, body, "max_active_series=3")
	require.Equal(t, "60", hdr.Get("Retry-After"))
	// The 3 series held take samples; 11 samples are within the burst.
	code, _, body = pushAuth(t, r.rwURL, "token-b", "", limitsSeries(0, 3, ts+1))
	require.Equal(t, http.StatusNoContent, code, body)
	code, _, body = pushAuth(t, r.rwURL, "token-b", "", limitsSeries(0, 3, ts+2))
	require.Equal(t, http.StatusNoContent, code, body)
	big := append(limitsSeries(0, 3, ts+3), limitsSeries(0, 3, ts+4)...)
	for range 5 {
		big = append(big, big...)
	}
	code, hdr, body = pushAuth(t, r.rwURL, "token-b", "", big) // 192 samples of the 3 held series
	require.Equal(t, http.StatusTooManyRequests, code, body)
	require.Contains(t, body, "burst of 100")
	require.NotEmpty(t, hdr.Get("Retry-After"))

	// The limits file is rewritten: the receiver applies it without a restart.
	writeLimits(`
defaults: {max_labels_per_series: 10}
tenants:
  team-b: {max_active_series: 10}
`)
	refused := 0 // attempts before the new limits applied
	require.Eventually(t, func() bool {
		code, _, body := pushAuth(t, r.rwURL, "token-b", "", limitsSeries(3, 5, ts+5))
		if code != http.StatusNoContent {
			require.Equal(t, http.StatusTooManyRequests, code, body)
			refused++
		}
		return code == http.StatusNoContent
	}, 30*time.Second, 250*time.Millisecond, "the raised series limit applies")
	code, _, body = pushAuth(t, r.rwURL, "token-a", "", []prompb.TimeSeries{bad})
	require.Equal(t, http.StatusNoContent, code, body)

	// A real Prometheus writes with its token; one with a wrong token is refused.
	bin := requireBinary(t, "prometheus")
	good := startTokenPrometheus(t, bin, r.rwURL, "token-a")
	wrong := startTokenPrometheus(t, bin, r.rwURL, "not-a-token")
	require.Eventually(t, func() bool {
		return wrong.metric(t, "prometheus_remote_storage_samples_failed_total") > 0 &&
			good.metric(t, "prometheus_remote_storage_samples_total") > 0
	}, time.Minute, 250*time.Millisecond)
	require.Zero(t, good.metric(t, "prometheus_remote_storage_samples_failed_total"))

	// Usage, from the API and the metrics.
	var a tenantsAnswer
	require.Eventually(t, func() bool {
		a = getTenants(t, r.httpURL)
		return len(a.Data) == 2 && a.Data[0].ActiveSeries > 20 // Prometheus' own series are in
	}, 30*time.Second, 250*time.Millisecond)
	require.Equal(t, "success", a.Status)
	ta, tb := a.Data[0], a.Data[1]
	require.Equal(t, "team-a", ta.Tenant)
	require.Equal(t, "team-b", tb.Tenant)
	require.Equal(t, uint64(1), ta.SamplesDiscarded["label_limit"])
	require.Equal(t, uint64(2+5*refused), tb.SamplesDiscarded["max_active_series"])
	require.Equal(t, uint64(192), tb.SamplesDiscarded["rate_limited"])
	require.Equal(t, uint64(5+3+3+192+5+5*refused), tb.SamplesReceived)
	require.Equal(t, 8, tb.ActiveSeries)
	require.Greater(t, ta.BytesReceived, uint64(0))
	require.Equal(t, float64(10), tb.Limits["max_active_series"])
	require.Equal(t, float64(10), ta.Limits["max_labels_per_series"])

	v, ok, err := metricValueWith(context.Background(), r.httpURL+"/metrics", "strata_receive_tenant_samples_received_total", `tenant="team-b"`)
	require.NoError(t, err)
	require.True(t, ok)
	require.Equal(t, float64(tb.SamplesReceived), v)
	v, _, err = metricValueWith(context.Background(), r.httpURL+"/metrics", "strata_receive_tenant_active_series", `tenant="team-b"`)
	require.NoError(t, err)
	require.Equal(t, 8.0, v)
}

// startTokenPrometheus starts a Prometheus that scrapes itself and remote-writes
// to url with a bearer token.
func startTokenPrometheus(t *testing.T, bin, url, token string) *remoteWritingPrometheus {
	t.Helper()
	p := &remoteWritingPrometheus{addr: freeAddr(t), rwURL: url, cfgFile: filepath.Join(t.TempDir(), "prometheus.yml")}
	p.url = "http://" + p.addr
	require.NoError(t, os.WriteFile(p.cfgFile, []byte(fmt.Sprintf(`
global:
  scrape_interval: 1s
remote_write:
  - url: %s
    authorization: {credentials: %q}
    queue_config: {batch_send_deadline: 200ms, min_backoff: 50ms, max_backoff: 500ms}
scrape_configs:
  - job_name: prometheus
    static_configs: [{targets: [%q]}]
`, url, token, p.addr)), 0o644))
	p.process = startProcess(t, "prometheus", bin,
		"--config.file="+p.cfgFile,
		"--storage.tsdb.path="+t.TempDir(),
		"--web.listen-address="+p.addr,
	)
	waitHTTP(t, p.process, p.url+"/-/ready", time.Minute)
	return p
}
