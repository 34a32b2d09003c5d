package querier

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/prometheus/prometheus/model/timestamp"
	"github.com/prometheus/prometheus/promql"
	"github.com/prometheus/prometheus/promql/parser"
	"github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/util/stats"

	"github.com/stratametrics/strata/internal/apijson"
	"github.com/stratametrics/strata/tenancy"
)

func (a *API) query(r *http.Request) (res apiResult) {
	limit, err := apiParseLimit(r.FormValue("limit"))
	if err != nil {
		return apiInvalidParam(err, "limit")
	}
	ts, err := apiParseTimeParam(r, "time", a.now())
	if err != nil {
		return apiInvalidParam(err, "time")
	}
	ctx := r.Context()
	if to := r.FormValue("timeout"); to != "" {
		timeout, err := apijson.ParseDuration(to)
		if err != nil {
			return apiInvalidParam(err, "timeout")
		}
		var cancel context.CancelFunc
		ctx, cancel = context.WithDeadline(ctx, a.now().Add(timeout))
		defer cancel()
	}
	ctx, err = a.requestContext(ctx, r, 0)
	if err != nil {
		return apiBadData(err)
	}
	opts, err := apiQueryOpts(r)
	if err != nil {
		return apiBadData(err)
	}
	qs, q, res, ok := a.confineQuery(r)
	if !ok {
		return res
	}
	if q, err = shardData(r, q); err != nil {
		return apiBadData(err)
	}
	qry, err := a.engine.NewInstantQuery(ctx, q, opts, qs, ts)
	if err != nil {
		return apiInvalidParam(err, "query")
	}
	res = a.exec(ctx, r, qry, limit)
	if qs != r.FormValue("query") {
		res.query = qs
	}
	return res
}

func (a *API) queryRange(r *http.Request) (res apiResult) {
	limit, err := apiParseLimit(r.FormValue("limit"))
	if err != nil {
		return apiInvalidParam(err, "limit")
	}
	start, err := apijson.ParseTime(r.FormValue("start"))
	if err != nil {
		return apiInvalidParam(err, "start")
	}
	end, err := apijson.ParseTime(r.FormValue("end"))
	if err != nil {
		return apiInvalidParam(err, "end")
	}
	if end.Before(start) {
		return apiInvalidParam(errors.New("end timestamp must not be before start time"), "end")
	}
	step, err := apijson.ParseDuration(r.FormValue("step"))
	if err != nil {
		return apiInvalidParam(err, "step")
	}
	if step <= 0 {
		return apiInvalidParam(errors.New("zero or negative query resolution step widths are not accepted. Try a positive integer"), "step")
	}
	// Bounds the points per series: 60s steps for a week or 1h steps for a year.
	if end.Sub(start)/step > apiMaxPointsPerSeries {
		return apiBadData(errors.New("exceeded maximum resolution of 11,000 points per timeseries. Try decreasing the query resolution (?step=XX)"))
	}
	ctx := r.Context()
	if to := r.FormValue("timeout"); to != "" {
		timeout, err := apijson.ParseDuration(to)
		if err != nil {
			return apiInvalidParam(err, "timeout")
		}
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, timeout)
		defer cancel()
	}
	ctx, err = a.requestContext(ctx, r, step)
	if err != nil {
		return apiBadData(err)
	}
	opts, err := apiQueryOpts(r)
	if err != nil {
		return apiBadData(err)
	}
	qs, q, res, ok := a.confineQuery(r)
	if !ok {
		return res
	}
	if q, err = shardData(r, q); err != nil {
		return apiBadData(err)
	}
	qry, err := a.engine.NewRangeQuery(ctx, q, opts, qs, start, end, step)
	if err != nil {
		return apiInvalidParam(err, "query")
	}
	res = a.exec(ctx, r, qry, limit)
	if qs != r.FormValue("query") {
		res.query = qs
	}
	return res
}

// confineQuery returns the expression a query or query_range request evaluates and the
// queryable it reads. With tenancy on, every vector selector of the expression gets the tenant
// matcher (tenancy.EnforceQueryWith, which parses the result again and checks it), and the
// queryable adds the matcher to every read as well: matchers are a conjunction, so a tenant's own
// matchers, regular expressions, or, label_replace, subqueries and @ can only narrow what it
// reads. The engine takes the expression as text, so a confined query is parsed once more by it.
// ok is false when res is the answer.
func (a *API) confineQuery(r *http.Request) (qs string, q storage.Queryable, res apiResult, ok bool) {
	qs = r.FormValue("query")
	tenant, confined, err := a.tenant(r)
	if err != nil {
		return "", nil, apiResult{err: &apiError{apiErrorInternal, err}}, false
	}
	if !confined {
		return qs, a.queryable, apiResult{}, true
	}
	out, err := tenancy.EnforceQueryWith(a.parser, qs, a.opts.Tenancy.label, tenant)
	switch {
	case errors.Is(err, tenancy.ErrEnforce):
		return "", nil, apiResult{err: &apiError{apiErrorInternal, err}}, false
	case err != nil:
		return "", nil, apiInvalidParam(err, "query"), false
	}
	return out, a.dataFor(tenant, true), apiResult{}, true
}

// exec runs qry and hands its closing to the response writer, which must encode the result
// before the query's memory is released.
func (a *API) exec(ctx context.Context, r *http.Request, qry promql.Query, limit int) (res apiResult) {
	defer func() {
		// Close here unless the finalizer will, which also covers a panic in Exec.
		if res.finalizer == nil {
			qry.Close()
		}
	}()
	out := qry.Exec(ctx)
	if out.Err != nil {
		return apiResult{err: apiErrorFrom(out.Err), warnings: out.Warnings, finalizer: qry.Close}
	}
	warnings := out.Warnings
	value := out.Value
	if limit > 0 {
		truncated := false
		switch v := value.(type) {
		case promql.Vector:
			if len(v) > limit {
				value, truncated = v[:limit], true
			}
		case promql.Matrix:
			if len(v) > limit {
				value, truncated = v[:limit], true
			}
		}
		if truncated {
			warnings.Add(errors.New(apiTruncatedWarning))
		}
	}
	var qs stats.QueryStats
	if r.FormValue("stats") != "" {
		qs = stats.NewQueryStats(qry.Stats())
	}
	return apiResult{
		data:      apiQueryData{resultType: value.Type(), result: value, stats: qs},
		warnings:  warnings,
		finalizer: qry.Close,
	}
}

// apiQueryOpts reads the per-query engine options: lookback_delta, and stats=all for per-step
// statistics.
func apiQueryOpts(r *http.Request) (promql.QueryOpts, error) {
	var lookback time.Duration
	if s := r.FormValue("lookback_delta"); s != "" {
		d, err := apijson.ParseDuration(s)
		if err != nil {
			return nil, fmt.Errorf("error parsing lookback delta duration: %w", err)
		}
		lookback = d
	}
	return promql.NewPrometheusQueryOpts(r.FormValue("stats") == "all", lookback), nil
}

func (a *API) queryExemplars(r *http.Request) apiResult {
	start, err := apiParseTimeParam(r, "start", apijson.MinTime())
	if err != nil {
		return apiInvalidParam(err, "start")
	}
	end, err := apiParseTimeParam(r, "end", apijson.MaxTime())
	if err != nil {
		return apiInvalidParam(err, "end")
	}
	if end.Before(start) {
		return apiBadData(errors.New("end timestamp must not be before start timestamp"))
	}
	expr, err := a.parser.ParseExpr(r.FormValue("query"))
	if err != nil {
		return apiBadData(err)
	}
	tenant, confined, err := a.tenant(r)
	if err != nil {
		return apiResult{err: &apiError{apiErrorInternal, err}}
	}
	var exemplars storage.ExemplarQueryable = a.opts.ExemplarQueryable
	if confined {
		// Every selector the exemplars are looked up by gets the tenant matcher, and the
		// exemplar querier adds it to every lookup as well.
		if err := tenancy.EnforceExpr(expr, a.opts.Tenancy.label, tenant); err != nil {
			return apiResult{err: &apiError{apiErrorInternal, err}}
		}
		if exemplars != nil {
			exemplars = tenantExemplarQueryable{q: exemplars, label: a.opts.Tenancy.label, tenant: tenant}
		}
	}
	selectors := parser.ExtractSelectors(expr)
	if len(selectors) == 0 {
		return apiResult{} // 204, as Prometheus answers a query without selectors.
	}
	ctx, err := a.requestContext(r.Context(), r, 0)
	if err != nil {
		return apiBadData(err)
	}
	if exemplars == nil {
		return apiResult{data: apiExemplarData{}}
	}
	eq, err := exemplars.ExemplarQuerier(ctx)
	if err != nil {
		return apiResult{err: apiErrorFrom(err)}
	}
	out, err := eq.Select(timestamp.FromTime(start), timestamp.FromTime(end), selectors...)
	if err != nil {
		return apiResult{err: apiErrorFrom(err)}
	}
	return apiResult{data: apiExemplarData(out)}
}

func (a *API) formatQuery(r *http.Request) apiResult {
	expr, err := a.parser.ParseExpr(r.FormValue("query"))
	if err != nil {
		return apiInvalidParam(err, "query")
	}
	return apiResult{data: expr.Pretty(0)}
}
