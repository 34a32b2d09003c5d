package querier

import (
	"encoding/json"
	"strconv"

	"github.com/prometheus/prometheus/model/exemplar"
	"github.com/prometheus/prometheus/model/histogram"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql"
	"github.com/prometheus/prometheus/promql/parser"
	"github.com/prometheus/prometheus/util/stats"

	"github.com/stratametrics/strata/internal/apijson"
)

// The encoders in this file produce the same bytes as Prometheus' web/api/v1 JSON codec, which is
// built on jsoniter; internal/apijson has the details that are easy to get wrong (label strings
// without HTML escaping, sample value formats). Scalars and strings keep promql's own
// MarshalJSON, which always uses 'f'.
//
// Hand-written appenders are used instead of reflection for the large payloads (vectors, matrices,
// series lists) because a query result can hold millions of points.

// apiAppender is implemented by response payloads that encode themselves without reflection.
type apiAppender interface {
	appendJSON(b []byte) ([]byte, error)
}

// apiQueryData is the data of a query or query_range response.
type apiQueryData struct {
	resultType parser.ValueType
	result     parser.Value
	stats      stats.QueryStats
}

func (d apiQueryData) appendJSON(b []byte) ([]byte, error) {
	b = append(b, `{"resultType":`...)
	b = apijson.AppendString(b, string(d.resultType))
	b = append(b, `,"result":`...)
	var err error
	switch v := d.result.(type) {
	case promql.Vector:
		b = apiAppendVector(b, v)
	case promql.Matrix:
		b = apiAppendMatrix(b, v)
	default:
		// promql.Scalar and promql.String implement json.Marshaler; Prometheus uses exactly
		// those methods for them.
		b, err = apiAppendMarshal(b, v)
		if err != nil {
			return nil, err
		}
	}
	if d.stats != nil {
		b = append(b, `,"stats":`...)
		if b, err = apiAppendMarshal(b, d.stats); err != nil {
			return nil, err
		}
	}
	return append(b, '}'), nil
}

// apiSeriesData is the data of a series response.
type apiSeriesData []labels.Labels

func (d apiSeriesData) appendJSON(b []byte) ([]byte, error) {
	b = append(b, '[')
	for i, ls := range d {
		if i > 0 {
			b = append(b, ',')
		}
		b = apijson.AppendLabels(b, ls)
	}
	return append(b, ']'), nil
}

// apiExemplarData is the data of a query_exemplars response.
type apiExemplarData []exemplar.QueryResult

func (d apiExemplarData) appendJSON(b []byte) ([]byte, error) {
	b = append(b, '[')
	for i, r := range d {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"seriesLabels":`...)
		b = apijson.AppendLabels(b, r.SeriesLabels)
		b = append(b, `,"exemplars":[`...)
		for j, e := range r.Exemplars {
			if j > 0 {
				b = append(b, ',')
			}
			b = append(b, `{"labels":`...)
			b = apijson.AppendLabels(b, e.Labels)
			b = append(b, `,"value":`...)
			b = apijson.AppendFloat(b, e.Value)
			b = append(b, `,"timestamp":`...)
			b = apijson.AppendTimestamp(b, e.Ts)
			b = append(b, '}')
		}
		b = append(b, "]}"...)
	}
	return append(b, ']'), nil
}

func apiAppendMarshal(b []byte, v any) ([]byte, error) {
	enc, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	return append(b, enc...), nil
}

func apiAppendVector(b []byte, v promql.Vector) []byte {
	b = append(b, '[')
	for i, s := range v {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"metric":`...)
		b = apijson.AppendLabels(b, s.Metric)
		if s.H == nil {
			b = append(b, `,"value":[`...)
			b = apijson.AppendTimestamp(b, s.T)
			b = append(b, ',')
			b = apijson.AppendFloat(b, s.F)
		} else {
			b = append(b, `,"histogram":[`...)
			b = apijson.AppendTimestamp(b, s.T)
			b = append(b, ',')
			b = apiAppendHistogram(b, s.H)
		}
		b = append(b, "]}"...)
	}
	return append(b, ']')
}

func apiAppendMatrix(b []byte, m promql.Matrix) []byte {
	b = append(b, '[')
	for i, s := range m {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"metric":`...)
		b = apijson.AppendLabels(b, s.Metric)
		if len(s.Floats) > 0 {
			b = append(b, `,"values":[`...)
			for j, p := range s.Floats {
				if j > 0 {
					b = append(b, ',')
				}
				b = append(b, '[')
				b = apijson.AppendTimestamp(b, p.T)
				b = append(b, ',')
				b = apijson.AppendFloat(b, p.F)
				b = append(b, ']')
			}
			b = append(b, ']')
		}
		if len(s.Histograms) > 0 {
			b = append(b, `,"histograms":[`...)
			for j, p := range s.Histograms {
				if j > 0 {
					b = append(b, ',')
				}
				b = append(b, '[')
				b = apijson.AppendTimestamp(b, p.T)
				b = append(b, ',')
				b = apiAppendHistogram(b, p.H)
				b = append(b, ']')
			}
			b = append(b, ']')
		}
		b = append(b, '}')
	}
	return append(b, ']')
}

// apiAppendHistogram writes a native histogram as {"count","sum","buckets"}. Each bucket is
// [boundary_rule, "lower", "upper", "count"], where the rule is 0 for (lower, upper], 1 for
// [lower, upper), 2 for (lower, upper) and 3 for [lower, upper]. Empty buckets are left out and
// "buckets" is absent when all are empty.
func apiAppendHistogram(b []byte, h *histogram.FloatHistogram) []byte {
	b = append(b, `{"count":`...)
	b = apijson.AppendFloat(b, h.Count)
	b = append(b, `,"sum":`...)
	b = apijson.AppendFloat(b, h.Sum)
	found := false
	it := h.AllBucketIterator()
	for it.Next() {
		bucket := it.At()
		if bucket.Count == 0 {
			continue
		}
		if found {
			b = append(b, ',')
		} else {
			b = append(b, `,"buckets":[`...)
			found = true
		}
		rule := 2
		switch {
		case bucket.LowerInclusive && bucket.UpperInclusive:
			rule = 3
		case bucket.LowerInclusive:
			rule = 1
		case bucket.UpperInclusive:
			rule = 0
		}
		b = append(b, '[')
		b = strconv.AppendInt(b, int64(rule), 10)
		b = append(b, ',')
		b = apijson.AppendFloat(b, bucket.Lower)
		b = append(b, ',')
		b = apijson.AppendFloat(b, bucket.Upper)
		b = append(b, ',')
		b = apijson.AppendFloat(b, bucket.Count)
		b = append(b, ']')
	}
	if found {
		b = append(b, ']')
	}
	return append(b, '}')
}
