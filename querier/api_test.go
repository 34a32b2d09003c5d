package querier

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/exemplar"
	"github.com/prometheus/prometheus/model/histogram"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/metadata"
	"github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/tsdb"
	"github.com/prometheus/prometheus/util/annotations"
	"github.com/stretchr/testify/require"
)

// apiTestT0 is the first sample time of the test data, in seconds.
const apiTestT0 = 1700000000

// apiTestDB opens a real TSDB holding:
//   - up{instance="a",job="node"} = 1 and up{instance="b",job="node"} = 0 at T0, T0+15s ... T0+60s;
//   - http_requests_total{code="200",job="api"} = 0, 10, ... 40 at the same times;
//   - weird{v="<&>\"\\\n"} = 1e-7 at T0;
//   - old_metric{job="old"} = 7 at T0-1h;
//   - hist_metric{job="h"}, a native histogram with count 5 and sum 4.5, at T0 and T0+15s;
//   - an exemplar {trace_id="abc"} = 40 on http_requests_total at T0+60s.
func apiTestDB(t *testing.T) *tsdb.DB {
	t.Helper()
	opts := tsdb.DefaultOptions()
	opts.EnableExemplarStorage = true
	opts.MaxExemplars = 100
	db, err := tsdb.Open(t.TempDir(), nil, nil, opts, nil)
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, db.Close()) })

	app := db.Appender(context.Background())
	ms := func(sec int64) int64 { return sec * 1000 }
	upA := labels.FromStrings("__name__", "up", "instance", "a", "job", "node")
	upB := labels.FromStrings("__name__", "up", "instance", "b", "job", "node")
	reqs := labels.FromStrings("__name__", "http_requests_total", "code", "200", "job", "api")
	for i := int64(0); i <= 4; i++ {
		ts := ms(apiTestT0 + 15*i)
		_, err = app.Append(0, upA, ts, 1)
		require.NoError(t, err)
		_, err = app.Append(0, upB, ts, 0)
		require.NoError(t, err)
		_, err = app.Append(0, reqs, ts, float64(10*i))
		require.NoError(t, err)
	}
	_, err = app.Append(0, labels.FromStrings("__name__", "weird", "v", "<&>\"\\\n"), ms(apiTestT0), 1e-7)
	require.NoError(t, err)
	_, err = app.Append(0, labels.FromStrings("__name__", "old_metric", "job", "old"), ms(apiTestT0-3600), 7)
	require.NoError(t, err)
	_, err = app.AppendExemplar(0, reqs, exemplar.Exemplar{
		Labels: labels.FromStrings("trace_id", "abc"), Value: 40, Ts: ms(apiTestT0 + 60), HasTs: true,
	})
	require.NoError(t, err)
	// Schema 0: bucket 0 is (0.5, 1], bucket 1 is (1, 2]; the zero bucket is [-0.001, 0.001].
	h := &histogram.Histogram{
		Schema:          0,
		ZeroThreshold:   0.001,
		ZeroCount:       2,
		Count:           5,
		Sum:             4.5,
		PositiveSpans:   []histogram.Span{{Offset: 0, Length: 2}},
		PositiveBuckets: []int64{1, 1}, // Deltas: counts 1 and 2.
	}
	histLabels := labels.FromStrings("__name__", "hist_metric", "job", "h")
	for i := int64(0); i <= 1; i++ {
		_, err = app.AppendHistogram(0, histLabels, ms(apiTestT0+15*i), h.Copy(), nil)
		require.NoError(t, err)
	}
	require.NoError(t, app.Commit())
	return db
}

// apiTestServer serves the API over db with the given options.
func apiTestServer(t *testing.T, q storage.Queryable, opts APIOptions) http.Handler {
	t.Helper()
	reg := prometheus.NewRegistry()
	mux := http.NewServeMux()
	NewAPI(q, opts, reg, nil).Register(mux)
	return mux
}

// apiDo sends a GET with params, or a form POST when post is set, and returns the status and
// body.
func apiDo(t *testing.T, h http.Handler, path string, params url.Values, post bool) (int, string) {
	t.Helper()
	return apiDoCtx(t, context.Background(), h, path, params, post)
}

func apiDoCtx(t *testing.T, ctx context.Context, h http.Handler, path string, params url.Values, post bool) (int, string) {
	t.Helper()
	var req *http.Request
	if post {
		req = httptest.NewRequestWithContext(ctx, http.MethodPost, path, strings.NewReader(params.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	} else {
		req = httptest.NewRequestWithContext(ctx, http.MethodGet, path+"?"+params.Encode(), nil)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != http.StatusNoContent {
		require.Equal(t, "application/json", rec.Header().Get("Content-Type"))
	}
	return rec.Code, rec.Body.String()
}

func apiParams(kv ...string) url.Values {
	v := url.Values{}
	for i := 0; i < len(kv); i += 2 {
		v.Add(kv[i], kv[i+1])
	}
	return v
}

func TestAPIQuery(t *testing.T) {
	db := apiTestDB(t)
	h := apiTestServer(t, db, DefaultAPIOptions())

	const (
		upA = `{"__name__":"up","instance":"a","job":"node"}`
		upB = `{"__name__":"up","instance":"b","job":"node"}`
	)
	for _, tc := range []struct {
		name     string
		path     string
		params   url.Values
		post     bool
		wantCode int
		want     string
	}{
		{
			name:     "vector",
			path:     "/api/v1/query",
			params:   apiParams("query", "sort_desc(up)", "time", "1700000060"),
			wantCode: 200,
			want:     `{"status":"success","data":{"resultType":"vector","result":[{"metric":` + upA + `,"value":[1700000060,"1"]},{"metric":` + upB + `,"value":[1700000060,"0"]}]}}`,
		},
		{
			name:     "vector at RFC 3339 time with milliseconds",
			path:     "/api/v1/query",
			params:   apiParams("query", `up{instance="a"}`, "time", "2023-11-14T22:14:20.1Z"),
			wantCode: 200,
			want:     `{"status":"success","data":{"resultType":"vector","result":[{"metric":` + upA + `,"value":[1700000060.100,"1"]}]}}`,
		},
		{
			name:     "vector by POST form",
			path:     "/api/v1/query",
			params:   apiParams("query", `up{instance="b"}`, "time", "1700000060.5"),
			post:     true,
			wantCode: 200,
			want:     `{"status":"success","data":{"resultType":"vector","result":[{"metric":` + upB + `,"value":[1700000060.500,"0"]}]}}`,
		},
		{
			name:     "special float values",
			path:     "/api/v1/query",
			params:   apiParams("query", `sort(label_replace(up{instance="a"} / 0, "v", "pinf", "", "") or label_replace(-up{instance="a"} / 0, "v", "minf", "", "") or label_replace(up{instance="b"} / 0, "v", "nan", "", ""))`, "time", "1700000060"),
			wantCode: 200,
			want:     `{"status":"success","data":{"resultType":"vector","result":[{"metric":{"instance":"a","job":"node","v":"minf"},"value":[1700000060,"-Inf"]},{"metric":{"instance":"a","job":"node","v":"pinf"},"value":[1700000060,"+Inf"]},{"metric":{"instance":"b","job":"node","v":"nan"},"value":[1700000060,"NaN"]}]}}`,
		},
		{
			name:     "tiny value and unescaped label characters",
			path:     "/api/v1/query",
			params:   apiParams("query", "weird", "time", "1700000000"),
			wantCode: 200,
			want:     `{"status":"success","data":{"resultType":"vector","result":[{"metric":{"__name__":"weird","v":"<&>\"\\\n"},"value":[1700000000,"1e-07"]}]}}`,
		},
		{
			name:     "matrix from range selector",
			path:     "/api/v1/query",
			params:   apiParams("query", `up{instance="a"}[30s]`, "time", "1700000060"),
			wantCode: 200,
			want:     `{"status":"success","data":{"resultType":"matrix","result":[{"metric":` + upA + `,"values":[[1700000045,"1"],[1700000060,"1"]]}]}}`,
		},
		{
			name:     "scalar",
			path:     "/api/v1/query",
			params:   apiParams("query", "1+1", "time", "1700000000.001"),
			wantCode: 200,
			want:     `{"status":"success","data":{"resultType":"scalar","result":[1700000000.001,"2"]}}`,
		},
		{
			name:     "string",
			path:     "/api/v1/query",
			params:   apiParams("query", `"a<b"`, "time", "1700000000"),
			wantCode: 200,
			want:     `{"status":"success","data":{"resultType":"string","result":[1700000000,"a\u003cb"]}}`,
		},
		{
			name:     "native histogram sample",
			path:     "/api/v1/query",
			params:   apiParams("query", "hist_metric", "time", "1700000000"),
			wantCode: 200,
			want:     `{"status":"success","data":{"resultType":"vector","result":[{"metric":{"__name__":"hist_metric","job":"h"},"histogram":[1700000000,{"count":"5","sum":"4.5","buckets":[[3,"-0.001","0.001","2"],[0,"0.5","1","1"],[0,"1","2","2"]]}]}]}}`,
		},
		{
			name:     "native histogram series",
			path:     "/api/v1/query_range",
			params:   apiParams("query", "hist_metric", "start", "1700000000", "end", "1700000015", "step", "15s"),
			wantCode: 200,
			want:     `{"status":"success","data":{"resultType":"matrix","result":[{"metric":{"__name__":"hist_metric","job":"h"},"histograms":[[1700000000,{"count":"5","sum":"4.5","buckets":[[3,"-0.001","0.001","2"],[0,"0.5","1","1"],[0,"1","2","2"]]}],[1700000015,{"count":"5","sum":"4.5","buckets":[[3,"-0.001","0.001","2"],[0,"0.5","1","1"],[0,"1","2","2"]]}]]}]}}`,
		},
		{
			name:     "range query",
			path:     "/api/v1/query_range",
			params:   apiParams("query", "up", "start", "1700000000", "end", "2023-11-14T22:13:50Z", "step", "15"),
			wantCode: 200,
			want:     `{"status":"success","data":{"resultType":"matrix","result":[{"metric":` + upA + `,"values":[[1700000000,"1"],[1700000015,"1"],[1700000030,"1"]]},{"metric":` + upB + `,"values":[[1700000000,"0"],[1700000015,"0"],[1700000030,"0"]]}]}}`,
		},
		{
			name:     "range query by POST form with limit",
			path:     "/api/v1/query_range",
			params:   apiParams("query", "up", "start", "1700000000", "end", "1700000015", "step", "15s", "limit", "1"),
			post:     true,
			wantCode: 200,
			want:     `{"status":"success","data":{"resultType":"matrix","result":[{"metric":` + upA + `,"values":[[1700000000,"1"],[1700000015,"1"]]}]},"warnings":["results truncated due to limit"]}`,
		},
		{
			name:     "instant query with limit",
			path:     "/api/v1/query",
			params:   apiParams("query", "sort_desc(up)", "time", "1700000060", "limit", "1"),
			wantCode: 200,
			want:     `{"status":"success","data":{"resultType":"vector","result":[{"metric":` + upA + `,"value":[1700000060,"1"]}]},"warnings":["results truncated due to limit"]}`,
		},
		{
			name:     "warning annotation",
			path:     "/api/v1/query",
			params:   apiParams("query", `histogram_quantile(0.5, up{instance="a"})`, "time", "1700000060"),
			wantCode: 200,
			want:     `{"status":"success","data":{"resultType":"vector","result":[]},"warnings":["PromQL warning: bucket label \"le\" is missing or has a malformed value of \"\" (1:25)"]}`,
		},
		{
			name:     "info annotation",
			path:     "/api/v1/query",
			params:   apiParams("query", `rate(up{instance="a"}[1m])`, "time", "1700000060"),
			wantCode: 200,
			want:     `{"status":"success","data":{"resultType":"vector","result":[{"metric":{"instance":"a","job":"node"},"value":[1700000060,"0"]}]},"infos":["PromQL info: metric might not be a counter, name does not end in _total/_sum/_count/_bucket: \"up\" (1:6)"]}`,
		},
		{
			name:     "empty result",
			path:     "/api/v1/query",
			params:   apiParams("query", "nope", "time", "1700000060"),
			wantCode: 200,
			want:     `{"status":"success","data":{"resultType":"vector","result":[]}}`,
		},
		{
			name:     "parse error",
			path:     "/api/v1/query",
			params:   apiParams("query", "up{", "time", "1700000060"),
			wantCode: 400,
			want:     `{"status":"error","errorType":"bad_data","error":"invalid parameter \"query\": 1:4: parse error: unexpected end of input inside braces"}`,
		},
		{
			name:     "missing query",
			path:     "/api/v1/query",
			params:   apiParams("time", "1700000060"),
			wantCode: 400,
			want:     `{"status":"error","errorType":"bad_data","error":"invalid parameter \"query\": unknown position: parse error: no expression found in input"}`,
		},
		{
			name:     "bad time",
			path:     "/api/v1/query",
			params:   apiParams("query", "up", "time", "yesterday"),
			wantCode: 400,
			want:     `{"status":"error","errorType":"bad_data","error":"invalid parameter \"time\": invalid time value for 'time': cannot parse \"yesterday\" to a valid timestamp"}`,
		},
		{
			name:     "bad limit",
			path:     "/api/v1/query",
			params:   apiParams("query", "up", "limit", "-1"),
			wantCode: 400,
			want:     `{"status":"error","errorType":"bad_data","error":"invalid parameter \"limit\": limit must be non-negative"}`,
		},
		{
			name:     "bad timeout",
			path:     "/api/v1/query",
			params:   apiParams("query", "up", "timeout", "soon"),
			wantCode: 400,
			want:     `{"status":"error","errorType":"bad_data","error":"invalid parameter \"timeout\": cannot parse \"soon\" to a valid duration"}`,
		},
		{
			name:     "execution error",
			path:     "/api/v1/query",
			params:   apiParams("query", `label_replace(up, "instance", "x", "", "")`, "time", "1700000060"),
			wantCode: 422,
			want:     `{"status":"error","errorType":"execution","error":"vector cannot contain metrics with the same labelset"}`,
		},
		{
			name:     "too many points",
			path:     "/api/v1/query_range",
			params:   apiParams("query", "up", "start", "0", "end", "11001", "step", "1"),
			wantCode: 400,
			want:     `{"status":"error","errorType":"bad_data","error":"exceeded maximum resolution of 11,000 points per timeseries. Try decreasing the query resolution (?step=XX)"}`,
		},
		{
			name:     "exactly the maximum points",
			path:     "/api/v1/query_range",
			params:   apiParams("query", "1", "start", "0", "end", "11000", "step", "1"),
			wantCode: 200,
		},
		{
			name:     "zero step",
			path:     "/api/v1/query_range",
			params:   apiParams("query", "up", "start", "0", "end", "10", "step", "0"),
			wantCode: 400,
			want:     `{"status":"error","errorType":"bad_data","error":"invalid parameter \"step\": zero or negative query resolution step widths are not accepted. Try a positive integer"}`,
		},
		{
			name:     "missing step",
			path:     "/api/v1/query_range",
			params:   apiParams("query", "up", "start", "0", "end", "10"),
			wantCode: 400,
			want:     `{"status":"error","errorType":"bad_data","error":"invalid parameter \"step\": cannot parse \"\" to a valid duration"}`,
		},
		{
			name:     "end before start",
			path:     "/api/v1/query_range",
			params:   apiParams("query", "up", "start", "10", "end", "0", "step", "1"),
			wantCode: 400,
			want:     `{"status":"error","errorType":"bad_data","error":"invalid parameter \"end\": end timestamp must not be before start time"}`,
		},
		{
			name:     "missing start",
			path:     "/api/v1/query_range",
			params:   apiParams("query", "up", "end", "10", "step", "1"),
			wantCode: 400,
			want:     `{"status":"error","errorType":"bad_data","error":"invalid parameter \"start\": cannot parse \"\" to a valid timestamp"}`,
		},
		{
			name:     "lookback delta",
			path:     "/api/v1/query",
			params:   apiParams("query", `up{instance="a"}`, "time", "1700000600", "lookback_delta", "10m"),
			wantCode: 200,
			want:     `{"status":"success","data":{"resultType":"vector","result":[{"metric":` + upA + `,"value":[1700000600,"1"]}]}}`,
		},
		{
			name:     "default lookback delta",
			path:     "/api/v1/query",
			params:   apiParams("query", `up{instance="a"}`, "time", "1700000600"),
			wantCode: 200,
			want:     `{"status":"success","data":{"resultType":"vector","result":[]}}`,
		},
		{
			name:     "format query",
			path:     "/api/v1/format_query",
			params:   apiParams("query", "sum(rate(x[5m]))by(job)"),
			wantCode: 200,
			want:     `{"status":"success","data":"sum by (job) (rate(x[5m]))"}`,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, body := apiDo(t, h, tc.path, tc.params, tc.post)
			require.Equal(t, tc.wantCode, code, body)
			if tc.want != "" {
				require.Equal(t, tc.want, body)
			}
		})
	}
}

func TestAPIQueryStats(t *testing.T) {
	db := apiTestDB(t)
	h := apiTestServer(t, db, DefaultAPIOptions())

	code, body := apiDo(t, h, "/api/v1/query_range", apiParams("query", "up", "start", "1700000000", "end", "1700000015", "step", "15", "stats", "all"), false)
	require.Equal(t, http.StatusOK, code, body)
	var resp struct {
		Data struct {
			Stats struct {
				Timings map[string]any `json:"timings"`
				Samples struct {
					TotalQueryableSamples        int   `json:"totalQueryableSamples"`
					TotalQueryableSamplesPerStep []any `json:"totalQueryableSamplesPerStep"`
				} `json:"samples"`
			} `json:"stats"`
		} `json:"data"`
	}
	require.NoError(t, json.Unmarshal([]byte(body), &resp))
	require.Contains(t, resp.Data.Stats.Timings, "execTotalTime")
	require.Equal(t, 4, resp.Data.Stats.Samples.TotalQueryableSamples)
	require.Len(t, resp.Data.Stats.Samples.TotalQueryableSamplesPerStep, 2)

	_, body = apiDo(t, h, "/api/v1/query", apiParams("query", "up"), false)
	require.NotContains(t, body, `"stats"`)
}

func TestAPIQueryTimeoutAndCancel(t *testing.T) {
	db := apiTestDB(t)

	t.Run("timeout parameter", func(t *testing.T) {
		h := apiTestServer(t, db, DefaultAPIOptions())
		code, body := apiDo(t, h, "/api/v1/query", apiParams("query", "up", "timeout", "0.000000001"), false)
		require.Equal(t, http.StatusServiceUnavailable, code, body)
		require.Contains(t, body, `{"status":"error","errorType":"timeout","error":"query timed out in `)
	})
	t.Run("engine timeout", func(t *testing.T) {
		opts := DefaultAPIOptions()
		opts.Timeout = time.Nanosecond
		h := apiTestServer(t, db, opts)
		code, body := apiDo(t, h, "/api/v1/query_range", apiParams("query", "up", "start", "0", "end", "100", "step", "1"), false)
		require.Equal(t, http.StatusServiceUnavailable, code, body)
		require.Contains(t, body, `"errorType":"timeout"`)
	})
	t.Run("client gone", func(t *testing.T) {
		h := apiTestServer(t, db, DefaultAPIOptions())
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		code, body := apiDoCtx(t, ctx, h, "/api/v1/query", apiParams("query", "up"), false)
		require.Equal(t, 499, code, body)
		require.Contains(t, body, `{"status":"error","errorType":"canceled","error":"query was canceled in `)
	})
	t.Run("too many samples", func(t *testing.T) {
		opts := DefaultAPIOptions()
		opts.MaxSamples = 1
		h := apiTestServer(t, db, opts)
		code, body := apiDo(t, h, "/api/v1/query", apiParams("query", "up", "time", "1700000060"), false)
		require.Equal(t, http.StatusUnprocessableEntity, code, body)
		require.Equal(t, `{"status":"error","errorType":"execution","error":"query processing would load too many samples into memory in query execution"}`, body)
	})
}

func TestAPISeriesAndLabels(t *testing.T) {
	db := apiTestDB(t)
	h := apiTestServer(t, db, DefaultAPIOptions())

	for _, tc := range []struct {
		name     string
		path     string
		params   url.Values
		post     bool
		wantCode int
		want     string
	}{
		{
			name:     "series without match",
			path:     "/api/v1/series",
			wantCode: 400,
			want:     `{"status":"error","errorType":"bad_data","error":"no match[] parameter provided"}`,
		},
		{
			name:     "series with an empty matcher",
			path:     "/api/v1/series",
			params:   apiParams("match[]", `{job=""}`),
			wantCode: 400,
			want:     `{"status":"error","errorType":"bad_data","error":"invalid parameter \"match[]\": match[] must contain at least one non-empty matcher"}`,
		},
		{
			name:     "series with a bad selector",
			path:     "/api/v1/series",
			params:   apiParams("match[]", `up{`),
			wantCode: 400,
			want:     `{"status":"error","errorType":"bad_data","error":"invalid parameter \"match[]\": 1:4: parse error: unexpected end of input inside braces"}`,
		},
		{
			name:     "series of all time, two selectors, sorted",
			path:     "/api/v1/series",
			params:   apiParams("match[]", "up", "match[]", `{__name__=~"old_metric|up"}`),
			wantCode: 200,
			want:     `{"status":"success","data":[{"__name__":"old_metric","job":"old"},{"__name__":"up","instance":"a","job":"node"},{"__name__":"up","instance":"b","job":"node"}]}`,
		},
		{
			name:     "series in a time range",
			path:     "/api/v1/series",
			params:   apiParams("match[]", `{__name__=~"old_metric|up"}`, "start", "1699999990", "end", "2023-11-14T22:15:00Z"),
			wantCode: 200,
			want:     `{"status":"success","data":[{"__name__":"up","instance":"a","job":"node"},{"__name__":"up","instance":"b","job":"node"}]}`,
		},
		{
			name:     "series with limit by POST form",
			path:     "/api/v1/series",
			params:   apiParams("match[]", `{__name__=~"old_metric|up"}`, "limit", "2"),
			post:     true,
			wantCode: 200,
			want:     `{"status":"success","data":[{"__name__":"old_metric","job":"old"},{"__name__":"up","instance":"a","job":"node"}],"warnings":["results truncated due to limit"]}`,
		},
		{
			name:     "series with unescaped label characters",
			path:     "/api/v1/series",
			params:   apiParams("match[]", "weird"),
			wantCode: 200,
			want:     `{"status":"success","data":[{"__name__":"weird","v":"<&>\"\\\n"}]}`,
		},
		{
			name:     "series that match nothing",
			path:     "/api/v1/series",
			params:   apiParams("match[]", "nope"),
			wantCode: 200,
			want:     `{"status":"success","data":[]}`,
		},
		{
			name:     "label names",
			path:     "/api/v1/labels",
			wantCode: 200,
			want:     `{"status":"success","data":["__name__","code","instance","job","v"]}`,
		},
		{
			name:     "label names with two selectors by POST form",
			path:     "/api/v1/labels",
			params:   apiParams("match[]", "up", "match[]", "http_requests_total"),
			post:     true,
			wantCode: 200,
			want:     `{"status":"success","data":["__name__","code","instance","job"]}`,
		},
		{
			name:     "label names with limit",
			path:     "/api/v1/labels",
			params:   apiParams("match[]", "up", "limit", "2"),
			wantCode: 200,
			want:     `{"status":"success","data":["__name__","instance"],"warnings":["results truncated due to limit"]}`,
		},
		{
			name:     "label names before any data",
			path:     "/api/v1/labels",
			params:   apiParams("start", "0", "end", "1000"),
			wantCode: 200,
			want:     `{"status":"success","data":[]}`,
		},
		{
			name:     "label names with bad end",
			path:     "/api/v1/labels",
			params:   apiParams("end", "later"),
			wantCode: 400,
			want:     `{"status":"error","errorType":"bad_data","error":"invalid parameter \"end\": invalid time value for 'end': cannot parse \"later\" to a valid timestamp"}`,
		},
		{
			name:     "metric names",
			path:     "/api/v1/label/__name__/values",
			wantCode: 200,
			want:     `{"status":"success","data":["hist_metric","http_requests_total","old_metric","up","weird"]}`,
		},
		{
			name:     "label values with selectors and limit",
			path:     "/api/v1/label/job/values",
			params:   apiParams("match[]", "up", "match[]", "old_metric", "limit", "1"),
			wantCode: 200,
			want:     `{"status":"success","data":["node"],"warnings":["results truncated due to limit"]}`,
		},
		{
			name:     "label values HTML-escaped like Prometheus' string lists",
			path:     "/api/v1/label/v/values",
			wantCode: 200,
			want:     `{"status":"success","data":["\u003c\u0026\u003e\"\\\n"]}`,
		},
		{
			name:     "values of an escaped label name",
			path:     "/api/v1/label/U__instance/values",
			wantCode: 200,
			want:     `{"status":"success","data":["a","b"]}`,
		},
		{
			name:     "values of an unknown label",
			path:     "/api/v1/label/nope/values",
			wantCode: 200,
			want:     `{"status":"success","data":[]}`,
		},
		{
			name:     "values of an invalid label name",
			path:     "/api/v1/label/%FF/values",
			wantCode: 400,
			want:     `{"status":"error","errorType":"bad_data","error":"invalid label name: \"\\xff\""}`,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, body := apiDo(t, h, tc.path, tc.params, tc.post)
			require.Equal(t, tc.wantCode, code, body)
			require.Equal(t, tc.want, body)
		})
	}
}

func TestAPIMetadataAndExemplars(t *testing.T) {
	db := apiTestDB(t)
	withExemplars := DefaultAPIOptions()
	withExemplars.ExemplarQueryable = db

	for _, tc := range []struct {
		name     string
		opts     APIOptions
		path     string
		params   url.Values
		wantCode int
		want     string
	}{
		{
			name:     "metadata without a store",
			opts:     DefaultAPIOptions(),
			path:     "/api/v1/metadata",
			params:   apiParams("metric", "up", "limit", "1", "limit_per_metric", "1"),
			wantCode: 200,
			want:     `{"status":"success","data":{}}`,
		},
		{
			name:     "metadata with bad limit",
			opts:     DefaultAPIOptions(),
			path:     "/api/v1/metadata",
			params:   apiParams("limit", "x"),
			wantCode: 400,
			want:     `{"status":"error","errorType":"bad_data","error":"limit must be a number"}`,
		},
		{
			name: "metadata from a hook",
			opts: APIOptions{Metadata: func(_ context.Context, metric string, limit, limitPerMetric int) (map[string][]metadata.Metadata, error) {
				if metric != "up" || limit != 1 || limitPerMetric != -1 {
					return nil, errors.New("unexpected arguments")
				}
				return map[string][]metadata.Metadata{"up": {{Type: model.MetricTypeGauge, Help: "1 if <up>."}}}, nil
			}},
			path:     "/api/v1/metadata",
			params:   apiParams("metric", "up", "limit", "1"),
			wantCode: 200,
			want:     `{"status":"success","data":{"up":[{"type":"gauge","unit":"","help":"1 if \u003cup\u003e."}]}}`,
		},
		{
			name:     "exemplars without a store",
			opts:     DefaultAPIOptions(),
			path:     "/api/v1/query_exemplars",
			params:   apiParams("query", "http_requests_total"),
			wantCode: 200,
			want:     `{"status":"success","data":[]}`,
		},
		{
			name:     "exemplars from the TSDB",
			opts:     withExemplars,
			path:     "/api/v1/query_exemplars",
			params:   apiParams("query", `rate(http_requests_total[5m])`, "start", "1700000000", "end", "1700000060"),
			wantCode: 200,
			want:     `{"status":"success","data":[{"seriesLabels":{"__name__":"http_requests_total","code":"200","job":"api"},"exemplars":[{"labels":{"trace_id":"abc"},"value":"40","timestamp":1700000060}]}]}`,
		},
		{
			name:     "exemplars outside the range",
			opts:     withExemplars,
			path:     "/api/v1/query_exemplars",
			params:   apiParams("query", "http_requests_total", "end", "1700000000"),
			wantCode: 200,
			want:     `{"status":"success","data":[]}`,
		},
		{
			name:     "exemplars of a query without selectors",
			opts:     withExemplars,
			path:     "/api/v1/query_exemplars",
			params:   apiParams("query", "1"),
			wantCode: 204,
		},
		{
			name:     "exemplars with a bad query",
			opts:     withExemplars,
			path:     "/api/v1/query_exemplars",
			params:   apiParams("query", "up{"),
			wantCode: 400,
			want:     `{"status":"error","errorType":"bad_data","error":"1:4: parse error: unexpected end of input inside braces"}`,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := apiTestServer(t, db, tc.opts)
			code, body := apiDo(t, h, tc.path, tc.params, false)
			require.Equal(t, tc.wantCode, code, body)
			require.Equal(t, tc.want, body)
		})
	}
}

func TestAPIStatus(t *testing.T) {
	db := apiTestDB(t)
	opts := DefaultAPIOptions()
	opts.Flags = map[string]string{"query.timeout": "2m"}
	h := apiTestServer(t, db, opts)

	for _, tc := range []struct {
		path     string
		wantKeys []string
	}{
		{"/api/v1/status/buildinfo", []string{"version", "revision", "branch", "buildUser", "buildDate", "goVersion"}},
		{"/api/v1/status/runtimeinfo", []string{"startTime", "CWD", "hostname", "serverTime", "reloadConfigSuccess", "lastConfigTime", "corruptionCount", "goroutineCount", "GOMAXPROCS", "GOMEMLIMIT", "GOGC", "GODEBUG", "storageRetention"}},
		{"/api/v1/status/flags", []string{"query.timeout"}},
	} {
		t.Run(tc.path, func(t *testing.T) {
			code, body := apiDo(t, h, tc.path, nil, false)
			require.Equal(t, http.StatusOK, code, body)
			var resp struct {
				Status string         `json:"status"`
				Data   map[string]any `json:"data"`
			}
			require.NoError(t, json.Unmarshal([]byte(body), &resp))
			require.Equal(t, "success", resp.Status)
			for _, k := range tc.wantKeys {
				require.Contains(t, resp.Data, k)
			}
			require.Len(t, resp.Data, len(tc.wantKeys))
		})
	}

	t.Run("wrong method", func(t *testing.T) {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/api/v1/status/buildinfo", nil))
		require.Equal(t, http.StatusMethodNotAllowed, rec.Code)
	})
}

type apiTestParamsKey struct{}

// apiRecordingQueryable wraps a real queryable and records the RequestParams that reach Select,
// LabelNames and LabelValues through the context.
type apiRecordingQueryable struct {
	storage.Queryable
	mu   sync.Mutex
	seen []RequestParams
}

func (q *apiRecordingQueryable) record(ctx context.Context) {
	p, ok := ctx.Value(apiTestParamsKey{}).(RequestParams)
	if !ok {
		return
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	q.seen = append(q.seen, p)
}

func (q *apiRecordingQueryable) take() []RequestParams {
	q.mu.Lock()
	defer q.mu.Unlock()
	s := q.seen
	q.seen = nil
	return s
}

func (q *apiRecordingQueryable) Querier(mint, maxt int64) (storage.Querier, error) {
	inner, err := q.Queryable.Querier(mint, maxt)
	if err != nil {
		return nil, err
	}
	return &apiRecordingQuerier{Querier: inner, q: q}, nil
}

type apiRecordingQuerier struct {
	storage.Querier
	q *apiRecordingQueryable
}

func (r *apiRecordingQuerier) Select(ctx context.Context, sortSeries bool, hints *storage.SelectHints, ms ...*labels.Matcher) storage.SeriesSet {
	r.q.record(ctx)
	return r.Querier.Select(ctx, sortSeries, hints, ms...)
}

func (r *apiRecordingQuerier) LabelNames(ctx context.Context, hints *storage.LabelHints, ms ...*labels.Matcher) ([]string, annotations.Annotations, error) {
	r.q.record(ctx)
	return r.Querier.LabelNames(ctx, hints, ms...)
}

func (r *apiRecordingQuerier) LabelValues(ctx context.Context, name string, hints *storage.LabelHints, ms ...*labels.Matcher) ([]string, annotations.Annotations, error) {
	r.q.record(ctx)
	return r.Querier.LabelValues(ctx, name, hints, ms...)
}

func TestAPIRequestParams(t *testing.T) {
	db := apiTestDB(t)
	rq := &apiRecordingQueryable{Queryable: db}

	var (
		mu      sync.Mutex
		hookGot []RequestParams
	)
	hook := func(ctx context.Context, p RequestParams) context.Context {
		mu.Lock()
		hookGot = append(hookGot, p)
		mu.Unlock()
		return context.WithValue(ctx, apiTestParamsKey{}, p)
	}
	takeHook := func() []RequestParams {
		mu.Lock()
		defer mu.Unlock()
		s := hookGot
		hookGot = nil
		return s
	}

	opts := DefaultAPIOptions()
	opts.Context = hook
	h := apiTestServer(t, rq, opts)
	autoOpts := opts
	autoOpts.AutoDownsampling = true
	hAuto := apiTestServer(t, rq, autoOpts)

	queryParams := func(kv ...string) url.Values {
		return apiParams(append([]string{"query", "up", "time", "1700000060"}, kv...)...)
	}
	rangeParams := func(kv ...string) url.Values {
		return apiParams(append([]string{"query", "up", "start", "1700000000", "end", "1700000060", "step", "15s"}, kv...)...)
	}
	defaults := RequestParams{Dedup: true, PartialResponse: true}

	for _, tc := range []struct {
		name    string
		handler http.Handler
		path    string
		params  url.Values
		post    bool
		want    RequestParams
		wantErr string
	}{
		{name: "defaults", path: "/api/v1/query", params: queryParams(), want: defaults},
		{
			name:   "dedup and partial response off",
			path:   "/api/v1/query",
			params: queryParams("dedup", "false", "partial_response", "0"),
			want:   RequestParams{},
		},
		{
			name:   "max source resolution 5m",
			path:   "/api/v1/query",
			params: queryParams("max_source_resolution", "5m"),
			want:   RequestParams{Dedup: true, PartialResponse: true, MaxSourceResolution: 5 * time.Minute},
		},
		{
			name:   "max source resolution 1h by POST form",
			path:   "/api/v1/query",
			params: queryParams("max_source_resolution", "1h"),
			post:   true,
			want:   RequestParams{Dedup: true, PartialResponse: true, MaxSourceResolution: time.Hour},
		},
		{
			name:   "max source resolution in float seconds",
			path:   "/api/v1/query",
			params: queryParams("max_source_resolution", "300"),
			want:   RequestParams{Dedup: true, PartialResponse: true, MaxSourceResolution: 5 * time.Minute},
		},
		{
			name:   "max source resolution raw",
			path:   "/api/v1/query",
			params: queryParams("max_source_resolution", "raw"),
			want:   defaults,
		},
		{
			name:   "auto on a range query carries the step",
			path:   "/api/v1/query_range",
			params: rangeParams("max_source_resolution", "auto"),
			want:   RequestParams{Dedup: true, PartialResponse: true, AutoDownsampling: true, Step: 15 * time.Second},
		},
		{
			name:    "auto by default",
			handler: hAuto,
			path:    "/api/v1/query_range",
			params:  rangeParams(),
			want:    RequestParams{Dedup: true, PartialResponse: true, AutoDownsampling: true, Step: 15 * time.Second},
		},
		{
			name:    "raw overrides auto by default",
			handler: hAuto,
			path:    "/api/v1/query_range",
			params:  rangeParams("max_source_resolution", "0s"),
			want:    RequestParams{Dedup: true, PartialResponse: true, Step: 15 * time.Second},
		},
		{
			name:   "series",
			path:   "/api/v1/series",
			params: apiParams("match[]", "up", "dedup", "false"),
			want:   RequestParams{PartialResponse: true},
		},
		{
			name:   "labels",
			path:   "/api/v1/labels",
			params: apiParams("partial_response", "false"),
			want:   RequestParams{Dedup: true},
		},
		{
			name:   "label values",
			path:   "/api/v1/label/job/values",
			params: apiParams("max_source_resolution", "1h"),
			want:   RequestParams{Dedup: true, PartialResponse: true, MaxSourceResolution: time.Hour},
		},
		{
			name:    "bad dedup",
			path:    "/api/v1/query",
			params:  queryParams("dedup", "maybe"),
			wantErr: `{"status":"error","errorType":"bad_data","error":"invalid parameter \"dedup\": strconv.ParseBool: parsing \"maybe\": invalid syntax"}`,
		},
		{
			name:    "bad partial response",
			path:    "/api/v1/series",
			params:  apiParams("match[]", "up", "partial_response", "2"),
			wantErr: `{"status":"error","errorType":"bad_data","error":"invalid parameter \"partial_response\": strconv.ParseBool: parsing \"2\": invalid syntax"}`,
		},
		{
			name:    "bad max source resolution",
			path:    "/api/v1/query_range",
			params:  rangeParams("max_source_resolution", "-5"),
			wantErr: `{"status":"error","errorType":"bad_data","error":"invalid parameter \"max_source_resolution\": negative resolution \"-5\" is not accepted"}`,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			handler := tc.handler
			if handler == nil {
				handler = h
			}
			code, body := apiDo(t, handler, tc.path, tc.params, tc.post)
			if tc.wantErr != "" {
				require.Equal(t, http.StatusBadRequest, code, body)
				require.Equal(t, tc.wantErr, body)
				require.Empty(t, takeHook())
				require.Empty(t, rq.take())
				return
			}
			require.Equal(t, http.StatusOK, code, body)
			require.Equal(t, []RequestParams{tc.want}, takeHook())
			seen := rq.take()
			require.NotEmpty(t, seen, "the parameters must reach the storage")
			for _, p := range seen {
				require.Equal(t, tc.want, p)
			}
		})
	}
}
