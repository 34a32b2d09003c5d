package sidecar

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"sync"
	"testing"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/config"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql/parser"
	"github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/storage/remote"
	"github.com/prometheus/prometheus/tsdb"
	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"
)

// testPrometheus is a Prometheus server in the test process: Prometheus' own
// remote-read handler over a real TSDB, and the few endpoints of its HTTP API
// the sidecar uses, answered from the same TSDB as Prometheus answers them.
// The e2e tests run the sidecar against a real Prometheus binary.
type testPrometheus struct {
	*httptest.Server
	db *tsdb.DB

	mtx    sync.Mutex
	ext    labels.Labels
	flags  map[string]string
	ready  bool
	series int // requests to /api/v1/series
}

func newTestPrometheus(t *testing.T, db *tsdb.DB, ext labels.Labels) *testPrometheus {
	t.Helper()
	p := &testPrometheus{db: db, ext: ext, ready: true, flags: map[string]string{
		minBlockDurationFlag: "2h",
		maxBlockDurationFlag: "2h",
	}}
	cfg := func() config.Config {
		p.mtx.Lock()
		defer p.mtx.Unlock()
		return config.Config{GlobalConfig: config.GlobalConfig{ExternalLabels: p.ext}}
	}
	mux := http.NewServeMux()
	mux.Handle("/api/v1/read", remote.NewReadHandler(nil, nil, db, cfg, 0, 1, 1<<20))
	mux.HandleFunc("/-/ready", func(w http.ResponseWriter, _ *http.Request) {
		p.mtx.Lock()
		defer p.mtx.Unlock()
		if !p.ready {
			http.Error(w, "Service Unavailable", http.StatusServiceUnavailable)
		}
	})
	mux.HandleFunc("/api/v1/status/config", func(w http.ResponseWriter, _ *http.Request) {
		c := cfg()
		out, err := yaml.Marshal(map[string]any{"global": map[string]any{"scrape_interval": "15s", "external_labels": c.GlobalConfig.ExternalLabels.Map()}})
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		writeAPI(w, map[string]string{"yaml": string(out)})
	})
	mux.HandleFunc("/api/v1/status/flags", func(w http.ResponseWriter, _ *http.Request) {
		p.mtx.Lock()
		defer p.mtx.Unlock()
		writeAPI(w, p.flags)
	})
	mux.HandleFunc("/metrics", func(w http.ResponseWriter, _ *http.Request) {
		mint, err := db.StartTime()
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		_, _ = fmt.Fprintf(w, "# TYPE %s gauge\n%s_seconds %g\n%s %g\n", lowestTimestampMetric, lowestTimestampMetric, float64(mint)/1000, lowestTimestampMetric, float64(mint))
	})
	mux.HandleFunc("/api/v1/labels", func(w http.ResponseWriter, r *http.Request) {
		p.answer(w, r, func(q storage.Querier, ms []*labels.Matcher) (any, error) {
			names, _, err := q.LabelNames(r.Context(), nil, ms...)
			return names, err
		})
	})
	mux.HandleFunc("/api/v1/label/{name}/values", func(w http.ResponseWriter, r *http.Request) {
		p.answer(w, r, func(q storage.Querier, ms []*labels.Matcher) (any, error) {
			values, _, err := q.LabelValues(r.Context(), r.PathValue("name"), nil, ms...)
			return values, err
		})
	})
	mux.HandleFunc("/api/v1/series", func(w http.ResponseWriter, r *http.Request) {
		p.mtx.Lock()
		p.series++
		p.mtx.Unlock()
		p.answer(w, r, func(q storage.Querier, ms []*labels.Matcher) (any, error) {
			set := q.Select(r.Context(), true, nil, ms...)
			out := []map[string]string{}
			for set.Next() {
				out = append(out, set.At().Labels().Map())
			}
			return out, set.Err()
		})
	})
	p.Server = httptest.NewServer(mux)
	t.Cleanup(p.Close)
	return p
}

func (p *testPrometheus) set(f func(p *testPrometheus)) {
	p.mtx.Lock()
	defer p.mtx.Unlock()
	f(p)
}

// answer runs a metadata request as Prometheus' API does: over [start, end]
// (everything by default), with at most one match[] selector, which must
// have a matcher that does not match the empty string.
func (p *testPrometheus) answer(w http.ResponseWriter, r *http.Request, f func(storage.Querier, []*labels.Matcher) (any, error)) {
	mint, maxt := int64(math.MinInt64), int64(math.MaxInt64)
	for name, bound := range map[string]*int64{"start": &mint, "end": &maxt} {
		if s := r.FormValue(name); s != "" {
			sec, err := strconv.ParseFloat(s, 64)
			if err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
			*bound = int64(math.Round(sec * 1000))
		}
	}
	var ms []*labels.Matcher
	switch sels := r.Form["match[]"]; len(sels) {
	case 0:
		ms = []*labels.Matcher{labels.MustNewMatcher(labels.MatchRegexp, model.MetricNameLabel, ".+")}
	case 1:
		var err error
		ms, err = parser.NewParser(parser.Options{}).ParseMetricSelector(sels[0])
		if err == nil && !slices.ContainsFunc(ms, func(m *labels.Matcher) bool { return !m.Matches("") }) {
			err = fmt.Errorf("vector selector must contain at least one non-empty matcher")
		}
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
	default:
		http.Error(w, "the test server takes one match[]", http.StatusBadRequest)
		return
	}
	q, err := p.db.Querier(mint, maxt)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	defer func() { _ = q.Close() }()
	data, err := f(q, ms)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	if ss, ok := data.([]string); ok && ss == nil {
		data = []string{}
	}
	writeAPI(w, data)
}

func writeAPI(w http.ResponseWriter, data any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]any{"status": "success", "data": data})
}

// runSidecar runs s until the test ends and waits until it is ready.
func runSidecar(t *testing.T, s *Sidecar) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		require.NoError(t, <-done)
	})
	require.Eventually(t, s.Ready, testTimeout, testPoll, "the sidecar becomes ready")
}
