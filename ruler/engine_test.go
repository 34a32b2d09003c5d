package ruler

import (
	"context"
	"net"
	"path/filepath"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/rules"
	"github.com/prometheus/prometheus/tsdb"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"

	"github.com/stratametrics/strata/storeapi"
	"github.com/stratametrics/strata/storeapi/infopb"
	"github.com/stratametrics/strata/storeapi/storepb"
)

// serveStoreAPI serves db over the Store API on a loopback port, with the
// given external labels, until the test ends.
func serveStoreAPI(t *testing.T, db *tsdb.DB, ext labels.Labels) string {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	store := storeapi.NewTSDBStore(db, ext, "receive", nil)
	srv := grpc.NewServer()
	storepb.RegisterStoreServer(srv, store)
	infopb.RegisterInfoServer(srv, store)
	served := make(chan error, 1)
	go func() { served <- srv.Serve(lis) }()
	t.Cleanup(func() {
		srv.Stop()
		require.NoError(t, <-served)
	})
	return lis.Addr().String()
}

// TestInProcessEngineOverStoreAPI evaluates rules with the ruler's own engine
// over Store API endpoints: two replicas of the same data, deduplicated, and
// one endpoint that is down, which fails the group that aborts on partial
// responses and not the one that warns.
func TestInProcessEngineOverStoreAPI(t *testing.T) {
	db := openTSDB(t)
	replicaA := serveStoreAPI(t, db, labels.FromStrings("receive_replica", "a"))
	replicaB := serveStoreAPI(t, db, labels.FromStrings("receive_replica", "b"))
	down := freePort(t)

	rc, recvURL := startReceiver(t, nil)
	ruleFile := filepath.Join(t.TempDir(), "rules.yaml")
	writeFile(t, ruleFile, strategyRules)
	r := startRuler(t, Config{
		DataDir:         t.TempDir(),
		RuleFiles:       []string{ruleFile},
		EvalInterval:    time.Minute,
		Endpoints:       []string{replicaA, replicaB, down},
		RemoteWriteURLs: []string{recvURL},
		ExternalLabels:  labels.FromStrings("ruler_replica", "a"),
		FlushDeadline:   time.Second,
	})
	require.Eventually(t, func() bool { return len(rc.find("lenient:up:sum")) > 0 }, time.Minute, 50*time.Millisecond)
	got := rc.find("lenient:up:sum")[0]
	// Three instances, each held by both replicas: deduplicated, the sum is 3.
	require.Equal(t, 3.0, got.value)
	require.Equal(t, labels.FromStrings("__name__", "lenient:up:sum", "job", "api", "ruler_replica", "a"), got.labels)

	strict := groupRule(t, r, "strict", "strict:up:sum")
	require.Eventually(t, func() bool { return strict.LastError() != nil }, time.Minute, 50*time.Millisecond)
	require.Contains(t, strict.LastError().Error(), down)
	require.Empty(t, rc.find("strict:up:sum"))
}

func TestConfigValidate(t *testing.T) {
	base := Config{DataDir: "d", EvalInterval: time.Minute}
	for name, tc := range map[string]struct {
		mod  func(*Config)
		want string
	}{
		"nothing to query": {func(*Config) {}, "nothing to query"},
		"both":             {func(c *Config) { c.QueryURLs, c.Endpoints = []string{"http://q:10902"}, []string{"s:10901"} }, "not both"},
		"no data dir":      {func(c *Config) { c.DataDir, c.QueryURLs = "", []string{"http://q:10902"} }, "no data directory"},
		"bad pattern":      {func(c *Config) { c.QueryURLs, c.RuleFiles = []string{"http://q:10902"}, []string{"["} }, "rule file pattern"},
	} {
		t.Run(name, func(t *testing.T) {
			c := base
			tc.mod(&c)
			require.ErrorContains(t, c.Validate(), tc.want)
		})
	}
	ok := base
	ok.Endpoints = []string{"s:10901"}
	require.NoError(t, ok.Validate())
}

// TestForStateRestoredAfterRestart runs a pending alert in one ruler, stops
// it, and starts another with an empty data directory over the same storage:
// the new ruler takes the alert's activeAt from the ALERTS_FOR_STATE series
// the first one remote-wrote, rather than starting the `for` period anew.
// Both ways of querying are covered.
func TestForStateRestoredAfterRestart(t *testing.T) {
	for _, mode := range []string{"query-api", "store-api"} {
		t.Run(mode, func(t *testing.T) {
			db := openTSDB(t)
			rc, recvURL := startReceiver(t, db)
			ruleFile := filepath.Join(t.TempDir(), "alerts.yaml")
			writeFile(t, ruleFile, `
groups:
  - name: alerts
    interval: 1s
    rules:
      - alert: JobUpForLong
        expr: sum by (job) (up) > 2
        for: 1h
`)
			cfg := Config{
				RuleFiles:       []string{ruleFile},
				EvalInterval:    time.Minute,
				RemoteWriteURLs: []string{recvURL},
				ExternalLabels:  labels.FromStrings("ruler_replica", "a"),
				OutageTolerance: time.Hour,
				ForGracePeriod:  10 * time.Minute,
				FlushDeadline:   10 * time.Second,
			}
			if mode == "query-api" {
				cfg.QueryURLs = []string{queryAPI(t, db).URL}
			} else {
				cfg.Endpoints = []string{serveStoreAPI(t, db, labels.EmptyLabels())}
			}

			// The first ruler holds the alert pending for a few evaluations.
			first := cfg
			first.DataDir = t.TempDir()
			r1, err := New(first, prometheus.NewRegistry(), nil)
			require.NoError(t, err)
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			go func() { done <- r1.Run(ctx) }()
			require.Eventually(t, func() bool { return len(rc.find("ALERTS_FOR_STATE")) >= 4 }, time.Minute, 50*time.Millisecond)
			activeAt1 := pendingAlert(t, r1).ActiveAt
			cancel()
			require.NoError(t, <-done)
			require.NoError(t, r1.Close())
			for _, s := range rc.find("ALERTS_FOR_STATE") {
				require.Equal(t, float64(activeAt1.Unix()), s.value)
			}

			// Without a restore the second ruler's alert would be active from
			// its first evaluation, after start.
			start := time.Now()
			second := cfg
			second.DataDir = t.TempDir()
			r2 := startRuler(t, second)
			require.Eventually(t, func() bool {
				a := pendingAlertOrNil(r2)
				return a != nil && a.ActiveAt.Before(start)
			}, time.Minute, 50*time.Millisecond, "for state not restored: activeAt %v, first ruler's %v", pendingAlertOrNil(r2), activeAt1)
			require.False(t, pendingAlertOrNil(r2).ActiveAt.Before(activeAt1.Truncate(time.Second)))
		})
	}
}

func pendingAlertOrNil(r *Ruler) *rules.Alert {
	for _, rule := range r.manager.AlertingRules() {
		for _, a := range rule.ActiveAlerts() {
			if a.State == rules.StatePending {
				return a
			}
		}
	}
	return nil
}

func pendingAlert(t *testing.T, r *Ruler) *rules.Alert {
	t.Helper()
	a := pendingAlertOrNil(r)
	require.NotNil(t, a, "no pending alert")
	return a
}
