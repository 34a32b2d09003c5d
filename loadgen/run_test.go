package loadgen

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql"
	"github.com/prometheus/prometheus/tsdb"
	"github.com/stretchr/testify/require"
)

// testServer is a remote-write receiver over a real Prometheus TSDB, with the
// Prometheus query API over the same TSDB for the read-back. It checks what a
// receiver relies on: headers, tenants, and that every series' samples arrive
// in order, one scrape interval apart unless a request in between failed.
type testServer struct {
	proto        Protocol
	tenantHeader string
	interval     int64
	// fail returns the status code to answer request n (from 1) with instead of
	// storing it, or 0.
	fail func(n int64) int

	db     *tsdb.DB
	engine *promql.Engine
	srv    *httptest.Server

	mu            sync.Mutex
	requests      int64
	accepted      int64
	failures      map[string]int64
	failedSamples int64
	last          map[string]int64
	tenantOf      map[string]string
	maxT          int64
	problems      []string
}

func newTestServer(t *testing.T, proto Protocol, fail func(int64) int) *testServer {
	t.Helper()
	db, err := tsdb.Open(t.TempDir(), nil, nil, tsdb.DefaultOptions(), nil)
	require.NoError(t, err)
	s := &testServer{
		proto:        proto,
		tenantHeader: DefaultTenantHeader,
		interval:     15000,
		fail:         fail,
		db:           db,
		engine:       promql.NewEngine(promql.EngineOpts{MaxSamples: 100_000_000, Timeout: time.Minute, LookbackDelta: 5 * time.Minute}),
		failures:     map[string]int64{},
		last:         map[string]int64{},
		tenantOf:     map[string]string{},
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/api/v1/receive", s.receive)
	mux.HandleFunc("/api/v1/query", s.query)
	s.srv = httptest.NewServer(mux)
	t.Cleanup(func() {
		s.srv.Close()
		require.NoError(t, db.Close())
	})
	return s
}

func (s *testServer) problem(format string, args ...any) {
	if len(s.problems) < 10 {
		s.problems = append(s.problems, fmt.Sprintf(format, args...))
	}
}

func (s *testServer) receive(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.requests++

	wantType, wantVersion := contentTypeRW1, "0.1.0"
	if s.proto == ProtocolRW2 {
		wantType, wantVersion = "application/x-protobuf;proto=io.prometheus.write.v2.Request", "2.0.0"
	}
	for h, want := range map[string]string{
		"Content-Type":                      wantType,
		"Content-Encoding":                  "snappy",
		"X-Prometheus-Remote-Write-Version": wantVersion,
		"Authorization":                     "Bearer secret",
	} {
		if got := r.Header.Get(h); got != want {
			s.problem("header %s: %q, want %q", h, got, want)
		}
	}
	series, err := decode(s.proto, body)
	if err != nil {
		s.problem("decode: %v", err)
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	if code := s.fail(s.requests); code != 0 {
		s.failures[strconv.Itoa(code)]++
		s.failedSamples += int64(len(series))
		http.Error(w, "injected failure", code)
		return
	}
	tenant := r.Header.Get(s.tenantHeader)
	app := s.db.Appender(r.Context())
	for _, ser := range series {
		k := ser.key()
		if t, ok := s.tenantOf[k]; ok && t != tenant {
			s.problem("series %s in tenants %q and %q", k, t, tenant)
		}
		s.tenantOf[k] = tenant
		if last, ok := s.last[k]; ok {
			switch {
			case ser.t <= last:
				s.problem("series %s: sample at %d after one at %d", k, ser.t, last)
			case ser.t != last+s.interval && len(s.failures) == 0:
				s.problem("series %s: sample at %d after one at %d: a round is missing", k, ser.t, last)
			}
		}
		s.last[k] = ser.t
		s.maxT = max(s.maxT, ser.t)
		b := labels.NewScratchBuilder(len(ser.labels))
		for _, l := range ser.labels {
			b.Add(l.name, l.value)
		}
		if _, err := app.Append(0, b.Labels(), ser.t, ser.v); err != nil {
			s.problem("append %s: %v", k, err)
		}
	}
	if err := app.Commit(); err != nil {
		s.problem("commit: %v", err)
	}
	s.accepted += int64(len(series))
	w.WriteHeader(http.StatusNoContent)
}

// query answers an instant query like Prometheus' /api/v1/query, for vectors.
func (s *testServer) query(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	at, err := strconv.ParseFloat(r.Form.Get("time"), 64)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	ts := time.UnixMilli(int64(at * 1000))
	q, err := s.engine.NewInstantQuery(r.Context(), s.db, nil, r.Form.Get("query"), ts)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	defer q.Close()
	res := q.Exec(r.Context())
	if res.Err != nil {
		http.Error(w, res.Err.Error(), http.StatusInternalServerError)
		return
	}
	vec, err := res.Vector()
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	type sample struct {
		Metric map[string]string `json:"metric"`
		Value  [2]any            `json:"value"`
	}
	out := []sample{}
	for _, v := range vec {
		out = append(out, sample{Metric: v.Metric.Map(), Value: [2]any{at, strconv.FormatFloat(v.F, 'f', -1, 64)}})
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]any{"status": "success", "data": map[string]any{"resultType": "vector", "result": out}})
}

func (s *testServer) url() string { return s.srv.URL + "/api/v1/receive" }

func testConfig(s *testServer) Config {
	cfg := DefaultConfig(s.url())
	cfg.Start = testStart
	cfg.Protocol = s.proto
	cfg.Series = 1200
	cfg.BatchSize = 100
	cfg.Concurrency = 3
	cfg.Warmup = 300 * time.Millisecond
	cfg.Duration = 700 * time.Millisecond
	cfg.Header = http.Header{"Authorization": {"Bearer secret"}}
	cfg.ReadBackURL = s.srv.URL
	cfg.ReadBackTimeout = 30 * time.Second
	return cfg
}

func TestRun(t *testing.T) {
	for _, c := range []struct {
		name    string
		proto   Protocol
		tenants int
		churn   float64
	}{
		{"rw1", ProtocolRW1, 1, 0},
		{"rw2", ProtocolRW2, 1, 0},
		{"rw1 tenants churn", ProtocolRW1, 3, 0.05},
		{"rw2 tenants churn", ProtocolRW2, 3, 0.05},
	} {
		t.Run(c.name, func(t *testing.T) {
			s := newTestServer(t, c.proto, func(int64) int { return 0 })
			cfg := testConfig(s)
			cfg.Tenants = c.tenants
			cfg.Churn, cfg.ChurnInterval = c.churn, time.Minute
			rep, err := Run(context.Background(), cfg, nil)
			require.NoError(t, err)

			s.mu.Lock()
			defer s.mu.Unlock()
			require.Empty(t, s.problems)
			require.Empty(t, rep.Errors)
			require.Empty(t, rep.ErrorMessages)
			require.Zero(t, rep.FailedSamples)
			require.Equal(t, s.accepted, rep.AckedSamplesTotal)
			require.Greater(t, rep.AckedSamples, int64(0))
			require.Less(t, rep.AckedSamples, rep.AckedSamplesTotal)
			require.Greater(t, rep.Rounds, 0)
			// Every series got a sample in every round the slowest sender completed.
			require.GreaterOrEqual(t, rep.AckedSamplesTotal, int64(rep.Rounds*cfg.Series))
			require.Equal(t, testStart.UnixMilli(), rep.FirstTimestampMs)
			require.Equal(t, s.maxT, rep.LastTimestampMs)
			// The window lasts at least the configured duration; how much longer
			// depends on the machine, so there is no upper bound.
			require.GreaterOrEqual(t, rep.DurationSeconds, cfg.Duration.Seconds())
			require.InDelta(t, float64(rep.AckedSamples)/rep.DurationSeconds, rep.AckedSamplesPerSecond, 1)
			require.Greater(t, rep.Requests, int64(0))
			require.Greater(t, rep.LatencyP50Seconds, 0.0)
			require.GreaterOrEqual(t, rep.LatencyP99Seconds, rep.LatencyP50Seconds)
			require.Greater(t, rep.WireBytesPerSample, 5.0)
			require.Less(t, rep.WireBytesPerSample, 100.0)
			require.Equal(t, 3, rep.Concurrency)
			require.Zero(t, rep.ServerCPUSeconds)

			seriesSeen := int64(len(s.last))
			require.Equal(t, seriesSeen, rep.SeriesCreated)
			if c.churn > 0 {
				require.Greater(t, rep.SeriesCreated, int64(cfg.Series))
			} else {
				require.Equal(t, int64(cfg.Series), rep.SeriesCreated)
			}
			tenants := map[string]bool{}
			for _, tn := range s.tenantOf {
				tenants[tn] = true
			}
			if c.tenants == 1 {
				require.Equal(t, map[string]bool{"": true}, tenants, "one tenant: no tenant header")
			} else {
				require.Equal(t, map[string]bool{"tenant-0": true, "tenant-1": true, "tenant-2": true}, tenants)
			}

			require.Equal(t, s.accepted, rep.ReadBackSamples)
			require.True(t, rep.ReadBackComplete)
		})
	}
}

func TestRunCountsErrors(t *testing.T) {
	s := newTestServer(t, ProtocolRW2, func(n int64) int {
		switch {
		case n == 6:
			return http.StatusInternalServerError
		case n%4 == 0:
			return http.StatusTooManyRequests
		}
		return 0
	})
	cfg := testConfig(s)
	rep, err := Run(context.Background(), cfg, nil)
	require.NoError(t, err)

	s.mu.Lock()
	defer s.mu.Unlock()
	require.Empty(t, s.problems)
	require.Equal(t, s.failures, rep.Errors)
	require.Equal(t, int64(1), rep.Errors["500"])
	require.Greater(t, rep.Errors["429"], int64(10))
	require.Equal(t, s.failedSamples, rep.FailedSamples)
	require.Equal(t, s.accepted, rep.AckedSamplesTotal)
	require.Len(t, rep.ErrorMessages, maxErrorMessages)
	require.Contains(t, strings.Join(rep.ErrorMessages, "\n"), "429 Too Many Requests: injected failure")
	require.Equal(t, s.accepted, rep.ReadBackSamples)
	require.True(t, rep.ReadBackComplete)
}

func TestRunTransportErrors(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := l.Addr().String()
	require.NoError(t, l.Close())

	cfg := DefaultConfig("http://" + addr + "/api/v1/receive")
	cfg.Series, cfg.BatchSize, cfg.Concurrency = 100, 10, 2
	cfg.Warmup, cfg.Duration = 50*time.Millisecond, 200*time.Millisecond
	rep, err := Run(context.Background(), cfg, nil)
	require.NoError(t, err)
	require.Zero(t, rep.AckedSamplesTotal)
	require.Zero(t, rep.FirstTimestampMs)
	require.Greater(t, rep.Errors["transport"], int64(0))
	require.Len(t, rep.Errors, 1)
	require.Equal(t, rep.Errors["transport"]*10, rep.FailedSamples)
	require.Len(t, rep.ErrorMessages, maxErrorMessages)
	require.Contains(t, rep.ErrorMessages[0], "connection refused")
	require.Equal(t, int64(-1), rep.ReadBackSamples)
}

func TestRunRate(t *testing.T) {
	s := newTestServer(t, ProtocolRW1, func(int64) int { return 0 })
	cfg := testConfig(s)
	cfg.Rate = 5000
	cfg.Duration = time.Second
	cfg.ReadBackURL = ""
	rep, err := Run(context.Background(), cfg, nil)
	require.NoError(t, err)
	// Pacing never lets the load run faster than the rate (unlimited sending is
	// far above it; pacing is per request of 100 samples, hence the margin). A
	// busy machine may well run slower, so there is no lower bound beyond some
	// progress.
	require.Greater(t, rep.AckedSamplesPerSecond, 0.0)
	require.Less(t, rep.AckedSamplesPerSecond, 7500.0)
}

func TestRunInterrupted(t *testing.T) {
	s := newTestServer(t, ProtocolRW1, func(int64) int { return 0 })
	cfg := testConfig(s)
	cfg.Warmup = time.Hour
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(200*time.Millisecond, cancel)
	start := time.Now()
	rep, err := Run(ctx, cfg, nil)
	require.NoError(t, err)
	require.Less(t, time.Since(start), 10*time.Second)
	require.Zero(t, rep.DurationSeconds)
	require.Zero(t, rep.AckedSamples)
	require.Zero(t, rep.AckedSamplesPerSecond)
	require.Equal(t, int64(-1), rep.ReadBackSamples, "no read-back after an interruption")
	s.mu.Lock()
	defer s.mu.Unlock()
	require.Equal(t, s.accepted, rep.AckedSamplesTotal)
	require.Empty(t, s.problems)
}

func TestRunMeasuresServer(t *testing.T) {
	s := newTestServer(t, ProtocolRW1, func(int64) int { return 0 })
	cfg := testConfig(s)
	cfg.ReadBackURL = ""
	cfg.PIDs = []int{os.Getpid()} // the server runs in the test process
	rep, err := Run(context.Background(), cfg, nil)
	require.NoError(t, err)
	require.Greater(t, rep.ServerCPUSeconds, 0.0)
	require.Greater(t, rep.ServerRSSBytes, int64(1<<20))
	require.InDelta(t, float64(rep.AckedSamples)/rep.ServerCPUSeconds, rep.ServerSamplesPerCPUSecond, 1)
	// The client is part of the same process.
	require.GreaterOrEqual(t, rep.ServerCPUSeconds+0.02, rep.ClientCPUSeconds)

	cfg.PIDs = []int{1 << 30}
	_, err = Run(context.Background(), cfg, nil)
	require.Error(t, err, "a server process that does not exist")
}

// TestReportJSON pins the keys of the JSON report, which other tools parse.
func TestReportJSON(t *testing.T) {
	rep := newReport(&Config{WorkloadConfig: WorkloadConfig{Protocol: ProtocolRW1}}, 1, nil)
	rep.Errors, rep.ErrorMessages = map[string]int64{}, []string{}
	var b strings.Builder
	require.NoError(t, rep.WriteJSON(&b))
	var m map[string]any
	require.NoError(t, json.Unmarshal([]byte(b.String()), &m))
	var keys []string
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	want := []string{
		"protocol", "urls", "series", "batch_size", "concurrency", "tenants", "scrape_interval_seconds",
		"warmup_seconds", "duration_seconds", "rounds", "first_timestamp_ms", "last_timestamp_ms",
		"acked_samples", "acked_samples_total", "acked_samples_per_second", "requests",
		"latency_p50_seconds", "latency_p99_seconds", "errors", "failed_samples", "error_messages",
		"wire_bytes_per_sample", "client_cpu_seconds", "server_cpu_seconds", "server_rss_bytes",
		"server_samples_per_cpu_second", "active_series", "series_created", "read_back_samples", "read_back_complete",
	}
	slices.Sort(want)
	require.Equal(t, want, keys)
	require.Equal(t, float64(-1), m["read_back_samples"])
	require.Equal(t, map[string]any{}, m["errors"])
	require.Equal(t, []any{}, m["error_messages"])
}
