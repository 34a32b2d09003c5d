package ruler

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/histogram"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql"
	"github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/tsdb/chunkenc"
	"github.com/prometheus/prometheus/tsdb/chunks"
	"github.com/prometheus/prometheus/util/annotations"
)

// Query errors, classified with errors.Is.
var (
	// ErrPartialResponse is returned when a querier answered with a warning
	// while partial responses are not allowed.
	ErrPartialResponse = errors.New("partial response")
	// ErrBadQuery is returned when a querier rejected the query itself; other
	// endpoints are not tried since they would reject it too.
	ErrBadQuery = errors.New("query rejected")
)

// QueryClient runs instant queries against the Prometheus HTTP API of one or
// more queriers, which form one highly available group: a query fails only
// when every endpoint fails. It is safe for concurrent use.
type QueryClient struct {
	endpoints       []*url.URL
	partialResponse bool
	timeout         time.Duration
	client          *http.Client
	logger          *slog.Logger
	metrics         *queryMetrics
}

type queryMetrics struct {
	requests     *prometheus.CounterVec
	withWarnings prometheus.Counter
}

func newQueryMetrics(reg prometheus.Registerer) *queryMetrics {
	return &queryMetrics{
		requests: promauto.With(reg).NewCounterVec(prometheus.CounterOpts{
			Name: "strata_rule_query_requests_total",
			Help: "Queries sent to query endpoints, by result (success, error).",
		}, []string{"result"}),
		withWarnings: promauto.With(reg).NewCounter(prometheus.CounterOpts{
			Name: "strata_rule_evaluation_with_warnings_total",
			Help: "Rule queries answered with warnings (such as partial data); they fail unless partial responses are allowed.",
		}),
	}
}

// NewQueryClient returns a client for the given query API base URLs, such as
// http://querier:10902. partialResponse is sent as partial_response with every
// query; when false, an answer carrying warnings is an error. A zero timeout
// means no timeout beyond the caller's context.
func NewQueryClient(endpoints []string, partialResponse bool, timeout time.Duration, reg prometheus.Registerer, logger *slog.Logger) (*QueryClient, error) {
	if len(endpoints) == 0 {
		return nil, errors.New("no query endpoint")
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	c := &QueryClient{
		partialResponse: partialResponse,
		timeout:         timeout,
		client:          &http.Client{},
		logger:          logger,
		metrics:         newQueryMetrics(reg),
	}
	for _, e := range endpoints {
		u, err := url.Parse(e)
		if err != nil {
			return nil, fmt.Errorf("parse query endpoint %q: %w", e, err)
		}
		if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return nil, fmt.Errorf("query endpoint %q: want http(s)://host:port[/prefix]", e)
		}
		u.Path = strings.TrimSuffix(u.Path, "/")
		c.endpoints = append(c.endpoints, u)
	}
	return c, nil
}

// apiResponse is the envelope of every Prometheus HTTP API answer.
type apiResponse struct {
	Status    string          `json:"status"`
	Data      json.RawMessage `json:"data"`
	ErrorType string          `json:"errorType"`
	Error     string          `json:"error"`
	Warnings  []string        `json:"warnings"`
}

type queryData struct {
	ResultType string          `json:"resultType"`
	Result     json.RawMessage `json:"result"`
}

// Query evaluates q at t, allowing partial responses as the client was built
// to; it has the signature of rules.QueryFunc. Vector and scalar results are
// returned as a vector, as Prometheus' own engine does for rules.
func (c *QueryClient) Query(ctx context.Context, q string, t time.Time) (promql.Vector, error) {
	return c.QueryPartial(ctx, q, t, c.partialResponse)
}

// QueryPartial is Query with partial responses allowed or not for this query.
func (c *QueryClient) QueryPartial(ctx context.Context, q string, t time.Time, partial bool) (promql.Vector, error) {
	data, err := c.query(ctx, q, t, partial)
	if err != nil {
		return nil, err
	}
	switch data.ResultType {
	case "vector":
		var v model.Vector
		if err := json.Unmarshal(data.Result, &v); err != nil {
			return nil, fmt.Errorf("decode vector result of %q: %w", q, err)
		}
		out := make(promql.Vector, 0, len(v))
		for _, s := range v {
			if s.Histogram != nil {
				return nil, fmt.Errorf("query %q: native histogram results are not supported yet", q)
			}
			out = append(out, promql.Sample{Metric: metricToLabels(s.Metric), T: int64(s.Timestamp), F: float64(s.Value)})
		}
		return out, nil
	case "scalar":
		var s model.Scalar
		if err := json.Unmarshal(data.Result, &s); err != nil {
			return nil, fmt.Errorf("decode scalar result of %q: %w", q, err)
		}
		return promql.Vector{{Metric: labels.EmptyLabels(), T: int64(s.Timestamp), F: float64(s.Value)}}, nil
	default:
		return nil, fmt.Errorf("query %q: rule queries must return a vector or scalar, not %s", q, data.ResultType)
	}
}

// query sends q to each endpoint in turn and returns the first answer.
func (c *QueryClient) query(ctx context.Context, q string, t time.Time, partial bool) (*queryData, error) {
	form := url.Values{}
	form.Set("query", q)
	form.Set("time", strconv.FormatFloat(float64(t.UnixMilli())/1000, 'f', -1, 64))
	form.Set("partial_response", strconv.FormatBool(partial))
	if c.timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.timeout)
		defer cancel()
		form.Set("timeout", c.timeout.String())
	}
	body := form.Encode()

	var errs []error
	for _, e := range c.endpoints {
		data, err := c.queryEndpoint(ctx, e, body, partial)
		if err == nil {
			c.metrics.requests.WithLabelValues("success").Inc()
			return data, nil
		}
		c.metrics.requests.WithLabelValues("error").Inc()
		if errors.Is(err, ErrBadQuery) || errors.Is(err, ErrPartialResponse) || ctx.Err() != nil {
			return nil, fmt.Errorf("query %q: %w", q, err)
		}
		c.logger.Debug("query endpoint failed, trying the next", "endpoint", e.Redacted(), "err", err)
		errs = append(errs, err)
	}
	return nil, fmt.Errorf("query %q on every endpoint: %w", q, errors.Join(errs...))
}

func (c *QueryClient) queryEndpoint(ctx context.Context, endpoint *url.URL, body string, partial bool) (_ *queryData, err error) {
	u := endpoint.JoinPath("/api/v1/query")
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u.String(), strings.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("build request to %s: %w", endpoint.Redacted(), err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := c.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("query %s: %w", endpoint.Redacted(), err)
	}
	defer func() {
		_, _ = io.Copy(io.Discard, resp.Body)
		err = errors.Join(err, resp.Body.Close())
	}()

	var ar apiResponse
	if decErr := json.NewDecoder(resp.Body).Decode(&ar); decErr != nil {
		if resp.StatusCode/100 != 2 {
			return nil, fmt.Errorf("query %s: status %s", endpoint.Redacted(), resp.Status)
		}
		return nil, fmt.Errorf("decode answer of %s: %w", endpoint.Redacted(), decErr)
	}
	if ar.Status != "success" {
		err := fmt.Errorf("query %s: status %s: %s: %s", endpoint.Redacted(), resp.Status, ar.ErrorType, ar.Error)
		// bad_data and execution errors are answers about the query, not the endpoint.
		if resp.StatusCode == http.StatusBadRequest || resp.StatusCode == http.StatusUnprocessableEntity {
			return nil, fmt.Errorf("%w: %w", ErrBadQuery, err)
		}
		return nil, err
	}
	if len(ar.Warnings) > 0 {
		c.metrics.withWarnings.Inc()
		if !partial {
			return nil, fmt.Errorf("%w from %s: %s", ErrPartialResponse, endpoint.Redacted(), strings.Join(ar.Warnings, "; "))
		}
		c.logger.Warn("rule query answered with warnings", "endpoint", endpoint.Redacted(), "warnings", strings.Join(ar.Warnings, "; "))
	}
	var data queryData
	if err := json.Unmarshal(ar.Data, &data); err != nil {
		return nil, fmt.Errorf("decode data of %s: %w", endpoint.Redacted(), err)
	}
	return &data, nil
}

func metricToLabels(m model.Metric) labels.Labels {
	b := labels.NewScratchBuilder(len(m))
	for n, v := range m {
		b.Add(string(n), string(v))
	}
	b.Sort()
	return b.Labels()
}

// Queryable returns a storage.Queryable over the query endpoints, enough for
// the rule manager to restore the `for` state of alerts from
// ALERTS_FOR_STATE: Select runs a range-vector query for the matchers over the
// querier's time range.
func (c *QueryClient) Queryable() storage.Queryable {
	return storage.QueryableFunc(func(mint, maxt int64) (storage.Querier, error) {
		return &remoteQuerier{c: c, mint: mint, maxt: maxt}, nil
	})
}

type remoteQuerier struct {
	c          *QueryClient
	mint, maxt int64
}

// Select implements storage.Querier.
func (q *remoteQuerier) Select(ctx context.Context, _ bool, _ *storage.SelectHints, matchers ...*labels.Matcher) storage.SeriesSet {
	if len(matchers) == 0 {
		return storage.ErrSeriesSet(errors.New("select without matchers"))
	}
	ms := make([]string, 0, len(matchers))
	for _, m := range matchers {
		ms = append(ms, m.String())
	}
	rangeMs := max(q.maxt-q.mint, 1)
	expr := fmt.Sprintf("{%s}[%dms]", strings.Join(ms, ","), rangeMs)
	data, err := q.c.query(ctx, expr, time.UnixMilli(q.maxt), q.c.partialResponse)
	if err != nil {
		return storage.ErrSeriesSet(err)
	}
	if data.ResultType != "matrix" {
		return storage.ErrSeriesSet(fmt.Errorf("query %q: want a matrix, not %s", expr, data.ResultType))
	}
	var m model.Matrix
	if err := json.Unmarshal(data.Result, &m); err != nil {
		return storage.ErrSeriesSet(fmt.Errorf("decode matrix result of %q: %w", expr, err))
	}
	series := make([]storage.Series, 0, len(m))
	for _, ss := range m {
		lset := metricToLabels(ss.Metric)
		samples := make([]chunks.Sample, 0, len(ss.Values))
		for _, p := range ss.Values {
			samples = append(samples, sample{t: int64(p.Timestamp), f: float64(p.Value)})
		}
		series = append(series, storage.NewListSeries(lset, samples))
	}
	return &listSeriesSet{series: series, i: -1}
}

// LabelValues implements storage.Querier; the rule manager does not use it.
func (*remoteQuerier) LabelValues(context.Context, string, *storage.LabelHints, ...*labels.Matcher) ([]string, annotations.Annotations, error) {
	return nil, nil, nil
}

// LabelNames implements storage.Querier; the rule manager does not use it.
func (*remoteQuerier) LabelNames(context.Context, *storage.LabelHints, ...*labels.Matcher) ([]string, annotations.Annotations, error) {
	return nil, nil, nil
}

// Close implements storage.Querier.
func (*remoteQuerier) Close() error { return nil }

type listSeriesSet struct {
	series []storage.Series
	i      int
}

func (s *listSeriesSet) Next() bool                      { s.i++; return s.i < len(s.series) }
func (s *listSeriesSet) At() storage.Series              { return s.series[s.i] }
func (*listSeriesSet) Err() error                        { return nil }
func (*listSeriesSet) Warnings() annotations.Annotations { return nil }

// sample is a float sample read back from a querier.
type sample struct {
	t int64
	f float64
}

func (s sample) T() int64                    { return s.t }
func (sample) ST() int64                     { return 0 }
func (s sample) F() float64                  { return s.f }
func (sample) H() *histogram.Histogram       { return nil }
func (sample) FH() *histogram.FloatHistogram { return nil }
func (sample) Type() chunkenc.ValueType      { return chunkenc.ValFloat }
func (s sample) Copy() chunks.Sample         { return s }
