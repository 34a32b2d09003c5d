package querier

import (
	"encoding/json"
	"math"
	"strconv"
	"unicode/utf8"

	"github.com/prometheus/prometheus/model/exemplar"
	"github.com/prometheus/prometheus/model/histogram"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql"
	"github.com/prometheus/prometheus/promql/parser"
	"github.com/prometheus/prometheus/util/stats"
)

// The encoders in this file produce the same bytes as Prometheus' web/api/v1 JSON codec, which is
// built on jsoniter. Two details of that codec are easy to get wrong and are matched on purpose:
//   - Label names and values are written without HTML escaping ("<" stays "<"), while every other
//     string of the envelope (errors, warnings, label name and value lists) is HTML-escaped as
//     encoding/json does.
//   - Sample values are quoted strings formatted with 'f' and the shortest precision, except that
//     magnitudes below 1e-6 or at or above 1e21 use 'e', like encoding/json does for numbers.
//     Scalars and strings keep promql's own MarshalJSON, which always uses 'f'.
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
	b = apiAppendString(b, string(d.resultType))
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
		b = apiAppendLabels(b, ls)
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
		b = apiAppendLabels(b, r.SeriesLabels)
		b = append(b, `,"exemplars":[`...)
		for j, e := range r.Exemplars {
			if j > 0 {
				b = append(b, ',')
			}
			b = append(b, `{"labels":`...)
			b = apiAppendLabels(b, e.Labels)
			b = append(b, `,"value":`...)
			b = apiAppendFloat(b, e.Value)
			b = append(b, `,"timestamp":`...)
			b = apiAppendTimestamp(b, e.Ts)
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
		b = apiAppendLabels(b, s.Metric)
		if s.H == nil {
			b = append(b, `,"value":[`...)
			b = apiAppendTimestamp(b, s.T)
			b = append(b, ',')
			b = apiAppendFloat(b, s.F)
		} else {
			b = append(b, `,"histogram":[`...)
			b = apiAppendTimestamp(b, s.T)
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
		b = apiAppendLabels(b, s.Metric)
		if len(s.Floats) > 0 {
			b = append(b, `,"values":[`...)
			for j, p := range s.Floats {
				if j > 0 {
					b = append(b, ',')
				}
				b = append(b, '[')
				b = apiAppendTimestamp(b, p.T)
				b = append(b, ',')
				b = apiAppendFloat(b, p.F)
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
				b = apiAppendTimestamp(b, p.T)
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

// apiAppendTimestamp writes a millisecond timestamp as a JSON number of seconds. A whole second
// has no fraction ("1435781451"); otherwise the fraction always has three digits ("1.100",
// "-0.001"), exactly as Prometheus writes it.
func apiAppendTimestamp(b []byte, t int64) []byte {
	if t < 0 {
		b = append(b, '-')
		t = -t
	}
	b = strconv.AppendInt(b, t/1000, 10)
	if frac := t % 1000; frac != 0 {
		b = append(b, '.')
		if frac < 100 {
			b = append(b, '0')
		}
		if frac < 10 {
			b = append(b, '0')
		}
		b = strconv.AppendInt(b, frac, 10)
	}
	return b
}

// apiAppendFloat writes a sample value as a quoted string: "1.5", "+Inf", "-Inf", "NaN".
func apiAppendFloat(b []byte, f float64) []byte {
	format := byte('f')
	if abs := math.Abs(f); abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		format = 'e'
	}
	b = append(b, '"')
	b = strconv.AppendFloat(b, f, format, -1, 64)
	return append(b, '"')
}

// apiAppendHistogram writes a native histogram as {"count","sum","buckets"}. Each bucket is
// [boundary_rule, "lower", "upper", "count"], where the rule is 0 for (lower, upper], 1 for
// [lower, upper), 2 for (lower, upper) and 3 for [lower, upper]. Empty buckets are left out and
// "buckets" is absent when all are empty.
func apiAppendHistogram(b []byte, h *histogram.FloatHistogram) []byte {
	b = append(b, `{"count":`...)
	b = apiAppendFloat(b, h.Count)
	b = append(b, `,"sum":`...)
	b = apiAppendFloat(b, h.Sum)
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
		b = apiAppendFloat(b, bucket.Lower)
		b = append(b, ',')
		b = apiAppendFloat(b, bucket.Upper)
		b = append(b, ',')
		b = apiAppendFloat(b, bucket.Count)
		b = append(b, ']')
	}
	if found {
		b = append(b, ']')
	}
	return append(b, '}')
}

// apiAppendLabels writes a label set as a JSON object in label order.
func apiAppendLabels(b []byte, ls labels.Labels) []byte {
	b = append(b, '{')
	first := true
	ls.Range(func(l labels.Label) {
		if !first {
			b = append(b, ',')
		}
		first = false
		b = apiAppendLabelString(b, l.Name)
		b = append(b, ':')
		b = apiAppendLabelString(b, l.Value)
	})
	return append(b, '}')
}

const apiHex = "0123456789abcdef"

// apiAppendLabelString quotes a label name or value the way Prometheus does: control characters,
// quotes and backslashes are escaped, HTML characters are not. Invalid UTF-8 becomes U+FFFD so
// that the output stays valid JSON.
func apiAppendLabelString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c >= utf8.RuneSelf {
			r, size := utf8.DecodeRuneInString(s[i:])
			if r == utf8.RuneError && size == 1 {
				b = append(b, s[start:i]...)
				b = append(b, `\ufffd`...)
				i++
				start = i
				continue
			}
			i += size
			continue
		}
		if c >= 0x20 && c != '"' && c != '\\' {
			i++
			continue
		}
		b = append(b, s[start:i]...)
		switch c {
		case '"', '\\':
			b = append(b, '\\', c)
		case '\n':
			b = append(b, '\\', 'n')
		case '\r':
			b = append(b, '\\', 'r')
		case '\t':
			b = append(b, '\\', 't')
		default:
			b = append(b, '\\', 'u', '0', '0', apiHex[c>>4], apiHex[c&0xF])
		}
		i++
		start = i
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

// apiAppendString quotes s like encoding/json does, HTML escaping included.
func apiAppendString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x20 || c >= utf8.RuneSelf || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			enc, _ := json.Marshal(s) // Marshalling a string cannot fail.
			return append(b, enc...)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}
