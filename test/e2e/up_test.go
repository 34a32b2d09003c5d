package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
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

// TestUpRunsRuler checks that `strata up` writes its example rules on the
// first start, evaluates them over what it stores, serves them on its API,
// writes the recorded series back into the ring, and reloads on request
// while rejecting an invalid file.
func TestUpRunsRuler(t *testing.T) {
	dataDir := t.TempDir()
	p, httpAddr := startUpOnFreePorts(t, "--data-dir="+dataDir, "--self-scrape-interval=500ms", "--rule.eval-interval=1s")
	base := "http://" + httpAddr

	example := filepath.Join(dataDir, "rules", "example.yaml")
	written, err := os.ReadFile(example)
	require.NoError(t, err)
	embedded, err := os.ReadFile(filepath.Join("..", "..", "cmd", "strata", "up_rules.yaml"))
	require.NoError(t, err)
	require.Equal(t, string(embedded), string(written))
	require.Contains(t, p.out.String(), "Rules and alerts:        "+base+"/api/v1/rules")

	// The recording rule over strata's own metrics lands in the ring.
	var got []apiSeries
	require.Eventually(t, func() bool {
		got, err = instantQuery(context.Background(), base, "strata:receive_samples_written:rate5m")
		return err == nil && len(got) == 1 && got[0].points[0].f > 0
	}, time.Minute, 200*time.Millisecond, "the example recording rule's result is queryable: %v %v", got, err)
	require.Equal(t, map[string]string{"__name__": "strata:receive_samples_written:rate5m", strataTenantLabel: strataDefaultTenant}, got[0].labels)

	var names []string
	for _, g := range apiRuleGroups(t, base) {
		names = append(names, g.Name)
		for _, r := range g.Rules {
			require.NotEqual(t, "err", r.Health, "rule %s: %s", r.Name, r.LastError)
		}
	}
	require.Equal(t, []string{"sources", "strata"}, names)

	// A broken file is refused and the example keeps running; a good one is
	// added.
	require.NoError(t, os.WriteFile(filepath.Join(dataDir, "rules", "broken.yaml"), []byte("groups: [{name: x, rules: [{record: y, expr: 'sum('}]}]\n"), 0o644))
	resp, err := http.Post(base+"/-/reload", "", nil)
	require.NoError(t, err)
	require.NoError(t, resp.Body.Close())
	require.Equal(t, http.StatusInternalServerError, resp.StatusCode)
	require.Len(t, apiRuleGroups(t, base), 2)
	require.NoError(t, os.WriteFile(filepath.Join(dataDir, "rules", "broken.yaml"), []byte("groups: [{name: more, rules: [{record: one, expr: vector(1)}]}]\n"), 0o644))
	resp, err = http.Post(base+"/-/reload", "", nil)
	require.NoError(t, err)
	require.NoError(t, resp.Body.Close())
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Len(t, apiRuleGroups(t, base), 3)
	require.NoError(t, p.stop(t, syscall.SIGTERM, time.Minute))
}

// startUpOnFreePorts starts `strata up` with args on free loopback ports for
// remote write and HTTP, and waits until it is ready. A port taken between
// freeAddr and the bind (by one of strata's own ephemeral listeners, say) is
// retried on new ports. It returns the process and its HTTP address.
func startUpOnFreePorts(t *testing.T, args ...string) (*process, string) {
	t.Helper()
	for attempt := 1; ; attempt++ {
		httpAddr := freeAddr(t)
		p := startProcess(t, "strata up", strataBin, append([]string{"up",
			"--remote-write.address=" + freeAddr(t), "--http-address=" + httpAddr}, args...)...)
		if waitReadyOrExit(t, p, "http://"+httpAddr+"/-/ready") {
			return p, httpAddr
		}
		if attempt == 3 || !strings.Contains(p.out.String(), "address already in use") {
			t.Fatalf("strata up exited: %v\n%s", p.err, tail(p.out.String(), 40))
		}
		t.Logf("port taken, retrying: %s", tail(p.out.String(), 2))
	}
}

// waitReadyOrExit polls url until it answers 200 (true) or p exits (false),
// failing the test after a minute.
func waitReadyOrExit(t *testing.T, p *process, url string) bool {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		if resp, err := http.Get(url); err == nil {
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return true
			}
		}
		select {
		case <-p.done:
			return false
		case <-time.After(100 * time.Millisecond):
		}
		require.True(t, time.Now().Before(deadline), "%s not ready at %s", p.name, url)
	}
}
