package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestUpStoresItsOwnMetrics starts `strata up` as a newcomer would and checks that
// it stores its own metrics on two of its three receivers, and keeps them across
// a restart.
func TestUpStoresItsOwnMetrics(t *testing.T) {
	dataDir := t.TempDir()
	rwAddr, httpAddr := freeAddr(t), freeAddr(t)
	start := func() *process {
		p := startProcess(t, "strata up", strataBin, "up",
			"--data-dir="+dataDir,
			"--remote-write.address="+rwAddr,
			"--http-address="+httpAddr,
			"--self-scrape-interval=500ms",
		)
		waitHTTP(t, p, "http://"+httpAddr+"/-/ready", time.Minute)
		return p
	}
	up := start()
	require.Eventually(t, func() bool {
		v, _, err := metricValue(context.Background(), "http://"+httpAddr+"/metrics", "strata_receive_samples_written_total")
		return err == nil && v > 0
	}, time.Minute, 200*time.Millisecond, "strata stores its own metrics")
	require.True(t, strings.Contains(up.out.String(), "remote_write: url: http://"+rwAddr+"/api/v1/receive"), "it prints the remote-write URL")
	require.True(t, strings.Contains(up.out.String(), "Query (Grafana, PromQL): http://"+httpAddr), "it prints the query URL")

	// The query API answers with strata's own metrics, each series once although
	// two receivers hold it; without dedup both copies show.
	var deduped int
	require.Eventually(t, func() bool {
		deduped = instantSeries(t, "http://"+httpAddr, "strata_receive_requests_total", true)
		return deduped > 0
	}, time.Minute, 200*time.Millisecond, "the query API returns strata's own metrics")
	require.Equal(t, 2*deduped, instantSeries(t, "http://"+httpAddr, "strata_receive_requests_total", false))
	require.NoError(t, up.stop(t, syscall.SIGTERM, time.Minute))

	first := selfMetricCopies(t, dataDir)
	require.NotEmpty(t, first)
	for series, copies := range first {
		require.Equal(t, 2, copies, "series %s is on two receivers (RF=2)", series)
	}

	// A restart replays or reloads everything, and scraping goes on.
	up = start()
	require.NoError(t, up.stop(t, syscall.SIGTERM, time.Minute))
	second := selfMetricCopies(t, dataDir)
	for series := range first {
		require.Contains(t, second, series, "series kept across the restart")
	}
}

// selfMetricCopies returns, for every series of strata's own request counter, on
// how many receivers it is stored.
func selfMetricCopies(t *testing.T, dataDir string) map[string]int {
	t.Helper()
	copies := map[string]int{}
	for i := range 3 {
		for series := range readTSDB(t, filepath.Join(dataDir, fmt.Sprintf("receive-%d", i), "default-tenant")) {
			if strings.Contains(series, `__name__="strata_receive_requests_total"`) {
				copies[series]++
			}
		}
	}
	return copies
}

// instantSeries returns how many series an instant query of expr returns.
func instantSeries(t *testing.T, baseURL, expr string, dedup bool) int {
	t.Helper()
	q := url.Values{"query": {expr}, "dedup": {strconv.FormatBool(dedup)}}
	resp, err := http.Get(baseURL + "/api/v1/query?" + q.Encode())
	require.NoError(t, err)
	defer func() { require.NoError(t, resp.Body.Close()) }()
	var body struct {
		Status string `json:"status"`
		Data   struct {
			Result []json.RawMessage `json:"result"`
		} `json:"data"`
	}
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&body))
	require.Equal(t, "success", body.Status)
	return len(body.Data.Result)
}
