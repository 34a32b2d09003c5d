package querier

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
	"github.com/prometheus/prometheus/model/metadata"
	"github.com/prometheus/prometheus/promql"
	"github.com/prometheus/prometheus/promql/parser"
	"github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/tsdb"
	"github.com/prometheus/prometheus/util/annotations"
)

// Defaults of APIOptions, equal to the defaults of the matching Prometheus and Thanos flags.
const (
	// DefaultQueryTimeout is the default of APIOptions.Timeout (--query.timeout).
	DefaultQueryTimeout = 2 * time.Minute
	// DefaultQueryMaxSamples is the default of APIOptions.MaxSamples (--query.max-samples).
	DefaultQueryMaxSamples = 50000000
	// DefaultQueryLookbackDelta is the default of APIOptions.LookbackDelta
	// (--query.lookback-delta).
	DefaultQueryLookbackDelta = 5 * time.Minute
	// DefaultQueryEvaluationInterval is the default of APIOptions.EvaluationInterval, Prometheus'
	// default global evaluation interval.
	DefaultQueryEvaluationInterval = time.Minute
)

const (
	// apiMaxPointsPerSeries bounds (end-start)/step of a range query, as in Prometheus.
	apiMaxPointsPerSeries = 11000
	// apiCheckContextEvery is how many series a listing reads between cancellation checks.
	apiCheckContextEvery = 128
	// apiStatusClientClosedRequest is nginx's non-standard code that Prometheus answers
	// canceled queries with.
	apiStatusClientClosedRequest = 499
	// apiMaxWarnings and apiMaxInfos cap the annotations of one response, as in Prometheus.
	apiMaxWarnings      = 10
	apiMaxInfos         = 10
	apiContentTypeJSON  = "application/json"
	apiTruncatedWarning = "results truncated due to limit"
)

// MetadataFunc returns metric metadata by metric family name, as the Prometheus metadata
// endpoint does. metric is empty for all metrics; limit and limitPerMetric are -1 when the
// request sets no limit. The returned map is owned by the caller.
type MetadataFunc func(ctx context.Context, metric string, limit, limitPerMetric int) (map[string][]metadata.Metadata, error)

// APIOptions configure the query API. DefaultAPIOptions returns the values strata runs with;
// zero durations and counts are replaced by those defaults in NewAPI.
type APIOptions struct {
	// Timeout is the maximum time a query may run (--query.timeout).
	Timeout time.Duration
	// MaxSamples is the maximum number of samples a query may hold in memory at once
	// (--query.max-samples).
	MaxSamples int
	// LookbackDelta is how far back an instant selector looks for a sample
	// (--query.lookback-delta). Requests can override it with lookback_delta.
	LookbackDelta time.Duration
	// EvaluationInterval is the step of subqueries that do not set one, such as x[1h:].
	EvaluationInterval time.Duration
	// EnableAtModifier allows the @ modifier. Prometheus 3 always allows it.
	EnableAtModifier bool
	// EnableNegativeOffset allows negative offsets. Prometheus 3 always allows them.
	EnableNegativeOffset bool
	// AutoDownsampling makes max_source_resolution default to "auto" instead of "raw".
	AutoDownsampling bool

	// Context stores the strata-specific request parameters in the context that reaches the
	// storage's Select, LabelNames and LabelValues calls and the exemplar querier. It is called
	// once per request that reads data. Nil drops the parameters.
	Context func(ctx context.Context, p RequestParams) context.Context
	// ExemplarQueryable serves query_exemplars. Nil answers every query with no exemplars.
	ExemplarQueryable storage.ExemplarQueryable
	// Metadata serves the metadata endpoint. Nil answers with no metadata.
	Metadata MetadataFunc
	// Flags is served by status/flags, by flag name without dashes.
	Flags map[string]string
	// Tenancy, if set, resolves every request to a tenant (authenticating it if configured) and
	// confines it to that tenant's series; see the package documentation. Nil serves every
	// tenant's data to every caller.
	Tenancy *Tenancy
}

// DefaultAPIOptions returns the options strata runs with when no flag is given.
func DefaultAPIOptions() APIOptions {
	return APIOptions{
		Timeout:              DefaultQueryTimeout,
		MaxSamples:           DefaultQueryMaxSamples,
		LookbackDelta:        DefaultQueryLookbackDelta,
		EvaluationInterval:   DefaultQueryEvaluationInterval,
		EnableAtModifier:     true,
		EnableNegativeOffset: true,
	}
}

// API serves the Prometheus HTTP API v1 over a storage.Queryable, with Prometheus' JSON shapes,
// error types and status codes, plus strata's dedup, partial_response and max_source_resolution
// parameters. It is safe for concurrent use.
//
// query and query_range also take the query frontend's shard parameters, shard=<i>_of_<n> with
// shard_by=<labels> or shard_without=<labels> (see queryshard): the expression is then evaluated
// over only the series of shard i, chosen by a hash of the labels the engine reads, after
// replica dedup. Invalid shard parameters answer 400 naming the parameter; without them nothing
// is filtered and no per-series work is added.
type API struct {
	queryable storage.Queryable
	engine    *promql.Engine
	parser    parser.Parser
	opts      APIOptions
	logger    *slog.Logger
	metrics   *apiMetrics
	startTime time.Time
	now       func() time.Time
}

// NewAPI builds the API and its PromQL engine. The engine's metrics (prometheus_engine_*) and the
// API's (strata_querier_api_*) are registered with reg, so one registry can hold one API.
func NewAPI(q storage.Queryable, opts APIOptions, reg prometheus.Registerer, logger *slog.Logger) *API {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	def := DefaultAPIOptions()
	if opts.Timeout <= 0 {
		opts.Timeout = def.Timeout
	}
	if opts.MaxSamples <= 0 {
		opts.MaxSamples = def.MaxSamples
	}
	if opts.LookbackDelta <= 0 {
		opts.LookbackDelta = def.LookbackDelta
	}
	if opts.EvaluationInterval <= 0 {
		opts.EvaluationInterval = def.EvaluationInterval
	}
	p := parser.NewParser(parser.Options{})
	evalMillis := opts.EvaluationInterval.Milliseconds()
	engine := promql.NewEngine(promql.EngineOpts{
		Logger:                   logger.With("component", "promql"),
		Reg:                      reg,
		MaxSamples:               opts.MaxSamples,
		Timeout:                  opts.Timeout,
		LookbackDelta:            opts.LookbackDelta,
		NoStepSubqueryIntervalFn: func(int64) int64 { return evalMillis },
		EnableAtModifier:         opts.EnableAtModifier,
		EnableNegativeOffset:     opts.EnableNegativeOffset,
		EnablePerStepStats:       true,
		Parser:                   p,
	})
	return &API{
		queryable: q,
		engine:    engine,
		parser:    p,
		opts:      opts,
		logger:    logger,
		metrics:   newAPIMetrics(reg),
		startTime: time.Now(),
		now:       time.Now,
	}
}

type apiMetrics struct {
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
}

func newAPIMetrics(reg prometheus.Registerer) *apiMetrics {
	f := promauto.With(reg)
	return &apiMetrics{
		requests: f.NewCounterVec(prometheus.CounterOpts{
			Name: "strata_querier_api_requests_total",
			Help: "Requests to the Prometheus HTTP API by handler and status code.",
		}, []string{"handler", "code"}),
		duration: f.NewHistogramVec(prometheus.HistogramOpts{
			Name:                            "strata_querier_api_request_duration_seconds",
			Help:                            "Time to answer a request to the Prometheus HTTP API, by handler.",
			Buckets:                         []float64{.01, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 120},
			NativeHistogramBucketFactor:     1.1,
			NativeHistogramMaxBucketNumber:  100,
			NativeHistogramMinResetDuration: time.Hour,
		}, []string{"handler"}),
	}
}

// Register adds the API's endpoints under /api/v1/ to mux.
func (a *API) Register(mux *http.ServeMux) {
	for _, e := range []struct {
		name    string
		methods []string
		path    string
		f       apiFunc
	}{
		{"query", []string{"GET", "POST"}, "/api/v1/query", a.query},
		{"query_range", []string{"GET", "POST"}, "/api/v1/query_range", a.queryRange},
		{"query_exemplars", []string{"GET", "POST"}, "/api/v1/query_exemplars", a.queryExemplars},
		{"format_query", []string{"GET", "POST"}, "/api/v1/format_query", a.formatQuery},
		{"series", []string{"GET", "POST"}, "/api/v1/series", a.series},
		{"labels", []string{"GET", "POST"}, "/api/v1/labels", a.labelNames},
		{"label_values", []string{"GET"}, "/api/v1/label/{name}/values", a.labelValues},
		{"metadata", []string{"GET"}, "/api/v1/metadata", a.metricMetadata},
		{"buildinfo", []string{"GET"}, "/api/v1/status/buildinfo", a.buildInfo},
		{"runtimeinfo", []string{"GET"}, "/api/v1/status/runtimeinfo", a.runtimeInfo},
		{"flags", []string{"GET"}, "/api/v1/status/flags", a.flags},
	} {
		h := a.handler(e.name, e.f)
		for _, m := range e.methods {
			mux.HandleFunc(m+" "+e.path, h)
		}
	}
}

// apiResult is what an endpoint returns. A nil data and err answer 204 No Content, as
// Prometheus does. finalizer, if set, runs after the response is written: query results may
// point into memory that closing the query releases.
type apiResult struct {
	data      any
	err       *apiError
	warnings  annotations.Annotations
	finalizer func()
	// query, if set, is the expression the engine ran, which annotations point into, when it
	// differs from the request's (a query confined to a tenant).
	query string
}

type apiFunc func(r *http.Request) apiResult

// apiErrorType is the errorType of a Prometheus API error response.
type apiErrorType string

const (
	apiErrorTimeout     apiErrorType = "timeout"
	apiErrorCanceled    apiErrorType = "canceled"
	apiErrorExec        apiErrorType = "execution"
	apiErrorBadData     apiErrorType = "bad_data"
	apiErrorInternal    apiErrorType = "internal"
	apiErrorUnavailable apiErrorType = "unavailable"
	// apiErrorUnauthorized and apiErrorForbidden are strata's: Prometheus has no
	// authentication. They answer 401 and 403.
	apiErrorUnauthorized apiErrorType = "unauthorized"
	apiErrorForbidden    apiErrorType = "forbidden"
)

type apiError struct {
	typ apiErrorType
	err error
}

func (e *apiError) Error() string { return fmt.Sprintf("%s: %s", e.typ, e.err) }

// statusCode maps an error type to the HTTP status Prometheus answers it with. Prometheus has no
// special code for unavailable, so it is a 500 there and here.
func (e *apiError) statusCode() int {
	switch e.typ {
	case apiErrorBadData:
		return http.StatusBadRequest
	case apiErrorExec:
		return http.StatusUnprocessableEntity
	case apiErrorCanceled:
		return apiStatusClientClosedRequest
	case apiErrorTimeout:
		return http.StatusServiceUnavailable
	case apiErrorUnauthorized:
		return http.StatusUnauthorized
	case apiErrorForbidden:
		return http.StatusForbidden
	default:
		return http.StatusInternalServerError
	}
}

func apiBadData(err error) apiResult {
	return apiResult{err: &apiError{apiErrorBadData, err}}
}

func apiInvalidParam(err error, name string) apiResult {
	return apiBadData(fmt.Errorf("invalid parameter %q: %w", name, err))
}

// apiErrorFrom classifies an error from the engine or the storage the way Prometheus does.
func apiErrorFrom(err error) *apiError {
	var (
		canceled promql.ErrQueryCanceled
		timeout  promql.ErrQueryTimeout
		storErr  promql.ErrStorage
	)
	switch {
	case errors.As(err, &canceled):
		return &apiError{apiErrorCanceled, err}
	case errors.As(err, &timeout):
		return &apiError{apiErrorTimeout, err}
	case errors.As(err, &storErr):
		return &apiError{apiErrorInternal, err}
	case errors.Is(err, context.Canceled):
		return &apiError{apiErrorCanceled, err}
	}
	return &apiError{apiErrorExec, err}
}

func (a *API) handler(name string, f apiFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		if a.opts.Tenancy != nil {
			// Before the form is read: an unauthenticated caller gets nothing parsed.
			var (
				ok   bool
				code int
			)
			if r, code, ok = a.opts.Tenancy.serve(w, r, a.logger); !ok {
				a.metrics.requests.WithLabelValues(name, strconv.Itoa(code)).Inc()
				a.metrics.duration.WithLabelValues(name).Observe(time.Since(start).Seconds())
				return
			}
		}
		var res apiResult
		if err := r.ParseForm(); err != nil {
			res = apiBadData(fmt.Errorf("error parsing form values: %w", err))
		} else {
			res = f(r)
		}
		if res.finalizer != nil {
			defer res.finalizer()
		}
		if res.err != nil && errors.Is(res.err.err, tsdb.ErrNotReady) {
			res.err.typ = apiErrorUnavailable
		}
		code := a.write(w, r, res)
		a.metrics.requests.WithLabelValues(name, strconv.Itoa(code)).Inc()
		a.metrics.duration.WithLabelValues(name).Observe(time.Since(start).Seconds())
	}
}

// write sends res and returns the status code it used.
func (a *API) write(w http.ResponseWriter, r *http.Request, res apiResult) int {
	if res.err != nil {
		return a.writeError(w, res.err)
	}
	if res.data == nil {
		w.WriteHeader(http.StatusNoContent)
		return http.StatusNoContent
	}
	query := res.query
	if query == "" {
		query = r.FormValue("query")
	}
	b, err := apiEncodeSuccess(res.data, res.warnings, query)
	if err != nil {
		a.logger.Error("encode api response", "url", r.URL.String(), "err", err)
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return http.StatusInternalServerError
	}
	w.Header().Set("Content-Type", apiContentTypeJSON)
	w.WriteHeader(http.StatusOK)
	if _, err := w.Write(b); err != nil {
		a.logger.Debug("write api response", "url", r.URL.String(), "err", err)
	}
	return http.StatusOK
}

// apiEncodeSuccess builds {"status":"success","data":...,"warnings":[...],"infos":[...]}. The
// query is used to point annotations at their position in it.
func apiEncodeSuccess(data any, warnings annotations.Annotations, query string) ([]byte, error) {
	b := make([]byte, 0, 512)
	b = append(b, `{"status":"success","data":`...)
	var err error
	if ap, ok := data.(apiAppender); ok {
		b, err = ap.appendJSON(b)
	} else {
		b, err = apiAppendMarshal(b, data)
	}
	if err != nil {
		return nil, err
	}
	warn, info := warnings.AsStrings(query, apiMaxWarnings, apiMaxInfos)
	if len(warn) > 0 {
		b = append(b, `,"warnings":`...)
		if b, err = apiAppendMarshal(b, warn); err != nil {
			return nil, err
		}
	}
	if len(info) > 0 {
		b = append(b, `,"infos":`...)
		if b, err = apiAppendMarshal(b, info); err != nil {
			return nil, err
		}
	}
	return append(b, '}'), nil
}

func (a *API) writeError(w http.ResponseWriter, e *apiError) int {
	return writeAPIError(w, e, e.statusCode(), a.logger)
}

// writeAPIError answers with Prometheus' error envelope and status code, and
// returns the code sent.
func writeAPIError(w http.ResponseWriter, e *apiError, code int, logger *slog.Logger) int {
	b, err := json.Marshal(struct {
		Status    string `json:"status"`
		ErrorType string `json:"errorType"`
		Error     string `json:"error"`
	}{"error", string(e.typ), e.err.Error()})
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return http.StatusInternalServerError
	}
	w.Header().Set("Content-Type", apiContentTypeJSON)
	w.WriteHeader(code)
	if _, err := w.Write(b); err != nil {
		logger.Debug("write api error response", "err", err)
	}
	return code
}

// tenant returns the tenant a request is confined to, and false when tenancy is off.
func (a *API) tenant(r *http.Request) (string, bool, error) {
	if a.opts.Tenancy == nil {
		return "", false, nil
	}
	t, err := requestTenant(r.Context())
	return t, true, err
}

// dataFor returns the queryable a request reads: the API's, confined to the tenant when
// tenancy is on.
func (a *API) dataFor(tenant string, confined bool) storage.Queryable {
	if !confined {
		return a.queryable
	}
	return newTenantQueryable(a.queryable, a.opts.Tenancy.label, tenant)
}

// requestContext parses the strata-specific parameters and lets APIOptions.Context store them.
func (a *API) requestContext(ctx context.Context, r *http.Request, step time.Duration) (context.Context, error) {
	p, err := apiParseRequestParams(r, a.opts.AutoDownsampling, step)
	if err != nil {
		return nil, err
	}
	if a.opts.Context != nil {
		ctx = a.opts.Context(ctx, p)
	}
	return ctx, nil
}
