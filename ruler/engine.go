package ruler

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql"
	"github.com/prometheus/prometheus/promql/parser"
	"github.com/prometheus/prometheus/rules"
	"github.com/prometheus/prometheus/storage"

	"github.com/stratametrics/strata/querier"
)

// newEngine builds the in-process evaluation over Config.Endpoints: the
// querier's fan-out, merge and replica deduplication under a PromQL engine of
// its own. The returned set must be run and closed.
func newEngine(cfg Config, reg prometheus.Registerer, logger *slog.Logger) (
	*querier.EndpointSet, func(context.Context, string, time.Time, bool) (promql.Vector, error), storage.Queryable, error,
) {
	set, err := querier.NewEndpointSet(querier.EndpointSetOptions{Endpoints: cfg.Endpoints, Resolver: cfg.Resolver, TLS: cfg.EndpointTLS}, reg, logger)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("store API endpoints: %w", err)
	}
	q := querier.NewQueryable(set, querier.Options{
		ReplicaLabels:          cfg.ReplicaLabels,
		DisablePartialResponse: !cfg.PartialResponse,
		Timeout:                cfg.QueryTimeout,
	}, reg, logger)
	timeout := cfg.QueryTimeout
	if timeout <= 0 {
		timeout = querier.DefaultQueryTimeout
	}
	engine := promql.NewEngine(promql.EngineOpts{
		Logger:               logger,
		Reg:                  reg,
		MaxSamples:           querier.DefaultQueryMaxSamples,
		Timeout:              timeout,
		LookbackDelta:        querier.DefaultQueryLookbackDelta,
		EnableAtModifier:     true,
		EnableNegativeOffset: true,
		Parser:               parser.NewParser(parser.Options{}),
	})
	eval := rules.EngineQueryFunc(engine, q)
	query := func(ctx context.Context, qs string, t time.Time, partial bool) (promql.Vector, error) {
		return eval(querier.WithPartialResponse(ctx, partial), qs, t)
	}
	return set, query, q, nil
}

func (r *Ruler) closeEndpoints() error {
	if r.endpoints == nil {
		return nil
	}
	if err := r.endpoints.Close(); err != nil {
		return fmt.Errorf("close store API endpoints: %w", err)
	}
	return nil
}

// dropLabelsQueryable removes the named labels from every series it returns.
// The rule manager reads ALERTS_FOR_STATE back through it: the series carry
// the labels added on the way to storage (the ruler's external labels, the
// receivers' tenant label), which must go for them to match the alerts' own
// label sets.
type dropLabelsQueryable struct {
	storage.Queryable
	drop []string
}

func (q dropLabelsQueryable) Querier(mint, maxt int64) (storage.Querier, error) {
	qr, err := q.Queryable.Querier(mint, maxt)
	if err != nil {
		return nil, err
	}
	return dropLabelsQuerier{Querier: qr, drop: q.drop}, nil
}

type dropLabelsQuerier struct {
	storage.Querier
	drop []string
}

func (q dropLabelsQuerier) Select(ctx context.Context, sortSeries bool, hints *storage.SelectHints, ms ...*labels.Matcher) storage.SeriesSet {
	return &dropLabelsSeriesSet{SeriesSet: q.Querier.Select(ctx, sortSeries, hints, ms...), b: labels.NewBuilder(labels.EmptyLabels()), drop: q.drop}
}

type dropLabelsSeriesSet struct {
	storage.SeriesSet
	b    *labels.Builder
	drop []string
}

func (s *dropLabelsSeriesSet) At() storage.Series {
	series := s.SeriesSet.At()
	s.b.Reset(series.Labels())
	return relabeledSeries{Series: series, lset: s.b.Del(s.drop...).Labels()}
}

type relabeledSeries struct {
	storage.Series
	lset labels.Labels
}

func (s relabeledSeries) Labels() labels.Labels { return s.lset }
