package sidecar

import (
	"context"
	"math"
	"sync/atomic"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/prompb"
	"github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/util/annotations"
)

// reader is the storage of the sidecar's TSDBStore (a storeapi.TSDBReader):
// Prometheus, read over its APIs. It is safe for concurrent use.
type reader struct {
	prom    *promClient
	metrics *metrics
	// lowest is Prometheus' oldest timestamp as last refreshed;
	// math.MinInt64 until the first refresh, so nothing is ruled out.
	lowest atomic.Int64
}

func newReader(prom *promClient, m *metrics) *reader {
	r := &reader{prom: prom, metrics: m}
	r.lowest.Store(math.MinInt64)
	return r
}

// ChunkQuerier returns a querier over [mint, maxt]. It opens nothing: every
// call of the querier is one request to Prometheus.
func (r *reader) ChunkQuerier(mint, maxt int64) (storage.ChunkQuerier, error) {
	return &chunkQuerier{r: r, mint: mint, maxt: maxt}, nil
}

// StartTime returns Prometheus' oldest timestamp as of the last refresh.
func (r *reader) StartTime() (int64, error) { return r.lowest.Load(), nil }

// chunkQuerier reads one time range of Prometheus.
type chunkQuerier struct {
	r          *reader
	mint, maxt int64
}

// Select returns the series ms selects in the querier's range, always sorted.
// Series without chunks
// (hints.Func "series", as for a Store API request with skip_chunks) come from
// the series API, everything else from remote read.
func (q *chunkQuerier) Select(ctx context.Context, _ bool, hints *storage.SelectHints, ms ...*labels.Matcher) storage.ChunkSeriesSet {
	mint, maxt := q.mint, q.maxt
	if hints != nil && hints.Func == "series" {
		sets, annots, err := q.r.prom.series(ctx, mint, maxt, ms)
		if err != nil {
			return storage.ErrChunkSeriesSet(err)
		}
		series := make([]*chunkSeries, 0, len(sets))
		for _, ls := range sets {
			series = append(series, &chunkSeries{lset: ls})
		}
		return &seriesSet{series: mergeSeries(series), annots: annots}
	}

	series, err := q.r.prom.remoteRead(ctx, &prompb.Query{
		StartTimestampMs: mint,
		EndTimestampMs:   maxt,
		Matchers:         remoteMatchers(ms),
		Hints:            &prompb.ReadHints{StartMs: mint, EndMs: maxt},
	})
	q.r.metrics.remoteReads.Inc()
	if err != nil {
		q.r.metrics.remoteReadFailures.Inc()
		return storage.ErrChunkSeriesSet(err)
	}
	return &seriesSet{series: series}
}

// remoteMatchers returns ms as remote-read matchers, with the same rule as
// selector: the all-series matcher is dropped, and a set without a matcher
// that requires a value gets __name__=~".+".
func remoteMatchers(ms []*labels.Matcher) []*prompb.LabelMatcher {
	var (
		out      []*prompb.LabelMatcher
		nonEmpty bool
	)
	for _, m := range ms {
		if m.Name == "" && m.Type == labels.MatchEqual && m.Value == "" {
			continue
		}
		var t prompb.LabelMatcher_Type
		switch m.Type {
		case labels.MatchEqual:
			t = prompb.LabelMatcher_EQ
		case labels.MatchNotEqual:
			t = prompb.LabelMatcher_NEQ
		case labels.MatchRegexp:
			t = prompb.LabelMatcher_RE
		case labels.MatchNotRegexp:
			t = prompb.LabelMatcher_NRE
		}
		out = append(out, &prompb.LabelMatcher{Type: t, Name: m.Name, Value: m.Value})
		nonEmpty = nonEmpty || !m.Matches("")
	}
	if !nonEmpty {
		out = append(out, &prompb.LabelMatcher{Type: prompb.LabelMatcher_RE, Name: model.MetricNameLabel, Value: ".+"})
	}
	return out
}

// LabelValues returns the values of label name on the series ms selects.
func (q *chunkQuerier) LabelValues(ctx context.Context, name string, _ *storage.LabelHints, ms ...*labels.Matcher) ([]string, annotations.Annotations, error) {
	return q.r.prom.labelValues(ctx, name, q.mint, q.maxt, ms)
}

// LabelNames returns the label names of the series ms selects.
func (q *chunkQuerier) LabelNames(ctx context.Context, _ *storage.LabelHints, ms ...*labels.Matcher) ([]string, annotations.Annotations, error) {
	return q.r.prom.labelNames(ctx, q.mint, q.maxt, ms)
}

// Close does nothing: every call has finished its request.
func (*chunkQuerier) Close() error { return nil }

// seriesSet is a storage.ChunkSeriesSet over series read in full.
type seriesSet struct {
	series []*chunkSeries
	cur    *chunkSeries
	annots annotations.Annotations
}

func (s *seriesSet) Next() bool {
	if len(s.series) == 0 {
		return false
	}
	s.cur, s.series = s.series[0], s.series[1:]
	return true
}

func (s *seriesSet) At() storage.ChunkSeries           { return s.cur }
func (*seriesSet) Err() error                          { return nil }
func (s *seriesSet) Warnings() annotations.Annotations { return s.annots }
