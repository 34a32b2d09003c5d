package querier

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/util/annotations"

	"github.com/stratametrics/strata/querier/dedup"
	"github.com/stratametrics/strata/storeapi"
	"github.com/stratametrics/strata/storeapi/storepb"
)

// DefaultMaxConcurrency is the default of Options.MaxConcurrency.
const DefaultMaxConcurrency = 20

// ErrPartialResult is wrapped by the error of a query that would miss the data
// of an endpoint that failed or is unhealthy while partial response is
// disabled. With partial response enabled the query answers with the data of
// the other endpoints and a warning instead.
var ErrPartialResult = errors.New("endpoint failed and partial response is disabled")

// DefaultReplicaLabels returns the replica labels strata deduplicates by
// unless configured otherwise: "receive_replica", "prometheus_replica" and
// "replica". The caller owns the returned slice.
func DefaultReplicaLabels() []string {
	return []string{"receive_replica", "prometheus_replica", "replica"}
}

// Options configures a Queryable. The zero value deduplicates by
// DefaultReplicaLabels and allows partial responses.
type Options struct {
	// ReplicaLabels are the labels that tell replicas of a series apart; nil
	// means DefaultReplicaLabels().
	ReplicaLabels []string
	// DedupAlgorithms maps a replica label to its merge algorithm; nil means
	// dedup.DefaultAlgorithms().
	DedupAlgorithms map[string]dedup.Algorithm
	// DisableDedup turns deduplication off for requests whose context has no
	// WithDedup.
	DisableDedup bool
	// DisablePartialResponse makes a request whose context has no
	// WithPartialResponse fail when an endpoint fails.
	DisablePartialResponse bool
	// MaxConcurrency bounds the endpoints one Select, LabelNames or
	// LabelValues calls at once; zero means DefaultMaxConcurrency.
	MaxConcurrency int
	// Timeout bounds each fan-out; an endpoint that has not answered by then
	// has failed. Zero means only the request's context bounds it.
	Timeout time.Duration
}

type ctxKey int

const (
	dedupKey ctxKey = iota
	partialResponseKey
	resolutionKey
)

// WithDedup returns a context whose queries deduplicate replicas, or not,
// regardless of Options.DisableDedup.
func WithDedup(ctx context.Context, enabled bool) context.Context {
	return context.WithValue(ctx, dedupKey, enabled)
}

// WithPartialResponse returns a context whose queries allow partial responses,
// or not, regardless of Options.DisablePartialResponse.
func WithPartialResponse(ctx context.Context, enabled bool) context.Context {
	return context.WithValue(ctx, partialResponseKey, enabled)
}

// Queryable reads series from the Store API endpoints of an EndpointSet: it
// fans each request out to the healthy endpoints that can hold matching data,
// merges their answers and deduplicates replicas. It implements
// storage.Queryable and storage.ChunkQueryable and is safe for concurrent use.
type Queryable struct {
	set           *EndpointSet
	opts          Options
	replicaLabels []string
	logger        *slog.Logger
	metrics       *proxyMetrics
}

type proxyMetrics struct {
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
}

func newProxyMetrics(reg prometheus.Registerer) *proxyMetrics {
	f := promauto.With(reg)
	return &proxyMetrics{
		requests: f.NewCounterVec(prometheus.CounterOpts{
			Name: "strata_querier_store_requests_total",
			Help: "Store API calls to endpoints by method and result.",
		}, []string{"method", "result"}),
		duration: f.NewHistogramVec(prometheus.HistogramOpts{
			Name:                        "strata_querier_store_request_duration_seconds",
			Help:                        "Duration of Store API calls to endpoints, until the whole answer is read.",
			Buckets:                     prometheus.DefBuckets,
			NativeHistogramBucketFactor: 1.1,
		}, []string{"method"}),
	}
}

// NewQueryable returns a Queryable over the endpoints of set.
func NewQueryable(set *EndpointSet, opts Options, reg prometheus.Registerer, logger *slog.Logger) *Queryable {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if opts.MaxConcurrency <= 0 {
		opts.MaxConcurrency = DefaultMaxConcurrency
	}
	rl := opts.ReplicaLabels
	if rl == nil {
		rl = DefaultReplicaLabels()
	}
	rl = slices.Clone(rl)
	slices.Sort(rl)
	return &Queryable{
		set:           set,
		opts:          opts,
		replicaLabels: slices.Compact(rl),
		logger:        logger,
		metrics:       newProxyMetrics(reg),
	}
}

// Querier returns a querier over [mint, maxt] milliseconds.
func (q *Queryable) Querier(mint, maxt int64) (storage.Querier, error) {
	return q.newQuerier(mint, maxt), nil
}

// ChunkQuerier returns a chunk querier over [mint, maxt] milliseconds. Its
// chunks are re-encoded from the merged and deduplicated samples.
func (q *Queryable) ChunkQuerier(mint, maxt int64) (storage.ChunkQuerier, error) {
	return &chunkQuerier{q.newQuerier(mint, maxt)}, nil
}

func (q *Queryable) newQuerier(mint, maxt int64) *querier {
	ctx, cancel := context.WithCancel(context.Background())
	return &querier{q: q, mint: mint, maxt: maxt, closed: ctx, close: cancel}
}

func (q *Queryable) dedup(ctx context.Context) bool {
	if v, ok := ctx.Value(dedupKey).(bool); ok {
		return v
	}
	return !q.opts.DisableDedup
}

func (q *Queryable) partialResponse(ctx context.Context) bool {
	if v, ok := ctx.Value(partialResponseKey).(bool); ok {
		return v
	}
	return !q.opts.DisablePartialResponse
}

func (q *Queryable) isReplicaLabel(name string) bool {
	_, ok := slices.BinarySearch(q.replicaLabels, name)
	return ok
}

// querier is one storage.Querier. Select fans out in the background, so that
// the engine's selectors run in parallel; Close cancels what is still running
// and waits for it.
type querier struct {
	q          *Queryable
	mint, maxt int64
	closed     context.Context
	close      context.CancelFunc
	wg         sync.WaitGroup
}

// Select returns the matching series of every endpoint that can hold them,
// sorted by labels (whatever sortSeries says), merged and, unless disabled,
// deduplicated. hints.Func "series" asks for labels only. The resolution of
// downsampled data comes from WithMaxSourceResolution, hints.Step and
// hints.Range; the aggregates from hints.Func (see the package documentation).
func (qr *querier) Select(ctx context.Context, _ bool, hints *storage.SelectHints, ms ...*labels.Matcher) storage.SeriesSet {
	q := qr.q
	mint, maxt := qr.mint, qr.maxt
	trim := true
	var fn string
	if hints != nil {
		fn = hints.Func
	}
	read := aggrReadFor(fn)
	req := &storepb.SeriesRequest{
		Matchers:            storeapi.MatchersToProto(ms),
		MaxResolutionWindow: resolutionWindow(ctx, hints, read),
		Aggregates:          read.aggregates(),
	}
	var limit int
	if hints != nil {
		mint, maxt = hints.Start, hints.End
		trim = !hints.DisableTrimming
		req.SkipChunks = hints.Func == "series"
		limit = max(hints.Limit, 0)
		req.Limit = int64(limit)
		req.QueryHints = &storepb.QueryHints{StepMillis: hints.Step}
		if hints.Func != "" {
			req.QueryHints.Func = &storepb.Func{Name: hints.Func}
		}
		if len(hints.Grouping) > 0 {
			// The engine may reorder hints.Grouping while the fan-out still runs.
			req.QueryHints.Grouping = &storepb.Grouping{By: hints.By, Labels: slices.Clone(hints.Grouping)}
		}
		if hints.Range > 0 {
			req.QueryHints.Range = &storepb.Range{Millis: hints.Range}
		}
	}
	req.MinTime, req.MaxTime = mint, maxt
	partial := q.partialResponse(ctx)
	if !partial {
		req.PartialResponseStrategy = storepb.PartialResponseStrategy_ABORT
	}
	dedupOn := q.dedup(ctx)

	ctx, cancel := context.WithCancel(ctx)
	stop := context.AfterFunc(qr.closed, cancel)
	set := &lazySeriesSet{done: make(chan struct{})}
	qr.wg.Go(func() {
		defer close(set.done)
		defer cancel()
		defer stop()
		set.set = q.selectSeries(ctx, req, ms, selectParams{
			mint: mint, maxt: maxt, trim: trim, limit: limit, dedup: dedupOn, partial: partial, read: read,
		})
	})
	return set
}

// selectParams are the per-request choices of one Select.
type selectParams struct {
	mint, maxt int64
	trim       bool
	limit      int
	dedup      bool
	partial    bool
	read       aggrRead // how aggregate chunks of downsampled data are read
}

func (q *Queryable) selectSeries(ctx context.Context, req *storepb.SeriesRequest, ms []*labels.Matcher, p selectParams) storage.SeriesSet {
	eps := q.set.acquire()
	defer release(eps)
	targets, unhealthy := pick(eps, p.mint, p.maxt, ms)
	results := fanout(ctx, q, "series", targets, func(ctx context.Context, e *endpoint) (storeSeries, error) {
		return readSeries(ctx, e, req)
	})
	annots, err := collectFailures(ctx, q, p.partial, unhealthy, results, func(r storeSeries) []string { return r.warnings })
	if err != nil {
		return storage.ErrSeriesSet(err)
	}
	var all []*mergedSeries
	for _, r := range results {
		if r.err == nil {
			all = append(all, r.val.series...)
		}
	}
	var set storage.SeriesSet = newSeriesSet(q.mergeSeries(all, p.dedup), p, annots)
	if p.dedup {
		set = dedup.NewSeriesSet(set, q.replicaLabels, dedup.Options{Algorithms: q.opts.DedupAlgorithms})
	}
	if p.limit > 0 {
		set = &limitSeriesSet{SeriesSet: set, left: p.limit}
	}
	return set
}

// storeSeries is the answer of one endpoint to a Series call.
type storeSeries struct {
	series   []*mergedSeries
	warnings []string
}

// readSeries reads an endpoint's whole Series stream.
func readSeries(ctx context.Context, e *endpoint, req *storepb.SeriesRequest) (storeSeries, error) {
	var out storeSeries
	stream, err := e.store.Series(ctx, req)
	if err != nil {
		return out, fmt.Errorf("series: %w", err)
	}
	// A chunk without raw data is a downsampled chunk; whether it holds the
	// aggregates the query reads is checked when it is read.
	add := func(s *storepb.Series) {
		out.series = append(out.series, &mergedSeries{lset: storeapi.LabelsFromProto(s.GetLabels()), chunks: s.GetChunks()})
	}
	for {
		resp, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return out, fmt.Errorf("receive series: %w", err)
		}
		switch r := resp.GetResult().(type) {
		case *storepb.SeriesResponse_Series:
			add(r.Series)
		case *storepb.SeriesResponse_Batch:
			for _, s := range r.Batch.GetSeries() {
				add(s)
			}
		case *storepb.SeriesResponse_Warning:
			out.warnings = append(out.warnings, r.Warning)
		}
	}
}

// LabelNames returns the sorted union of the label names of every endpoint
// that can hold matching series. With dedup on, replica labels are left out.
func (qr *querier) LabelNames(ctx context.Context, hints *storage.LabelHints, ms ...*labels.Matcher) ([]string, annotations.Annotations, error) {
	q := qr.q
	dedupOn, partial := q.dedup(ctx), q.partialResponse(ctx)
	req := &storepb.LabelNamesRequest{
		Start:    qr.mint,
		End:      qr.maxt,
		Matchers: storeapi.MatchersToProto(ms),
	}
	if !partial {
		req.PartialResponseStrategy = storepb.PartialResponseStrategy_ABORT
	}
	if dedupOn {
		req.WithoutReplicaLabels = q.replicaLabels
	}
	limit := 0
	if hints != nil && hints.Limit > 0 {
		limit = hints.Limit
		req.Limit = int64(limit)
	}
	return q.fanoutLabels(ctx, "label_names", qr.mint, qr.maxt, ms, partial, limit, func(ctx context.Context, e *endpoint) (labelsResult, error) {
		resp, err := e.store.LabelNames(ctx, req)
		if err != nil {
			return labelsResult{}, fmt.Errorf("label names: %w", err)
		}
		names := resp.GetNames()
		if dedupOn {
			names = slices.DeleteFunc(names, q.isReplicaLabel)
		}
		return labelsResult{values: names, warnings: resp.GetWarnings()}, nil
	})
}

// LabelValues returns the sorted union of the values of label name of every
// endpoint that can hold matching series. With dedup on, a replica label has
// no values.
func (qr *querier) LabelValues(ctx context.Context, name string, hints *storage.LabelHints, ms ...*labels.Matcher) ([]string, annotations.Annotations, error) {
	q := qr.q
	dedupOn, partial := q.dedup(ctx), q.partialResponse(ctx)
	if dedupOn && q.isReplicaLabel(name) {
		return nil, nil, nil
	}
	req := &storepb.LabelValuesRequest{
		Label:    name,
		Start:    qr.mint,
		End:      qr.maxt,
		Matchers: storeapi.MatchersToProto(ms),
	}
	if !partial {
		req.PartialResponseStrategy = storepb.PartialResponseStrategy_ABORT
	}
	if dedupOn {
		req.WithoutReplicaLabels = q.replicaLabels
	}
	limit := 0
	if hints != nil && hints.Limit > 0 {
		limit = hints.Limit
		req.Limit = int64(limit)
	}
	return q.fanoutLabels(ctx, "label_values", qr.mint, qr.maxt, ms, partial, limit, func(ctx context.Context, e *endpoint) (labelsResult, error) {
		resp, err := e.store.LabelValues(ctx, req)
		if err != nil {
			return labelsResult{}, fmt.Errorf("label values: %w", err)
		}
		return labelsResult{values: resp.GetValues(), warnings: resp.GetWarnings()}, nil
	})
}

// Close cancels the fan-outs still running and waits for them.
func (qr *querier) Close() error {
	qr.close()
	qr.wg.Wait()
	return nil
}

type labelsResult struct {
	values   []string
	warnings []string
}

// fanoutLabels fans a label request out and returns the sorted union of the
// answers.
func (q *Queryable) fanoutLabels(ctx context.Context, method string, mint, maxt int64, ms []*labels.Matcher, partial bool, limit int,
	call func(context.Context, *endpoint) (labelsResult, error),
) ([]string, annotations.Annotations, error) {
	eps := q.set.acquire()
	defer release(eps)
	targets, unhealthy := pick(eps, mint, maxt, ms)
	results := fanout(ctx, q, method, targets, call)
	annots, err := collectFailures(ctx, q, partial, unhealthy, results, func(r labelsResult) []string { return r.warnings })
	if err != nil {
		return nil, nil, err
	}
	var out []string
	for _, r := range results {
		if r.err == nil {
			out = append(out, r.val.values...)
		}
	}
	slices.Sort(out)
	out = slices.Compact(out)
	if limit > 0 && len(out) > limit {
		out = out[:limit]
	}
	return out, annots, nil
}

// pick returns the healthy endpoints that serve the Store API and can hold
// series in [mint, maxt] matching ms, and the unhealthy endpoints that could,
// judged by their last successful Info or, without one, assumed to. Endpoints
// that were never probed (just discovered) are in neither.
func pick(eps []*endpoint, mint, maxt int64, ms []*labels.Matcher) (targets, unhealthy []*endpoint) {
	for _, e := range eps {
		st := e.status()
		switch {
		case st.LastCheck.IsZero():
		case st.Healthy:
			if st.StoreAPI && st.mayMatch(mint, maxt, ms) {
				targets = append(targets, e)
			}
		case st.LastSuccess.IsZero() || (st.StoreAPI && st.mayMatch(mint, maxt, ms)):
			unhealthy = append(unhealthy, e)
		}
	}
	return targets, unhealthy
}

func release(eps []*endpoint) {
	for _, e := range eps {
		e.release()
	}
}

// result is the answer of one endpoint in a fan-out.
type result[T any] struct {
	e   *endpoint
	val T
	err error
}

// fanout calls call on every endpoint, at most Options.MaxConcurrency at once,
// and returns the results in the order of eps.
func fanout[T any](ctx context.Context, q *Queryable, method string, eps []*endpoint, call func(context.Context, *endpoint) (T, error)) []result[T] {
	if q.opts.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, q.opts.Timeout)
		defer cancel()
	}
	out := make([]result[T], len(eps))
	sem := make(chan struct{}, q.opts.MaxConcurrency)
	var wg sync.WaitGroup
	for i, e := range eps {
		wg.Go(func() {
			select {
			case sem <- struct{}{}:
			case <-ctx.Done():
				out[i] = result[T]{e: e, err: ctx.Err()}
				return
			}
			defer func() { <-sem }()
			start := time.Now()
			v, err := call(ctx, e)
			q.metrics.duration.WithLabelValues(method).Observe(time.Since(start).Seconds())
			res := "success"
			if err != nil {
				res = "error"
			}
			q.metrics.requests.WithLabelValues(method, res).Inc()
			out[i] = result[T]{e: e, val: v, err: err}
		})
	}
	wg.Wait()
	return out
}

// collectFailures turns unhealthy endpoints, failed calls and the endpoints'
// warnings into annotations that name the endpoint, or, with partial response
// disabled, into an error wrapping ErrPartialResult. A done ctx is an error
// either way: a cancelled query has no partial answer.
func collectFailures[T any](ctx context.Context, q *Queryable, partial bool, unhealthy []*endpoint, results []result[T], warnings func(T) []string) (annotations.Annotations, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	var failures []error
	for _, e := range unhealthy {
		st := e.status()
		err := st.LastError
		failures = append(failures, fmt.Errorf("endpoint %s is unhealthy: %w", e.addr, err))
	}
	for _, r := range results {
		if r.err != nil {
			failures = append(failures, fmt.Errorf("endpoint %s: %w", r.e.addr, r.err))
			continue
		}
		for _, w := range warnings(r.val) {
			failures = append(failures, fmt.Errorf("endpoint %s: %s", r.e.addr, w))
		}
	}
	if len(failures) == 0 {
		return nil, nil
	}
	if !partial {
		return nil, fmt.Errorf("%w: %w", ErrPartialResult, errors.Join(failures...))
	}
	var annots annotations.Annotations
	for _, f := range failures {
		q.logger.Debug("partial response", "err", f)
		annots.Add(f)
	}
	return annots, nil
}

// chunkQuerier serves the ChunkQuerier interface from a querier.
type chunkQuerier struct {
	*querier
}

// Select returns the series of querier.Select re-encoded as chunks.
func (c *chunkQuerier) Select(ctx context.Context, sortSeries bool, hints *storage.SelectHints, ms ...*labels.Matcher) storage.ChunkSeriesSet {
	return storage.NewSeriesSetToChunkSet(c.querier.Select(ctx, sortSeries, hints, ms...))
}
