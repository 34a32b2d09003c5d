package querier_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"

	"github.com/stratametrics/strata/querier"
)

// testRuler is an HTTP server that answers like a ruler: /api/v1/rules and /api/v1/alerts with
// canned bodies, under an optional path prefix. It records the query strings it receives.
type testRuler struct {
	*httptest.Server
	mu      sync.Mutex
	queries []string
}

func newTestRuler(t *testing.T, prefix string, code int, rules, alerts string) *testRuler {
	t.Helper()
	tr := &testRuler{}
	mux := http.NewServeMux()
	serve := func(body string) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			tr.mu.Lock()
			tr.queries = append(tr.queries, r.URL.RawQuery)
			tr.mu.Unlock()
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(code)
			_, _ = io.WriteString(w, body)
		}
	}
	mux.HandleFunc("GET "+prefix+"/api/v1/rules", serve(rules))
	mux.HandleFunc("GET "+prefix+"/api/v1/alerts", serve(alerts))
	tr.Server = httptest.NewServer(mux)
	t.Cleanup(tr.Close)
	return tr
}

func (tr *testRuler) seen() []string {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	return append([]string(nil), tr.queries...)
}

// downURL returns the URL of a server that is no longer listening.
func downURL(t *testing.T) string {
	t.Helper()
	s := httptest.NewServer(http.NotFoundHandler())
	s.Close()
	return s.URL
}

func newTestRulesProxy(t *testing.T, opts querier.RulesOptions, reg prometheus.Registerer) *http.ServeMux {
	t.Helper()
	p, err := querier.NewRulesProxy(opts, reg, nil)
	require.NoError(t, err)
	t.Cleanup(p.Close)
	mux := http.NewServeMux()
	p.Register(mux)
	return mux
}

type testEnvelope struct {
	Status    string          `json:"status"`
	Data      json.RawMessage `json:"data"`
	ErrorType string          `json:"errorType"`
	Error     string          `json:"error"`
	Warnings  []string        `json:"warnings"`
}

func rulesGet(t *testing.T, mux *http.ServeMux, target string) (int, string, testEnvelope) {
	t.Helper()
	w := httptest.NewRecorder()
	mux.ServeHTTP(w, httptest.NewRequest(http.MethodGet, target, nil))
	var env testEnvelope
	require.NoError(t, json.Unmarshal(w.Body.Bytes(), &env), w.Body.String())
	require.Equal(t, "application/json", w.Header().Get("Content-Type"))
	return w.Code, w.Body.String(), env
}

// rulerGroups builds a ruler's rules answer, in ruler/api.go's shape.
func rulerGroups(groups ...string) string {
	return `{"status":"success","data":{"groups":[` + strings.Join(groups, ",") + `]}}`
}

func rulerAlerts(alerts ...string) string {
	return `{"status":"success","data":{"alerts":[` + strings.Join(alerts, ",") + `]}}`
}

func testAlert(labels, state, activeAt, value string) string {
	return `{"labels":` + labels + `,"annotations":{"summary":"s<b>"},"state":"` + state +
		`","activeAt":"` + activeAt + `","value":"` + value + `"}`
}

func testGroup(file, name, lastEval, ruler string, alerts ...string) string {
	return `{"name":"` + name + `","file":"` + file + `","rules":[` +
		`{"state":"firing","name":"HighLoad","query":"load > 1","duration":60,"labels":{"severity":"page"},` +
		`"annotations":{},"alerts":[` + strings.Join(alerts, ",") + `],"health":"ok","evaluationTime":0.001,` +
		`"lastEvaluation":"` + lastEval + `","type":"alerting"},` +
		`{"name":"job:up:sum","query":"sum by (job) (up)","labels":{},"health":"ok","evaluationTime":0.002,` +
		`"lastEvaluation":"` + lastEval + `","type":"recording"}],` +
		`"interval":30,"limit":0,"evaluationTime":0.003,"lastEvaluation":"` + lastEval + `","x_ruler":"` + ruler + `"}`
}

func TestRulesProxyGroups(t *testing.T) {
	const (
		older = "2024-05-01T10:00:00Z"
		newer = "2024-05-01T10:00:30.5Z"
	)
	// a and b are an HA pair: same group, with replica labels on the alerts. b evaluated last,
	// and its alert is reported twice, by two Prometheus replicas of the same data. a also has a
	// group of its own.
	a := newTestRuler(t, "", http.StatusOK, rulerGroups(
		testGroup("/rules/b.yml", "load", older, "a",
			testAlert(`{"alertname":"HighLoad","instance":"h1","replica":"a"}`, "pending", older, "1.5e+00")),
		testGroup("/rules/a.yml", "zz", older, "a"),
	), rulerAlerts())
	b := newTestRuler(t, "", http.StatusOK, rulerGroups(
		testGroup("/rules/b.yml", "load", newer, "b",
			testAlert(`{"alertname":"HighLoad","instance":"h1","replica":"b","prometheus_replica":"p1"}`, "pending", older, "2e+00"),
			testAlert(`{"alertname":"HighLoad","instance":"h1","replica":"b","prometheus_replica":"p0"}`, "firing", newer, "3e+00")),
		testGroup("/rules/b.yml", "cpu", older, "b"),
	), rulerAlerts())

	for _, order := range [][]string{{a.URL, b.URL}, {b.URL, a.URL}} {
		mux := newTestRulesProxy(t, querier.RulesOptions{Rulers: order}, nil)
		code, body, env := rulesGet(t, mux, "/api/v1/rules")
		require.Equal(t, http.StatusOK, code, body)
		require.Equal(t, "success", env.Status)
		require.Empty(t, env.Warnings)

		var data struct {
			Groups []map[string]any `json:"groups"`
		}
		require.NoError(t, json.Unmarshal(env.Data, &data))
		var got [][3]any
		for _, g := range data.Groups {
			got = append(got, [3]any{g["file"], g["name"], g["x_ruler"]})
		}
		require.Equal(t, [][3]any{
			{"/rules/a.yml", "zz", "a"},
			{"/rules/b.yml", "cpu", "b"},
			{"/rules/b.yml", "load", "b"},
		}, got, "groups sorted by file then name; the copy evaluated last kept")

		load := data.Groups[2]
		require.Equal(t, newer, load["lastEvaluation"])
		rules := load["rules"].([]any)
		require.Len(t, rules, 2)
		alerting, recording := rules[0].(map[string]any), rules[1].(map[string]any)
		require.Equal(t, "recording", recording["type"])
		require.NotContains(t, recording, "alerts")
		require.Equal(t, "load > 1", alerting["query"])
		require.Equal(t, map[string]any{"severity": "page"}, alerting["labels"])
		require.Equal(t, []any{map[string]any{
			"labels":      map[string]any{"alertname": "HighLoad", "instance": "h1"},
			"annotations": map[string]any{"summary": "s<b>"},
			"state":       "firing",
			"activeAt":    newer,
			"value":       "3e+00",
		}}, alerting["alerts"], "replica labels removed, firing kept")
	}
}

func TestRulesProxyAlerts(t *testing.T) {
	const (
		t1 = "2024-05-01T10:00:00Z"
		t2 = "2024-05-01T10:01:00Z"
	)
	a := newTestRuler(t, "", http.StatusOK, rulerGroups(), rulerAlerts(
		testAlert(`{"alertname":"X","replica":"a"}`, "pending", t1, "1e+00"),
		testAlert(`{"alertname":"Y","ruler_replica":"a"}`, "pending", t2, "2e+00"),
		testAlert(`{"alertname":"Z","job":"only-a","replica":"a"}`, "firing", t1, "3e+00"),
	))
	b := newTestRuler(t, "", http.StatusOK, rulerGroups(), rulerAlerts(
		testAlert(`{"alertname":"Y","ruler_replica":"b"}`, "pending", t1, "4e+00"),
		testAlert(`{"alertname":"X","replica":"b"}`, "firing", t2, "5e+00"),
	))
	reg := prometheus.NewRegistry()
	mux := newTestRulesProxy(t, querier.RulesOptions{
		Rulers:        []string{a.URL, b.URL},
		ReplicaLabels: []string{"replica", "ruler_replica"},
	}, reg)
	code, body, env := rulesGet(t, mux, "/api/v1/alerts")
	require.Equal(t, http.StatusOK, code, body)
	require.JSONEq(t, `{"alerts":[
		{"labels":{"alertname":"X"},"annotations":{"summary":"s<b>"},"state":"firing","activeAt":"`+t2+`","value":"5e+00"},
		{"labels":{"alertname":"Y"},"annotations":{"summary":"s<b>"},"state":"pending","activeAt":"`+t1+`","value":"4e+00"},
		{"labels":{"alertname":"Z","job":"only-a"},"annotations":{"summary":"s<b>"},"state":"firing","activeAt":"`+t1+`","value":"3e+00"}
	]}`, string(env.Data))
	requireRulesRequests(t, reg, 2, 0)
}

// requireRulesRequests checks strata_querier_rules_requests_total in reg.
func requireRulesRequests(t *testing.T, reg *prometheus.Registry, success, failed int) {
	t.Helper()
	want := fmt.Sprintf(`# HELP strata_querier_rules_requests_total Requests from the querier to rulers for their rules or alerts, by result.
# TYPE strata_querier_rules_requests_total counter
strata_querier_rules_requests_total{result="error"} %d
strata_querier_rules_requests_total{result="success"} %d
`, failed, success)
	require.NoError(t, testutil.GatherAndCompare(reg, strings.NewReader(want), "strata_querier_rules_requests_total"))
}

func TestRulesProxyForwardsQuery(t *testing.T) {
	r := newTestRuler(t, "/ruler", http.StatusOK, rulerGroups(), rulerAlerts())
	mux := newTestRulesProxy(t, querier.RulesOptions{Rulers: []string{r.URL + "/ruler/"}}, nil)
	const q = "type=alert&rule_group%5B%5D=load&rule_name%5B%5D=HighLoad&exclude_alerts=true&match%5B%5D=%7Bseverity%3D%22page%22%7D"
	code, body, _ := rulesGet(t, mux, "/api/v1/rules?"+q)
	require.Equal(t, http.StatusOK, code, body)
	code, body, _ = rulesGet(t, mux, "/api/v1/alerts?x=1")
	require.Equal(t, http.StatusOK, code, body)
	require.Equal(t, []string{q, "x=1"}, r.seen())
}

func TestRulesProxyPartialFailure(t *testing.T) {
	ok := newTestRuler(t, "", http.StatusOK,
		rulerGroups(testGroup("/rules/a.yml", "g", "2024-05-01T10:00:00Z", "ok")),
		rulerAlerts(testAlert(`{"alertname":"X"}`, "firing", "2024-05-01T10:00:00Z", "1e+00")))
	for _, tc := range []struct {
		name string
		url  func(t *testing.T) string
		want string
	}{
		{"unreachable", downURL, "connection refused"},
		{"status 500 text", func(t *testing.T) string {
			return newTestRuler(t, "", http.StatusInternalServerError, "rule manager broke\n", "rule manager broke\n").URL
		}, "500 Internal Server Error: rule manager broke"},
		{"status 503 envelope", func(t *testing.T) string {
			env := `{"status":"error","errorType":"unavailable","error":"not ready"}`
			return newTestRuler(t, "", http.StatusServiceUnavailable, env, env).URL
		}, "503 Service Unavailable: unavailable: not ready"},
		{"bad JSON", func(t *testing.T) string {
			return newTestRuler(t, "", http.StatusOK, `{"status":"success","data":{"groups":[{"name":1}]}}`, `{"status":"success","data":{"alerts":[{"labels":["a"]}]}}`).URL
		}, "decode"},
		{"not JSON", func(t *testing.T) string {
			return newTestRuler(t, "", http.StatusOK, "<html>", "<html>").URL
		}, "decode /api/v1/"},
		{"hangs", func(t *testing.T) string {
			s := httptest.NewServer(http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) { <-r.Context().Done() }))
			t.Cleanup(s.Close)
			return s.URL
		}, "context deadline exceeded"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			bad := tc.url(t)
			reg := prometheus.NewRegistry()
			mux := newTestRulesProxy(t, querier.RulesOptions{Rulers: []string{bad, ok.URL}, Timeout: time.Second}, reg)

			code, body, env := rulesGet(t, mux, "/api/v1/rules")
			require.Equal(t, http.StatusOK, code, body)
			require.Contains(t, string(env.Data), `"x_ruler":"ok"`)
			require.Len(t, env.Warnings, 1)
			require.Contains(t, env.Warnings[0], "ruler "+bad+": ")
			require.Contains(t, env.Warnings[0], tc.want)

			code, body, env = rulesGet(t, mux, "/api/v1/alerts")
			require.Equal(t, http.StatusOK, code, body)
			require.Contains(t, string(env.Data), `"alertname":"X"`)
			require.Len(t, env.Warnings, 1)
			require.Contains(t, env.Warnings[0], "ruler "+bad+": ")

			requireRulesRequests(t, reg, 2, 2)
		})
	}
}

func TestRulesProxyAllFail(t *testing.T) {
	down := downURL(t)
	broken := newTestRuler(t, "", http.StatusInternalServerError, "boom", "boom")
	mux := newTestRulesProxy(t, querier.RulesOptions{Rulers: []string{down, broken.URL}}, nil)
	for _, path := range []string{"/api/v1/rules", "/api/v1/alerts"} {
		code, body, env := rulesGet(t, mux, path)
		require.Equal(t, http.StatusServiceUnavailable, code, body)
		require.Equal(t, "error", env.Status)
		require.Equal(t, "unavailable", env.ErrorType)
		require.Contains(t, env.Error, "no ruler answered")
		require.Contains(t, env.Error, "ruler "+down+": ")
		require.Contains(t, env.Error, "ruler "+broken.URL+": ")
		require.Nil(t, env.Data)
	}

	// Rulers that all reject the request agree that it is bad: 400, as one ruler answers.
	env := `{"status":"error","errorType":"bad_data","error":"invalid parameter \"match[]\""}`
	picky := newTestRuler(t, "", http.StatusBadRequest, env, env)
	mux = newTestRulesProxy(t, querier.RulesOptions{Rulers: []string{picky.URL}}, nil)
	code, body, got := rulesGet(t, mux, "/api/v1/rules?match[]=%7B")
	require.Equal(t, http.StatusBadRequest, code, body)
	require.Equal(t, "bad_data", got.ErrorType)
	require.Contains(t, got.Error, `invalid parameter "match[]"`)
}

func TestRulesProxyNoRulers(t *testing.T) {
	mux := newTestRulesProxy(t, querier.RulesOptions{}, nil)
	code, body, _ := rulesGet(t, mux, "/api/v1/rules")
	require.Equal(t, http.StatusOK, code)
	require.Equal(t, `{"status":"success","data":{"groups":[]}}`, body)
	code, body, _ = rulesGet(t, mux, "/api/v1/alerts?type=alert")
	require.Equal(t, http.StatusOK, code)
	require.Equal(t, `{"status":"success","data":{"alerts":[]}}`, body)

	w := httptest.NewRecorder()
	mux.ServeHTTP(w, httptest.NewRequest(http.MethodPost, "/api/v1/rules", nil))
	require.Equal(t, http.StatusMethodNotAllowed, w.Code)
}

func TestNewRulesProxyURLs(t *testing.T) {
	for _, tc := range []struct {
		rulers  []string
		wantErr string
	}{
		{rulers: []string{"http://ruler:10903", "https://ruler-b:10903/prefix/", "http://user:pw@[::1]:10903"}},
		{rulers: []string{"ruler:10903"}, wantErr: `ruler URL "ruler:10903": scheme must be http or https`},
		{rulers: []string{"ruler"}, wantErr: `ruler URL "ruler": scheme must be http or https`},
		{rulers: []string{"ftp://ruler:10903"}, wantErr: "scheme must be http or https"},
		{rulers: []string{"http://"}, wantErr: `ruler URL "http://": no host`},
		{rulers: []string{"http:ruler"}, wantErr: "no host"},
		{rulers: []string{"http://ruler:10903/?x=1"}, wantErr: "must not have a query or fragment"},
		{rulers: []string{"http://ruler:10903#f"}, wantErr: "must not have a query or fragment"},
		{rulers: []string{"http://ru ler:10903"}, wantErr: `parse ruler URL "http://ru ler:10903"`},
		{rulers: []string{"http://ruler:10903", "http://ruler:10903/"}, wantErr: `ruler URL "http://ruler:10903/" given twice`},
	} {
		t.Run(strings.Join(tc.rulers, ","), func(t *testing.T) {
			p, err := querier.NewRulesProxy(querier.RulesOptions{Rulers: tc.rulers}, nil, nil)
			if tc.wantErr != "" {
				require.ErrorContains(t, err, tc.wantErr)
				return
			}
			require.NoError(t, err)
			p.Close()
		})
	}
}

// rulesBodyTransport answers every request with a fixed 200 body, so that the fuzz test reaches
// the decoder without a network.
type rulesBodyTransport []byte

func (b rulesBodyTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	return &http.Response{
		StatusCode: http.StatusOK,
		Status:     "200 OK",
		Header:     http.Header{"Content-Type": {"application/json"}},
		Body:       io.NopCloser(bytes.NewReader(b)),
		Request:    r,
	}, nil
}

func FuzzRulesProxy(f *testing.F) {
	const t0 = "2024-05-01T10:00:00Z"
	f.Add([]byte(rulerGroups(testGroup("/f.yml", "g", t0, "a", testAlert(`{"alertname":"X","replica":"a"}`, "firing", t0, "1e+00")))))
	f.Add([]byte(rulerAlerts(testAlert(`{"alertname":"X","replica":"a"}`, "pending", t0, "1e+00"))))
	f.Add([]byte(`{"status":"success","data":{"groups":[{"rules":[{"alerts":null}]}],"alerts":null}}`))
	f.Add([]byte(`{"status":"success","data":null,"warnings":["w"]}`))
	f.Add([]byte(`{"status":"error","error":"x"}`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, body []byte) {
		p, err := querier.NewRulesProxy(querier.RulesOptions{
			Rulers: []string{"http://a:1", "http://b:2"},
			Client: &http.Client{Transport: rulesBodyTransport(body)},
		}, nil, nil)
		require.NoError(t, err)
		mux := http.NewServeMux()
		p.Register(mux)
		for _, path := range []string{"/api/v1/rules", "/api/v1/alerts"} {
			w := httptest.NewRecorder()
			mux.ServeHTTP(w, httptest.NewRequest(http.MethodGet, path, nil))
			require.Contains(t, []int{http.StatusOK, http.StatusServiceUnavailable}, w.Code, w.Body.String())
			require.True(t, json.Valid(w.Body.Bytes()), w.Body.String())
		}
	})
}
