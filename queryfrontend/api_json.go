package queryfrontend

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"sort"
	"strconv"

	"github.com/prometheus/prometheus/model/labels"

	"github.com/stratametrics/strata/internal/apijson"
)

// apiEnvelope is a Prometheus HTTP API answer to a range query.
type apiEnvelope struct {
	Status    string          `json:"status"`
	Data      json.RawMessage `json:"data"`
	ErrorType string          `json:"errorType"`
	Error     string          `json:"error"`
	Warnings  []string        `json:"warnings"`
	Infos     []string        `json:"infos"`
}

type apiMatrixData struct {
	ResultType string            `json:"resultType"`
	Result     []apiMatrixSeries `json:"result"`
}

type apiMatrixSeries struct {
	Metric     map[string]string   `json:"metric"`
	Values     []apiFloatPoint     `json:"values"`
	Histograms []apiHistogramPoint `json:"histograms"`
}

// apiFloatPoint is [<unix seconds>, "<value>"].
type apiFloatPoint struct {
	T int64
	V float64
}

// apiHistogramPoint is [<unix seconds>, {<histogram>}].
type apiHistogramPoint struct {
	T int64
	H json.RawMessage
}

func (p *apiFloatPoint) UnmarshalJSON(b []byte) error {
	ts, rest, err := splitPair(b)
	if err != nil {
		return err
	}
	p.T = ts
	var s string
	if err := json.Unmarshal(rest, &s); err != nil {
		return fmt.Errorf("sample value: %w", err)
	}
	p.V, err = parseValue(s)
	return err
}

func (p *apiHistogramPoint) UnmarshalJSON(b []byte) error {
	ts, rest, err := splitPair(b)
	if err != nil {
		return err
	}
	if len(rest) == 0 || rest[0] != '{' || !json.Valid(rest) {
		return errors.New("histogram is not a JSON object")
	}
	p.T, p.H = ts, bytes.Clone(rest)
	return nil
}

// splitPair splits [<unix seconds>, <second>] into the time in milliseconds and
// the second element's bytes.
func splitPair(b []byte) (int64, []byte, error) {
	b = bytes.TrimSpace(b)
	if len(b) < 2 || b[0] != '[' || b[len(b)-1] != ']' {
		return 0, nil, errors.New("point is not a two-element array")
	}
	inner := b[1 : len(b)-1]
	comma := bytes.IndexByte(inner, ',')
	if comma < 0 {
		return 0, nil, errors.New("point is not a two-element array")
	}
	sec, err := strconv.ParseFloat(string(bytes.TrimSpace(inner[:comma])), 64)
	if err != nil || math.IsNaN(sec) || math.IsInf(sec, 0) || math.Abs(sec) > 1e15 {
		return 0, nil, fmt.Errorf("point time %q is not a Unix time", inner[:comma])
	}
	return int64(math.Round(sec * 1000)), bytes.TrimSpace(inner[comma+1:]), nil
}

// parseValue parses a sample value as the Prometheus API writes it.
func parseValue(s string) (float64, error) {
	switch s {
	case "NaN":
		return math.NaN(), nil
	case "+Inf", "Inf":
		return math.Inf(1), nil
	case "-Inf":
		return math.Inf(-1), nil
	}
	v, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return 0, fmt.Errorf("sample value %q: %w", s, err)
	}
	return v, nil
}

// decodeMatrix decodes the body of a successful range query answer.
func decodeMatrix(body []byte) (Response, error) {
	var env apiEnvelope
	if err := json.Unmarshal(body, &env); err != nil {
		return Response{}, fmt.Errorf("decode the querier's answer: %w", err)
	}
	if env.Status != "success" {
		return Response{}, fmt.Errorf("querier answered status %q: %s", env.Status, env.Error)
	}
	var data apiMatrixData
	if err := json.Unmarshal(env.Data, &data); err != nil {
		return Response{}, fmt.Errorf("decode the querier's result: %w", err)
	}
	if data.ResultType != "matrix" {
		return Response{}, fmt.Errorf("querier answered a %q, not a matrix", data.ResultType)
	}
	out := Response{Series: make([]Series, 0, len(data.Result)), Warnings: env.Warnings, Infos: env.Infos}
	for _, s := range data.Result {
		b := labels.NewScratchBuilder(len(s.Metric))
		for n, v := range s.Metric {
			b.Add(n, v)
		}
		b.Sort()
		pts := make([]Point, 0, len(s.Values)+len(s.Histograms))
		for _, p := range s.Values {
			pts = append(pts, Point{T: p.T, V: p.V})
		}
		for _, p := range s.Histograms {
			pts = append(pts, Point{T: p.T, H: p.H})
		}
		out.Series = append(out.Series, Series{Labels: b.Labels(), Points: pts})
	}
	return out, nil
}

// appendMatrix appends the API's JSON for a successful range query answer
// r, with its warnings and infos, in the bytes the querier writes.
func appendMatrix(b []byte, r Response) []byte {
	b = append(b, `{"status":"success","data":{"resultType":"matrix","result":[`...)
	for i, s := range r.Series {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"metric":`...)
		b = apijson.AppendLabels(b, s.Labels)
		var floats, hists int
		for _, p := range s.Points {
			if len(p.H) > 0 {
				hists++
			} else {
				floats++
			}
		}
		if floats > 0 {
			b = appendPoints(b, `,"values":[`, s.Points, false)
		}
		if hists > 0 {
			b = appendPoints(b, `,"histograms":[`, s.Points, true)
		}
		b = append(b, '}')
	}
	b = append(b, "]}"...)
	b = appendStrings(b, "warnings", r.Warnings)
	b = appendStrings(b, "infos", r.Infos)
	return append(b, '}')
}

// appendPoints appends the float points of pts, or the histogram points,
// as [time, value] pairs after prefix, and closes the array.
func appendPoints(b []byte, prefix string, pts []Point, hists bool) []byte {
	b = append(b, prefix...)
	n := 0
	for _, p := range pts {
		if (len(p.H) > 0) != hists {
			continue
		}
		if n > 0 {
			b = append(b, ',')
		}
		n++
		b = append(b, '[')
		b = apijson.AppendTimestamp(b, p.T)
		b = append(b, ',')
		if hists {
			b = append(b, p.H...)
		} else {
			b = apijson.AppendFloat(b, p.V)
		}
		b = append(b, ']')
	}
	return append(b, ']')
}

func appendStrings(b []byte, name string, ss []string) []byte {
	if len(ss) == 0 {
		return b
	}
	b = append(b, ',', '"')
	b = append(b, name...)
	b = append(b, '"', ':', '[')
	for i, s := range ss {
		if i > 0 {
			b = append(b, ',')
		}
		b = apijson.AppendString(b, s)
	}
	return append(b, ']')
}

// formatMillis formats Unix milliseconds as the API's Unix seconds.
func formatMillis(t int64) string {
	return string(apijson.AppendTimestamp(nil, t))
}

// formKey returns the canonical encoding of the form values not named in
// skip: names sorted, each name's values in order.
func formKey(form map[string][]string, skip ...string) string {
	names := make([]string, 0, len(form))
	for n := range form {
		skipped := false
		for _, s := range skip {
			if n == s {
				skipped = true
				break
			}
		}
		if !skipped {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	var b []byte
	for _, n := range names {
		b = appendString(b, n)
		b = appendString(b, strconv.Itoa(len(form[n])))
		for _, v := range form[n] {
			b = appendString(b, v)
		}
	}
	return string(b)
}
