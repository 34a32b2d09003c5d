package querier

import (
	"context"
	"net/http"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/storage"

	"github.com/stratametrics/strata/queryshard"
)

// shardData returns q confined to the shard that the request's shard
// parameters select (see queryshard.FromForm), or q itself when the request
// has none. The filter wraps the queryable the engine reads, so it sees the
// labels the engine sees: after merge, replica dedup and tenancy. It cannot be
// lost the way APIOptions.Context can drop parameters, which matters: a shard
// that answered for every series would be counted several times.
func shardData(r *http.Request, q storage.Queryable) (storage.Queryable, error) {
	sel, ok, err := queryshard.FromForm(r.Form)
	if err != nil || !ok {
		return q, err
	}
	return shardQueryable{q: q, sel: sel}, nil
}

// shardQueryable keeps the series of one shard of every Select.
type shardQueryable struct {
	q   storage.Queryable
	sel queryshard.Selector
}

func (s shardQueryable) Querier(mint, maxt int64) (storage.Querier, error) {
	qr, err := s.q.Querier(mint, maxt)
	if err != nil {
		return nil, err
	}
	return shardQuerier{Querier: qr, sel: s.sel}, nil
}

type shardQuerier struct {
	storage.Querier
	sel queryshard.Selector
}

// Select drops the series of other shards. Order, warnings and errors pass
// through unchanged.
func (s shardQuerier) Select(ctx context.Context, sortSeries bool, hints *storage.SelectHints, ms ...*labels.Matcher) storage.SeriesSet {
	return &shardSeriesSet{SeriesSet: s.Querier.Select(ctx, sortSeries, hints, ms...), sel: s.sel}
}

type shardSeriesSet struct {
	storage.SeriesSet
	sel queryshard.Selector
}

func (s *shardSeriesSet) Next() bool {
	for s.SeriesSet.Next() {
		if s.sel.Matches(s.SeriesSet.At().Labels()) {
			return true
		}
	}
	return false
}
