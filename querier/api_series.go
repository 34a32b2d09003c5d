package querier

import (
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/metadata"
	"github.com/prometheus/prometheus/model/timestamp"
	"github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/util/annotations"

	"github.com/stratametrics/strata/internal/apijson"
)

func (a *API) series(r *http.Request) apiResult {
	if len(r.Form["match[]"]) == 0 {
		return apiBadData(errors.New("no match[] parameter provided"))
	}
	limit, err := apiParseLimit(r.FormValue("limit"))
	if err != nil {
		return apiInvalidParam(err, "limit")
	}
	start, err := apiParseTimeParam(r, "start", apijson.MinTime())
	if err != nil {
		return apiInvalidParam(err, "start")
	}
	end, err := apiParseTimeParam(r, "end", apijson.MaxTime())
	if err != nil {
		return apiInvalidParam(err, "end")
	}
	matcherSets, err := apiParseMatchers(a.parser, r.Form["match[]"])
	if err != nil {
		return apiInvalidParam(err, "match[]")
	}
	tenant, confined, err := a.tenant(r)
	if err != nil {
		return apiResult{err: &apiError{apiErrorInternal, err}}
	}
	if confined {
		matcherSets = confineMatcherSets(matcherSets, a.opts.Tenancy.label, tenant)
	}
	ctx, err := a.requestContext(r.Context(), r, 0)
	if err != nil {
		return apiBadData(err)
	}
	mint, maxt := timestamp.FromTime(start), timestamp.FromTime(end)
	q, err := a.dataFor(tenant, confined).Querier(mint, maxt)
	if err != nil {
		return apiResult{err: apiErrorFrom(err)}
	}
	// The labels read below may point into the querier's memory, so it closes after encoding.
	closer := func() { _ = q.Close() }

	hints := &storage.SelectHints{
		Start: mint,
		End:   maxt,
		Func:  "series", // Not a PromQL function: tells the storage that no samples are needed.
		Limit: apiHintLimit(limit),
	}
	var set storage.SeriesSet
	if len(matcherSets) == 1 {
		set = q.Select(ctx, true, hints, matcherSets[0]...)
	} else {
		sets := make([]storage.SeriesSet, 0, len(matcherSets))
		for _, ms := range matcherSets {
			sets = append(sets, q.Select(ctx, true, hints, ms...))
		}
		set = storage.NewMergeSeriesSet(sets, 0, storage.ChainedSeriesMerge)
	}

	out := apiSeriesData{}
	for i := 1; set.Next(); i++ {
		if i%apiCheckContextEvery == 0 {
			if err := ctx.Err(); err != nil {
				return apiResult{err: apiErrorFrom(err), finalizer: closer}
			}
		}
		out = append(out, set.At().Labels())
		if limit > 0 && len(out) > limit {
			break
		}
	}
	warnings := set.Warnings()
	if err := set.Err(); err != nil {
		return apiResult{err: apiErrorFrom(err), warnings: warnings, finalizer: closer}
	}
	if limit > 0 && len(out) > limit {
		out = out[:limit]
		warnings.Add(errors.New(apiTruncatedWarning))
	}
	return apiResult{data: out, warnings: warnings, finalizer: closer}
}

func (a *API) labelNames(r *http.Request) apiResult {
	return a.labelQuery(r, "")
}

func (a *API) labelValues(r *http.Request) apiResult {
	name := r.PathValue("name")
	if strings.HasPrefix(name, "U__") {
		name = model.UnescapeName(name, model.ValueEncodingEscaping)
	}
	if !model.UTF8Validation.IsValidLabelName(name) {
		return apiBadData(fmt.Errorf("invalid label name: %q", name))
	}
	return a.labelQuery(r, name)
}

// labelQuery answers labels when name is empty and label/<name>/values otherwise: the sorted
// union over all match[] sets, cut to limit.
func (a *API) labelQuery(r *http.Request, name string) apiResult {
	limit, err := apiParseLimit(r.FormValue("limit"))
	if err != nil {
		return apiInvalidParam(err, "limit")
	}
	start, err := apiParseTimeParam(r, "start", apijson.MinTime())
	if err != nil {
		return apiInvalidParam(err, "start")
	}
	end, err := apiParseTimeParam(r, "end", apijson.MaxTime())
	if err != nil {
		return apiInvalidParam(err, "end")
	}
	matcherSets, err := apiParseMatchers(a.parser, r.Form["match[]"])
	if err != nil {
		return apiBadData(err)
	}
	if len(matcherSets) == 0 {
		matcherSets = [][]*labels.Matcher{nil}
	}
	tenant, confined, err := a.tenant(r)
	if err != nil {
		return apiResult{err: &apiError{apiErrorInternal, err}}
	}
	if confined {
		// Without match[] this is {tenant_id="<tenant>"}: the names and values of the
		// tenant's series only, not of every series the stores hold.
		matcherSets = confineMatcherSets(matcherSets, a.opts.Tenancy.label, tenant)
	}
	ctx, err := a.requestContext(r.Context(), r, 0)
	if err != nil {
		return apiBadData(err)
	}
	q, err := a.dataFor(tenant, confined).Querier(timestamp.FromTime(start), timestamp.FromTime(end))
	if err != nil {
		return apiResult{err: apiErrorFrom(err)}
	}
	closer := func() { _ = q.Close() }

	hints := &storage.LabelHints{Limit: apiHintLimit(limit)}
	var (
		warnings annotations.Annotations
		out      []string
	)
	for _, ms := range matcherSets {
		var (
			vals []string
			ws   annotations.Annotations
		)
		if name == "" {
			vals, ws, err = q.LabelNames(ctx, hints, ms...)
		} else {
			vals, ws, err = q.LabelValues(ctx, name, hints, ms...)
		}
		warnings.Merge(ws)
		if err != nil {
			return apiResult{err: apiErrorFrom(err), warnings: warnings, finalizer: closer}
		}
		out = append(out, vals...)
	}
	slices.Sort(out)
	out = slices.Compact(out)
	if out == nil {
		out = []string{}
	}
	if limit > 0 && len(out) > limit {
		out = out[:limit]
		warnings.Add(errors.New(apiTruncatedWarning))
	}
	return apiResult{data: out, warnings: warnings, finalizer: closer}
}

func (a *API) metricMetadata(r *http.Request) apiResult {
	limit := -1
	if s := r.FormValue("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil {
			return apiBadData(errors.New("limit must be a number"))
		}
		limit = n
	}
	limitPerMetric := -1
	if s := r.FormValue("limit_per_metric"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil {
			return apiBadData(errors.New("limit_per_metric must be a number"))
		}
		limitPerMetric = n
	}
	// Strata keeps no metadata store yet; without a MetadataFunc the answer is an empty object,
	// which is what Prometheus answers when it knows no metadata.
	if a.opts.Metadata == nil {
		return apiResult{data: map[string][]metadata.Metadata{}}
	}
	if a.opts.Tenancy != nil {
		// Metadata is keyed by metric name only and carries no tenant label, so it cannot be
		// confined to a tenant: two tenants' metrics of one name share an entry, with whichever
		// help text came last. Under tenancy the answer is empty, as if no metadata were known.
		return apiResult{data: map[string][]metadata.Metadata{}}
	}
	ctx, err := a.requestContext(r.Context(), r, 0)
	if err != nil {
		return apiBadData(err)
	}
	md, err := a.opts.Metadata(ctx, r.FormValue("metric"), limit, limitPerMetric)
	if err != nil {
		return apiResult{err: apiErrorFrom(err)}
	}
	if md == nil {
		md = map[string][]metadata.Metadata{}
	}
	return apiResult{data: md}
}
