package ruler

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/golang/snappy"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/prompb"
	"github.com/prometheus/prometheus/promql"
	"github.com/prometheus/prometheus/promql/parser"
	"github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/tsdb"
	"github.com/stretchr/testify/require"
)

// queryAPI serves /api/v1/query from a real TSDB through the real PromQL
// engine, adding the given warnings to every answer.
func queryAPI(t *testing.T, db *tsdb.DB, warnings ...string) *httptest.Server {
	t.Helper()
	engine := promql.NewEngine(promql.EngineOpts{MaxSamples: 1e6, Timeout: time.Minute, LookbackDelta: 5 * time.Minute})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := r.ParseForm(); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		ts, err := strconv.ParseFloat(r.Form.Get("time"), 64)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		q, err := engine.NewInstantQuery(r.Context(), db, nil, r.Form.Get("query"), time.UnixMilli(int64(ts*1000)))
		if err != nil {
			w.WriteHeader(http.StatusBadRequest)
			_ = json.NewEncoder(w).Encode(map[string]any{"status": "error", "errorType": "bad_data", "error": err.Error()})
			return
		}
		defer q.Close()
		res := q.Exec(r.Context())
		if res.Err != nil {
			w.WriteHeader(http.StatusUnprocessableEntity)
			_ = json.NewEncoder(w).Encode(map[string]any{"status": "error", "errorType": "execution", "error": res.Err.Error()})
			return
		}
		_ = json.NewEncoder(w).Encode(map[string]any{
			"status":   "success",
			"data":     map[string]any{"resultType": res.Value.Type(), "result": res.Value},
			"warnings": warnings,
		})
	}))
	t.Cleanup(srv.Close)
	return srv
}

// openTSDB opens a real TSDB holding up{job="api",instance=i} = 1 for three
// instances, with samples up to now.
func openTSDB(t *testing.T) *tsdb.DB {
	t.Helper()
	db, err := tsdb.Open(t.TempDir(), nil, nil, tsdb.DefaultOptions(), nil)
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, db.Close()) })
	app := db.Appender(context.Background())
	now := time.Now()
	for i := range 3 {
		lset := labels.FromStrings("__name__", "up", "job", "api", "instance", fmt.Sprintf("host-%d", i))
		for ts := now.Add(-2 * time.Minute); !ts.After(now); ts = ts.Add(15 * time.Second) {
			_, err := app.Append(0, lset, ts.UnixMilli(), 1)
			require.NoError(t, err)
		}
	}
	require.NoError(t, app.Commit())
	return db
}

// receiver is a remote write endpoint that keeps every sample it is sent,
// and appends them to db when it is set.
type receiver struct {
	db      *tsdb.DB
	mtx     sync.Mutex
	samples []receivedSample
}

type receivedSample struct {
	labels labels.Labels
	t      int64
	value  float64
}

// startReceiver serves a receiver, storing into db when it is not nil, until
// the test ends, and returns it with its remote write URL.
func startReceiver(t *testing.T, db *tsdb.DB) (*receiver, string) {
	t.Helper()
	rc := &receiver{db: db}
	srv := httptest.NewServer(rc)
	t.Cleanup(srv.Close)
	return rc, srv.URL + "/api/v1/receive"
}

func (rc *receiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	compressed, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	raw, err := snappy.Decode(nil, compressed)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	var req prompb.WriteRequest
	if err := req.Unmarshal(raw); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	rc.mtx.Lock()
	defer rc.mtx.Unlock()
	var app storage.Appender
	if rc.db != nil {
		app = rc.db.Appender(r.Context())
	}
	for _, ts := range req.Timeseries {
		b := labels.NewScratchBuilder(len(ts.Labels))
		for _, l := range ts.Labels {
			b.Add(l.Name, l.Value)
		}
		b.Sort()
		for _, s := range ts.Samples {
			rc.samples = append(rc.samples, receivedSample{labels: b.Labels(), t: s.Timestamp, value: s.Value})
			if app != nil {
				if _, err := app.Append(0, b.Labels(), s.Timestamp, s.Value); err != nil {
					_ = app.Rollback()
					http.Error(w, err.Error(), http.StatusBadRequest)
					return
				}
			}
		}
	}
	if app != nil {
		if err := app.Commit(); err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
	}
	w.WriteHeader(http.StatusNoContent)
}

func (rc *receiver) find(name string) []receivedSample {
	rc.mtx.Lock()
	defer rc.mtx.Unlock()
	var out []receivedSample
	for _, s := range rc.samples {
		if s.labels.Get("__name__") == name {
			out = append(out, s)
		}
	}
	return out
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	require.NoError(t, os.WriteFile(path, []byte(content), 0o644))
}

const recordingRules = `
groups:
  - name: api
    interval: 1s
    rules:
      - record: job:up:sum
        expr: sum by (job) (up)
`

func TestLoadFiles(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "good.yaml"), recordingRules)
	writeFile(t, filepath.Join(dir, "badyaml.yaml"), "groups: [name: x\n")
	writeFile(t, filepath.Join(dir, "badexpr.yaml"), "groups:\n  - name: x\n    rules:\n      - record: a\n        expr: sum(\n")
	writeFile(t, filepath.Join(dir, "dup.yaml"), "groups:\n  - name: x\n    rules: [{record: a, expr: '1'}]\n  - name: x\n    rules: [{record: b, expr: '1'}]\n")

	for _, tc := range []struct {
		name     string
		patterns []string
		files    int
		errFile  string
	}{
		{name: "valid", patterns: []string{filepath.Join(dir, "good.yaml")}, files: 1},
		{name: "glob matching nothing", patterns: []string{filepath.Join(dir, "*.rules")}, files: 0},
		{name: "invalid yaml", patterns: []string{filepath.Join(dir, "g*.yaml"), filepath.Join(dir, "badyaml.yaml")}, errFile: "badyaml.yaml"},
		{name: "invalid expression", patterns: []string{filepath.Join(dir, "badexpr.yaml")}, errFile: "badexpr.yaml"},
		{name: "duplicate group", patterns: []string{filepath.Join(dir, "dup.yaml")}, errFile: "dup.yaml"},
		{name: "bad pattern", patterns: []string{"[" + dir}, errFile: "pattern"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			files, err := LoadFiles(tc.patterns, parser.NewParser(parser.Options{}), nil)
			if tc.errFile != "" {
				require.ErrorContains(t, err, tc.errFile)
				return
			}
			require.NoError(t, err)
			require.Len(t, files, tc.files)
		})
	}
}

func TestQueryClient(t *testing.T) {
	db := openTSDB(t)
	good := queryAPI(t, db)
	partial := queryAPI(t, db, "store host-2 unavailable")
	down := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		http.Error(w, "down", http.StatusServiceUnavailable)
	}))
	t.Cleanup(down.Close)

	for _, tc := range []struct {
		name      string
		endpoints []string
		partial   bool
		query     string
		want      float64
		wantErr   string
	}{
		{name: "vector", endpoints: []string{good.URL}, query: "sum(up)", want: 3},
		{name: "scalar", endpoints: []string{good.URL}, query: "scalar(sum(up)) * 2", want: 6},
		{name: "failover to the next endpoint", endpoints: []string{down.URL, good.URL}, query: "sum(up)", want: 3},
		{name: "every endpoint down", endpoints: []string{down.URL, down.URL}, query: "sum(up)", wantErr: "every endpoint"},
		{name: "bad query is not retried", endpoints: []string{good.URL, down.URL}, query: "sum(", wantErr: ErrBadQuery.Error()},
		{name: "warning aborts", endpoints: []string{partial.URL}, query: "sum(up)", wantErr: ErrPartialResponse.Error()},
		{name: "warning allowed", endpoints: []string{partial.URL}, partial: true, query: "sum(up)", want: 3},
		{name: "string result", endpoints: []string{good.URL}, query: `"x"`, wantErr: "vector or scalar"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := NewQueryClient(tc.endpoints, tc.partial, 0, prometheus.NewRegistry(), nil)
			require.NoError(t, err)
			v, err := c.Query(context.Background(), tc.query, time.Now())
			if tc.wantErr != "" {
				require.ErrorContains(t, err, tc.wantErr)
				return
			}
			require.NoError(t, err)
			require.Len(t, v, 1)
			require.Equal(t, tc.want, v[0].F)
		})
	}
}

func TestRecordingRuleRemoteWriteAndReload(t *testing.T) {
	db := openTSDB(t)
	query := queryAPI(t, db)
	rc, recvURL := startReceiver(t, nil)

	ruleFile := filepath.Join(t.TempDir(), "rules.yaml")
	writeFile(t, ruleFile, recordingRules)
	r := startRuler(t, Config{
		DataDir:         t.TempDir(),
		RuleFiles:       []string{ruleFile},
		EvalInterval:    time.Minute,
		QueryURLs:       []string{query.URL},
		RemoteWriteURLs: []string{recvURL},
		ExternalLabels:  labels.FromStrings("ruler_replica", "a"),
		FlushDeadline:   time.Second,
	})

	require.Eventually(t, func() bool { return len(rc.find("job:up:sum")) > 0 }, 60*time.Second, 50*time.Millisecond)
	got := rc.find("job:up:sum")[0]
	require.Equal(t, labels.FromStrings("__name__", "job:up:sum", "job", "api", "ruler_replica", "a"), got.labels)
	require.Equal(t, 3.0, got.value)

	// An invalid file is rejected, naming it, and the old group keeps running.
	writeFile(t, ruleFile, "groups:\n  - name: api\n    rules:\n      - record: job:up:sum\n        expr: sum by (job) (up\n")
	err := r.Reload()
	require.ErrorContains(t, err, ruleFile)
	groups := r.Groups()
	require.Len(t, groups, 1)
	require.Equal(t, "job:up:sum", groups[0].Rules()[0].Name())
	before := len(rc.find("job:up:sum"))
	require.Eventually(t, func() bool { return len(rc.find("job:up:sum")) > before }, 60*time.Second, 50*time.Millisecond)

	// A valid change replaces it.
	writeFile(t, ruleFile, "groups:\n  - name: api\n    interval: 1s\n    rules:\n      - record: job:up:count\n        expr: count by (job) (up)\n")
	require.NoError(t, r.Reload())
	require.Eventually(t, func() bool { return len(rc.find("job:up:count")) > 0 }, 60*time.Second, 50*time.Millisecond)
	require.Equal(t, 3.0, rc.find("job:up:count")[0].value)
}

func freePort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := l.Addr().String()
	require.NoError(t, l.Close())
	return addr
}

// startRuler runs a Ruler until the test ends.
func startRuler(t *testing.T, cfg Config) *Ruler {
	t.Helper()
	r, err := New(cfg, prometheus.NewRegistry(), nil)
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, r.Close()) })
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	t.Cleanup(func() { cancel(); require.NoError(t, <-done) })
	return r
}

// startAlertmanager runs the real Alertmanager binary (Debian's
// prometheus-alertmanager, which .ci/install-deps installs) on addr, or on a
// free loopback port when addr is empty, and returns its URL.
func startAlertmanager(t *testing.T, addr string) string {
	t.Helper()
	bin, err := exec.LookPath("prometheus-alertmanager")
	require.NoError(t, err, "prometheus-alertmanager is required: run .ci/install-deps")
	dir := t.TempDir()
	cfg := filepath.Join(dir, "alertmanager.yml")
	writeFile(t, cfg, "route:\n  receiver: none\nreceivers:\n  - name: none\n")
	if addr == "" {
		addr = freePort(t)
	}
	cmd := exec.Command(bin,
		"--config.file="+cfg,
		"--storage.path="+filepath.Join(dir, "data"),
		"--web.listen-address="+addr,
		"--cluster.listen-address=",
	)
	cmd.Stdout, cmd.Stderr = io.Discard, io.Discard
	require.NoError(t, cmd.Start())
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	url := "http://" + addr
	require.Eventually(t, func() bool {
		resp, err := http.Get(url + "/-/ready")
		if err != nil {
			return false
		}
		_ = resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	}, 30*time.Second, 50*time.Millisecond)
	return url
}

// amAlert is an alert as Alertmanager's API shows it.
type amAlert struct {
	Labels      map[string]string `json:"labels"`
	Annotations map[string]string `json:"annotations"`
}

// amAlerts returns the active alerts of the Alertmanager at url, nil when it
// cannot be asked.
func amAlerts(t *testing.T, url string) []amAlert {
	t.Helper()
	resp, err := http.Get(url + "/api/v2/alerts")
	if err != nil {
		t.Logf("ask alertmanager: %v", err)
		return nil
	}
	defer func() { _ = resp.Body.Close() }()
	var alerts []amAlert
	if err := json.NewDecoder(resp.Body).Decode(&alerts); err != nil {
		t.Logf("decode alertmanager answer: %v", err)
		return nil
	}
	return alerts
}

func TestAlertReachesAlertmanager(t *testing.T) {
	amURL := startAlertmanager(t, "")
	db := openTSDB(t)
	query := queryAPI(t, db)

	ruleFile := filepath.Join(t.TempDir(), "alerts.yaml")
	writeFile(t, ruleFile, `
groups:
  - name: alerts
    interval: 1s
    rules:
      - alert: TooManyUp
        expr: sum by (job) (up) > 2
        labels:
          severity: page
        annotations:
          summary: "{{ $labels.job }} has {{ $value }} up"
`)
	r := startRuler(t, Config{
		DataDir:          t.TempDir(),
		RuleFiles:        []string{ruleFile},
		EvalInterval:     time.Minute,
		QueryURLs:        []string{query.URL},
		AlertmanagerURLs: []string{amURL},
		ExternalLabels:   labels.FromStrings("ruler_replica", "a"),
		ResendDelay:      time.Second,
		FlushDeadline:    time.Second,
	})

	var alerts []amAlert
	require.Eventually(t, func() bool {
		alerts = amAlerts(t, amURL)
		return len(alerts) > 0
	}, 60*time.Second, 100*time.Millisecond)
	require.Len(t, alerts, 1)
	require.Equal(t, map[string]string{"alertname": "TooManyUp", "job": "api", "severity": "page", "ruler_replica": "a"}, alerts[0].Labels)
	require.Equal(t, "api has 3 up", alerts[0].Annotations["summary"])

	// The ruler's own API shows the firing alert.
	rec := httptest.NewRecorder()
	mux := http.NewServeMux()
	r.Register(mux)
	mux.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/api/v1/alerts", nil))
	var resp struct {
		Status string `json:"status"`
		Data   struct {
			Alerts []struct {
				Labels map[string]string `json:"labels"`
				State  string            `json:"state"`
			} `json:"alerts"`
		} `json:"data"`
	}
	require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &resp))
	require.Equal(t, "success", resp.Status)
	require.Len(t, resp.Data.Alerts, 1)
	require.Equal(t, "firing", resp.Data.Alerts[0].State)
	require.Equal(t, "TooManyUp", resp.Data.Alerts[0].Labels["alertname"])
}
