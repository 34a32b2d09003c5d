package queryfrontend

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/prometheus/promql/parser"

	"github.com/stratametrics/strata/internal/apijson"
	"github.com/stratametrics/strata/queryshard"
	"github.com/stratametrics/strata/storegw/cache"
)

// maxPointsPerSeries is the queriers' bound on the points of a range query
// per series. The frontend passes larger queries through unsplit, so that
// they get the querier's own error rather than being answered in pieces.
const maxPointsPerSeries = 11000

// Config configures a Frontend.
type Config struct {
	// Downstreams are the base URLs of the queriers, e.g.
	// http://querier:10902. Requests go to them in turn.
	Downstreams []*url.URL
	// Transport is the transport to the queriers; nil means a default one.
	Transport http.RoundTripper
	// DownstreamTimeout bounds each request to a querier; 0 means none
	// beyond the client's own.
	DownstreamTimeout time.Duration
	// MaxRetries is how many times a request is sent again, to the next
	// querier, when one cannot be reached or answers 502, 503 or 504.
	MaxRetries int
	// SplitInterval cuts range queries at multiples of it since the epoch
	// (UTC midnights for 24h); 0 disables splitting, and with it caching.
	SplitInterval time.Duration
	// AlignRangeWithStep snaps start and end to multiples of the step, so
	// that requests from clients that do not align share cached results.
	// It moves the evaluation times of such requests; without it, the
	// answer's points are exactly the querier's.
	AlignRangeWithStep bool
	// MaxParallelism bounds the requests one range query has in flight.
	MaxParallelism int
	// Cache holds the results cache's extents; nil disables it. Caching
	// needs a SplitInterval.
	Cache cache.Cache
	// CacheFreshness keeps results newer than now-CacheFreshness out of the
	// cache.
	CacheFreshness time.Duration
	// Shards runs shardable aggregations as this many queries over disjoint
	// sets of series in parallel; below 2 disables sharding.
	Shards int
	// SlowQueryThreshold logs every request that takes longer; 0 disables
	// the log.
	SlowQueryThreshold time.Duration
	// TenantHeader names the header that carries the tenant, and
	// DefaultTenant is the tenant of requests without it. Cache keys hold
	// the tenant and a hash of the Authorization header.
	TenantHeader  string
	DefaultTenant string
	Logger        *slog.Logger
	Registerer    prometheus.Registerer
	// Now returns the current time; nil means time.Now.
	Now func() time.Time
}

// Frontend is an http.Handler for the Prometheus HTTP API in front of
// queriers. It answers /api/v1/query_range itself, by aligning, splitting,
// caching and sharding, and passes every other request through.
type Frontend struct {
	cfg    Config
	down   *downstream
	cache  *ResultsCache
	parser parser.Parser
	sem    chan struct{}
	m      *metrics
	logger *slog.Logger
	now    func() time.Time
}

// New returns a Frontend for cfg.
func New(cfg Config) (*Frontend, error) {
	if len(cfg.Downstreams) == 0 {
		return nil, errors.New("no downstream querier")
	}
	if cfg.MaxParallelism <= 0 {
		cfg.MaxParallelism = 14
	}
	if cfg.MaxRetries < 0 {
		return nil, fmt.Errorf("max retries %d is negative", cfg.MaxRetries)
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	p := parser.NewParser(parser.Options{})
	f := &Frontend{
		cfg:    cfg,
		parser: p,
		sem:    make(chan struct{}, cfg.MaxParallelism),
		m:      newMetrics(cfg.Registerer),
		logger: cfg.Logger,
		now:    cfg.Now,
	}
	f.down = &downstream{urls: cfg.Downstreams, client: newHTTPClient(cfg.Transport, cfg.DownstreamTimeout), retries: cfg.MaxRetries, m: f.m}
	if cfg.Cache != nil {
		if cfg.SplitInterval <= 0 {
			return nil, errors.New("the results cache needs a split interval")
		}
		rc, err := NewResultsCache(cfg.Cache, cfg.SplitInterval, cfg.CacheFreshness, p)
		if err != nil {
			return nil, err
		}
		f.cache = rc
	}
	return f, nil
}

// ServeHTTP answers range queries and passes everything else through.
func (f *Frontend) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	if r.URL.Path == "/api/v1/query_range" && (r.Method == http.MethodGet || r.Method == http.MethodPost) {
		if err := r.ParseForm(); err != nil {
			writeAPIError(w, http.StatusBadRequest, "bad_data", fmt.Sprintf("invalid form: %v", err))
			return
		}
		if rq, ok := f.rangeRequest(r); ok {
			f.serveRange(w, r, rq, start)
			return
		}
		// Pass the parameters ParseForm read from the body on in the URL.
		if r.Method == http.MethodPost {
			r.Body = http.NoBody
			r.URL.RawQuery = r.Form.Encode()
			r.Method = http.MethodGet
		}
	}
	f.m.proxied.Inc()
	f.down.proxy(w, r)
	f.logIfSlow(r, start, "proxied", r.URL.Path)
}

// rangeQuery is a range query the frontend handles.
type rangeQuery struct {
	Request
	// whole is true for a query that must not be split: @ start() and
	// @ end() refer to the range of the request the querier gets.
	whole bool
	// plan, if sharded, is how to run the query in shards.
	plan    queryshard.Plan
	sharded bool
}

// rangeRequest reads a range query the frontend can handle, or false if the
// request must go to a querier as it is: a parameter the frontend cannot
// read (the querier gives the precise error), per-step statistics, which
// split answers cannot merge, or more points than the queriers allow.
func (f *Frontend) rangeRequest(r *http.Request) (rangeQuery, bool) {
	if r.Form.Get("stats") != "" || r.Form.Get("query") == "" {
		return rangeQuery{}, false
	}
	start, ok1 := parseTime(r.Form.Get("start"))
	end, ok2 := parseTime(r.Form.Get("end"))
	step, ok3 := parseStep(r.Form.Get("step"))
	// end-start is negative only when it overflows (Prometheus' minimum and
	// maximum times).
	if !ok1 || !ok2 || !ok3 || end < start || end-start < 0 || (end-start)/step.Milliseconds() > maxPointsPerSeries {
		return rangeQuery{}, false
	}
	expr, err := f.parser.ParseExpr(r.Form.Get("query"))
	if err != nil {
		return rangeQuery{}, false
	}
	rq := rangeQuery{
		Request: Request{
			Query:   r.Form.Get("query"),
			Start:   start,
			End:     end,
			Step:    step,
			Tenant:  f.tenantKey(r),
			Options: formKey(r.Form, "query", "start", "end", "step", "timeout"),
		},
		whole: usesStartOrEnd(expr),
	}
	// A limit truncates each shard's answer, not the combined one; a
	// client's own shard parameters are its business.
	if f.cfg.Shards >= 2 && r.Form.Get("limit") == "" && !formHasShard(r.Form) {
		rq.plan, rq.sharded = queryshard.PlanExpr(expr)
	}
	return rq, true
}

// formHasShard reports whether a request already selects a shard.
func formHasShard(form url.Values) bool {
	return form.Has(queryshard.ParamShard) || form.Has(queryshard.ParamShardBy) || form.Has(queryshard.ParamShardWithout)
}

// tenantKey is the tenant part of r's cache keys: the tenant header (or the
// default tenant) and the Authorization header, so that requests only share
// results with requests that present the same credential. Keys are SHA-256
// hashes, so the credential is not stored in the cache.
func (f *Frontend) tenantKey(r *http.Request) string {
	tenant := ""
	if f.cfg.TenantHeader != "" {
		tenant = r.Header.Get(f.cfg.TenantHeader)
	}
	if tenant == "" {
		tenant = f.cfg.DefaultTenant
	}
	b := appendString(nil, tenant)
	if auth := r.Header.Get("Authorization"); auth != "" {
		b = appendString(b, auth)
	}
	return string(b)
}

// rangeStats describes how a range query was answered, for the response
// headers, the metrics and the slow-query log.
type rangeStats struct {
	mu       sync.Mutex
	splits   int
	outcomes [CacheHit + 1]int
	shards   int
}

func (s *rangeStats) add(o CacheOutcome) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.outcomes[o]++
}

func (s *rangeStats) sharded(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.shards = max(s.shards, n)
}

func (s *rangeStats) String() string {
	return fmt.Sprintf("splits=%d hit=%d partial=%d miss=%d bypass=%d", s.splits,
		s.outcomes[CacheHit], s.outcomes[CachePartial], s.outcomes[CacheMiss], s.outcomes[CacheBypass])
}

// shardCount returns the shards any piece ran in, 0 for none.
func (s *rangeStats) shardCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.shards
}

// serveRange answers a range query from its splits.
func (f *Frontend) serveRange(w http.ResponseWriter, r *http.Request, rq rangeQuery, start time.Time) {
	req := rq.Request
	ctx := r.Context()
	if to := r.Form.Get("timeout"); to != "" {
		if d, ok := parseStep(to); ok {
			var cancel context.CancelFunc
			ctx, cancel = context.WithTimeout(ctx, d)
			defer cancel()
		}
	}
	orig := req
	var err error
	if f.cfg.AlignRangeWithStep {
		req, err = Align(req)
	}
	if err == nil {
		req, err = Trunc(req)
	}
	subs := []Request{req}
	if err == nil && f.cfg.SplitInterval > 0 && !rq.whole {
		subs, err = Split(req, f.cfg.SplitInterval)
	}
	if err != nil {
		// rangeRequest checked the step and the range; this is a bug, and
		// the querier can still answer.
		f.logger.Error("range query not split", "query", req.Query, "err", err)
		f.m.proxied.Inc()
		f.down.proxy(w, r)
		return
	}
	stats := &rangeStats{splits: len(subs)}
	f.m.splits.Add(float64(len(subs)))

	parts, errs := f.fetchSplits(ctx, r, rq, subs, stats)
	for o, n := range stats.outcomes {
		if f.cache != nil && n > 0 {
			f.m.cache.WithLabelValues(CacheOutcome(o).String()).Add(float64(n))
		}
	}
	code := http.StatusOK
	defer func() {
		f.m.queries.WithLabelValues(strconv.Itoa(code)).Inc()
		f.m.duration.Observe(time.Since(start).Seconds())
		f.logIfSlow(r, start, "range", orig.Query, "start", time.UnixMilli(orig.Start).UTC(), "end", time.UnixMilli(orig.End).UTC(), "step", orig.Step, "code", code, "stats", stats.String(), "shards", stats.shardCount())
	}()
	if err := errors.Join(errs...); err != nil {
		code = writeFetchError(w, errs)
		return
	}
	resp := trim(Merge(parts...), orig.Start, orig.End)
	if f.cache != nil {
		if ce, ok := f.cfg.Cache.(interface{ LastError() error }); ok {
			if err := ce.LastError(); err != nil {
				f.m.cacheSkipped.Inc()
				resp.Warnings = append(resp.Warnings, fmt.Sprintf("results cache unavailable, answered without it: %v", err))
			}
		}
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("X-Strata-Results-Cache", stats.String())
	if n := stats.shardCount(); n > 0 {
		h.Set("X-Strata-Query-Shards", strconv.Itoa(n))
	}
	w.WriteHeader(code)
	_, _ = w.Write(appendMatrix(nil, resp))
}

// fetchSplits answers the pieces of a range query, in parallel. Without a
// results cache, or for a query that is not split, each piece is one
// downstream query. With the cache, each run of consecutive pieces that the
// cache holds nothing of is one downstream query whose answer is cached
// piece by piece, and each piece the cache holds some of is answered from
// it, fetching only what it lacks.
func (f *Frontend) fetchSplits(ctx context.Context, r *http.Request, rq rangeQuery, subs []Request, stats *rangeStats) ([]Response, []error) {
	parts := make([]Response, len(subs))
	errs := make([]error, len(subs))
	fetch := func(ctx context.Context, q Request) (Response, error) {
		return f.fetch(ctx, r, q, rq, stats)
	}
	var wg sync.WaitGroup
	if f.cache == nil || rq.whole {
		for i, sub := range subs {
			wg.Go(func() {
				parts[i], errs[i] = fetch(ctx, sub)
				stats.add(CacheBypass)
			})
		}
		wg.Wait()
		return parts, errs
	}
	now := f.now()
	looks, err := f.cache.LookupAll(subs, now)
	if err != nil {
		// Split made the pieces; this is a bug.
		errs[0] = err
		return parts, errs
	}
	for i := 0; i < len(looks); {
		lo, hi := i, i+1
		if looks[lo].Hit() {
			wg.Go(func() {
				var o CacheOutcome
				parts[lo], o, errs[lo] = f.cache.FetchLookup(ctx, looks[lo], fetch)
				stats.add(o)
			})
			i = hi
			continue
		}
		for hi < len(looks) && !looks[hi].Hit() {
			hi++
		}
		wg.Go(func() {
			resps, outcomes, err := f.cache.FetchRun(ctx, looks[lo:hi], fetch)
			if err != nil {
				errs[lo] = err
				return
			}
			copy(parts[lo:hi], resps)
			for _, o := range outcomes {
				stats.add(o)
			}
		})
		i = hi
	}
	wg.Wait()
	return parts, errs
}

// fetch runs one piece of a range query on the queriers, in shards when
// the query allows it. Shard answers that cannot be combined exactly (native
// histograms in a combine, or a warning where the plan says a warning may
// mean a difference) are thrown away and the piece runs unsharded.
func (f *Frontend) fetch(ctx context.Context, r *http.Request, q Request, rq rangeQuery, stats *rangeStats) (Response, error) {
	if !rq.sharded {
		return f.fetchOne(ctx, r, q, nil)
	}
	n := f.cfg.Shards
	shards := make([]Response, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			extra := url.Values{}
			rq.plan.Selector(i, n).AddTo(extra)
			shards[i], errs[i] = f.fetchOne(ctx, r, q, extra)
		})
	}
	wg.Wait()
	for _, err := range errs {
		// A querier's own answer (a bad query, too many samples) is the
		// same unsharded; pass the first one on.
		if err != nil {
			return Response{}, err
		}
	}
	var warnings, infos []string
	for _, s := range shards {
		warnings = appendUnique(warnings, s.Warnings)
		infos = appendUnique(infos, s.Infos)
	}
	resp, ok := CombineShards(rq.plan, shards)
	if !ok || (rq.plan.FallbackOnWarnings && len(warnings) > 0) {
		f.m.shardFall.Inc()
		return f.fetchOne(ctx, r, q, nil)
	}
	f.m.sharded.Inc()
	stats.sharded(n)
	resp.Warnings, resp.Infos = warnings, infos
	return resp, nil
}

// fetchOne runs q on a querier, with r's other parameters and headers and
// extra parameters added, holding one of the frontend's parallelism slots.
func (f *Frontend) fetchOne(ctx context.Context, r *http.Request, q Request, extra url.Values) (Response, error) {
	select {
	case f.sem <- struct{}{}:
	case <-ctx.Done():
		return Response{}, ctx.Err()
	}
	defer func() { <-f.sem }()
	form := url.Values{}
	for k, vv := range r.Form {
		form[k] = vv
	}
	form.Set("start", formatMillis(q.Start))
	form.Set("end", formatMillis(q.End))
	form.Set("step", strconv.FormatFloat(q.Step.Seconds(), 'f', -1, 64))
	for k, vv := range extra {
		form[k] = vv
	}
	return f.down.queryRange(ctx, form, r.Header)
}

// writeFetchError answers the first error among errs and returns the status
// code: a querier's own answer is passed on as it is, anything else is 503.
func writeFetchError(w http.ResponseWriter, errs []error) int {
	var de *downstreamError
	for _, err := range errs {
		if errors.As(err, &de) {
			copyHeader(w.Header(), de.header)
			w.Header().Del("Content-Length")
			w.WriteHeader(de.status)
			_, _ = w.Write(de.body)
			return de.status
		}
	}
	for _, err := range errs {
		if err != nil {
			writeUnavailable(w, err)
			if errors.Is(err, context.Canceled) {
				return 499
			}
			return http.StatusServiceUnavailable
		}
	}
	return http.StatusOK
}

// logIfSlow logs a request that took longer than the slow-query threshold.
func (f *Frontend) logIfSlow(r *http.Request, start time.Time, kind, query string, attrs ...any) {
	took := time.Since(start)
	if f.cfg.SlowQueryThreshold <= 0 || took <= f.cfg.SlowQueryThreshold {
		return
	}
	if kind == "proxied" {
		query = r.FormValue("query")
		attrs = append(attrs, "path", r.URL.Path)
	}
	f.m.slow.Inc()
	tenant := f.cfg.DefaultTenant
	if f.cfg.TenantHeader != "" && r.Header.Get(f.cfg.TenantHeader) != "" {
		tenant = r.Header.Get(f.cfg.TenantHeader)
	}
	f.logger.Warn("slow query", append([]any{"kind", kind, "query", query, "tenant", tenant, "duration", took, "threshold", f.cfg.SlowQueryThreshold, "remote", r.RemoteAddr}, attrs...)...)
}

// parseTime reads a time parameter as the querier does (apijson.ParseTime)
// into Unix milliseconds, or false for a value the querier would refuse or
// one outside Prometheus' time range.
func parseTime(s string) (int64, bool) {
	t, err := apijson.ParseTime(s)
	if err != nil || t.Before(apijson.MinTime()) || t.After(apijson.MaxTime()) {
		return 0, false
	}
	return t.UnixMilli(), true
}

// parseStep reads a step as the querier does (apijson.ParseDuration); the
// frontend handles whole, positive milliseconds only.
func parseStep(s string) (time.Duration, bool) {
	d, err := apijson.ParseDuration(s)
	if err != nil || d <= 0 || d%time.Millisecond != 0 {
		return 0, false
	}
	return d, true
}
