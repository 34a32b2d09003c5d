package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/value"
	"github.com/stretchr/testify/require"
)

// TestPrometheusRemoteWrite has a real Prometheus scrape itself and remote-write
// to strata, then proves that every sample Prometheus reports as sent is in
// strata's TSDB, with the same values as in Prometheus' own TSDB.
func TestPrometheusRemoteWrite(t *testing.T) {
	promBin := requireBinary(t, "prometheus")
	s := startReceive(t, t.TempDir())

	promAddr := freeAddr(t)
	promURL := "http://" + promAddr
	cfgFile := filepath.Join(t.TempDir(), "prometheus.yml")
	writeConfig := func(scrape bool) {
		cfg := fmt.Sprintf(`
global:
  scrape_interval: 1s
remote_write:
  - url: %s
    queue_config: {batch_send_deadline: 200ms, max_samples_per_send: 300, min_backoff: 50ms, max_backoff: 1s}
    metadata_config: {send: true, send_interval: 1s}
`, s.rwURL)
		if scrape {
			cfg += fmt.Sprintf("scrape_configs:\n  - job_name: prometheus\n    static_configs: [{targets: [%q]}]\n", promAddr)
		}
		require.NoError(t, os.WriteFile(cfgFile, []byte(cfg), 0o644))
	}
	writeConfig(true)
	prom := startProcess(t, "prometheus", promBin,
		"--config.file="+cfgFile,
		"--storage.tsdb.path="+t.TempDir(),
		"--web.listen-address="+promAddr,
		"--web.enable-lifecycle",
	)
	waitHTTP(t, prom, promURL+"/-/ready", time.Minute)

	ctx := context.Background()
	metric := func(name string) float64 {
		v, _, err := metricValue(ctx, promURL+"/metrics", name)
		require.NoError(t, err)
		return v
	}
	// Several scrapes' worth of samples, sent in many requests.
	require.Eventually(t, func() bool { return metric("prometheus_remote_storage_samples_total") >= 5000 },
		2*time.Minute, 200*time.Millisecond, "Prometheus sends samples")

	// Stop scraping and let the queue drain.
	writeConfig(false)
	resp, err := http.Post(promURL+"/-/reload", "", nil)
	require.NoError(t, err)
	require.NoError(t, resp.Body.Close())
	require.Equal(t, http.StatusOK, resp.StatusCode)
	var sent float64
	require.Eventually(t, func() bool {
		in := metric("prometheus_remote_storage_samples_in_total")
		out := metric("prometheus_remote_storage_samples_total")
		if in == 0 || in != out {
			return false
		}
		// Stable across a second look: nothing more is coming.
		time.Sleep(500 * time.Millisecond)
		sent = out
		return metric("prometheus_remote_storage_samples_in_total") == in && metric("prometheus_remote_storage_samples_total") == out
	}, 2*time.Minute, 200*time.Millisecond, "the remote-write queue drains")
	require.Zero(t, metric("prometheus_remote_storage_samples_failed_total"), "strata rejected samples")
	require.Zero(t, metric("prometheus_remote_storage_samples_dropped_total"))

	// Prometheus' own raw samples, stale markers excluded (the API never returns them).
	want := promRawSamples(t, promURL)
	require.NoError(t, prom.stop(t, syscall.SIGTERM, time.Minute))

	// strata flushes on SIGTERM; read what it stored. Debian's Prometheus 2.42 does
	// not send remote_write's custom headers, so the data is the default tenant's.
	require.NoError(t, s.stop(t, syscall.SIGTERM, time.Minute))
	got := readTSDB(t, filepath.Join(s.dataDir, "default-tenant"))

	total := 0
	for _, ss := range got {
		total += len(ss)
	}
	require.Equal(t, int(sent), total, "every sample Prometheus sent, stale markers included, is stored once")

	require.Len(t, got, len(want), "same series")
	for series, wantSamples := range want {
		gotSamples, ok := got[series]
		require.True(t, ok, "series %s missing in strata", series)
		var live []sample
		for _, smp := range gotSamples {
			if !value.IsStaleNaN(smp.v) {
				live = append(live, smp)
			}
		}
		require.NoError(t, sameSamples(wantSamples, live), "series %s", series)
	}
	t.Logf("Prometheus sent %d samples of %d series; all stored", int(sent), len(got))
}

// promRawSamples returns every raw sample of the last hour from Prometheus' API.
func promRawSamples(t *testing.T, promURL string) map[string][]sample {
	t.Helper()
	q := url.Values{"query": {`{__name__=~".+"}[1h]`}, "time": {strconv.FormatFloat(float64(time.Now().UnixMilli())/1000, 'f', 3, 64)}}
	resp, err := http.Get(promURL + "/api/v1/query?" + q.Encode())
	require.NoError(t, err)
	defer func() { require.NoError(t, resp.Body.Close()) }()
	var body struct {
		Status string `json:"status"`
		Data   struct {
			Result []struct {
				Metric map[string]string    `json:"metric"`
				Values [][2]json.RawMessage `json:"values"`
			} `json:"result"`
		} `json:"data"`
	}
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&body))
	require.Equal(t, "success", body.Status)
	out := map[string][]sample{}
	for _, r := range body.Data.Result {
		ls := labels.FromMap(r.Metric).String()
		for _, v := range r.Values {
			var ts float64
			var val string
			require.NoError(t, json.Unmarshal(v[0], &ts))
			require.NoError(t, json.Unmarshal(v[1], &val))
			f, err := strconv.ParseFloat(val, 64)
			require.NoError(t, err)
			out[ls] = append(out[ls], sample{t: int64(math.Round(ts * 1000)), v: f})
		}
	}
	require.NotEmpty(t, out)
	return out
}
