package loadgen

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/golang/snappy"
	"github.com/prometheus/prometheus/prompb"
	writev2 "github.com/prometheus/prometheus/prompb/io/prometheus/write/v2"
	"github.com/stretchr/testify/require"
)

// testStart is the start time of test workloads.
var testStart = time.UnixMilli(1_700_000_000_000)

func testWorkload(t testing.TB, cfg WorkloadConfig) *Workload {
	t.Helper()
	if cfg.Tenants == 0 {
		cfg.Tenants = 1
	}
	if cfg.Protocol == "" {
		cfg.Protocol = ProtocolRW1
	}
	if cfg.Start.IsZero() {
		cfg.Start = testStart
	}
	if cfg.ScrapeInterval == 0 {
		cfg.ScrapeInterval = 15 * time.Second
	}
	if cfg.Seed == 0 {
		cfg.Seed = 1
	}
	w, err := NewWorkload(cfg)
	require.NoError(t, err)
	return w
}

// decodedSeries is one series of a request as a receiver decodes it, labels in
// the order they were sent.
type decodedSeries struct {
	labels []label
	t      int64
	v      float64
	// Remote Write 2.0 only.
	metaType writev2.Metadata_MetricType
	help     string
}

func (s *decodedSeries) key() string { return labelsKey(s.labels) }

func labelsKey(ls []label) string {
	var b strings.Builder
	for _, l := range ls {
		b.WriteString(l.name + "=" + l.value + ",")
	}
	return b.String()
}

// decodeRequest decodes a snappy-compressed request body with golang/snappy
// and the Prometheus module's generated protobuf code. Every series must have
// exactly one float sample.
func decodeRequest(t testing.TB, proto Protocol, body []byte) []decodedSeries {
	t.Helper()
	out, err := decode(proto, body)
	require.NoError(t, err)
	return out
}

// decode is decodeRequest for a server, which must not stop the test from its
// own goroutine.
func decode(proto Protocol, body []byte) ([]decodedSeries, error) {
	raw, err := snappy.Decode(nil, body)
	if err != nil {
		return nil, err
	}
	var out []decodedSeries
	switch proto {
	case ProtocolRW1:
		var req prompb.WriteRequest
		if err := req.Unmarshal(raw); err != nil {
			return nil, err
		}
		for _, ts := range req.Timeseries {
			if len(ts.Samples) != 1 || len(ts.Histograms) != 0 {
				return nil, fmt.Errorf("%d samples and %d histograms, want one sample", len(ts.Samples), len(ts.Histograms))
			}
			s := decodedSeries{t: ts.Samples[0].Timestamp, v: ts.Samples[0].Value}
			for _, l := range ts.Labels {
				s.labels = append(s.labels, label{l.Name, l.Value})
			}
			out = append(out, s)
		}
	case ProtocolRW2:
		var req writev2.Request
		if err := req.Unmarshal(raw); err != nil {
			return nil, err
		}
		if len(req.Symbols) == 0 || req.Symbols[0] != "" {
			return nil, errors.New(`symbols do not start with ""`)
		}
		var bad error
		sym := func(ref uint32) string {
			if int(ref) >= len(req.Symbols) {
				bad = fmt.Errorf("symbol %d of %d", ref, len(req.Symbols))
				return ""
			}
			return req.Symbols[ref]
		}
		for _, ts := range req.Timeseries {
			if len(ts.Samples) != 1 || len(ts.Histograms) != 0 {
				return nil, fmt.Errorf("%d samples and %d histograms, want one sample", len(ts.Samples), len(ts.Histograms))
			}
			if len(ts.LabelsRefs)%2 != 0 {
				return nil, errors.New("odd number of label references")
			}
			s := decodedSeries{t: ts.Samples[0].Timestamp, v: ts.Samples[0].Value, metaType: ts.Metadata.Type, help: sym(ts.Metadata.HelpRef)}
			for i := 0; i < len(ts.LabelsRefs); i += 2 {
				s.labels = append(s.labels, label{sym(ts.LabelsRefs[i]), sym(ts.LabelsRefs[i+1])})
			}
			out = append(out, s)
		}
		if bad != nil {
			return nil, bad
		}
	default:
		return nil, fmt.Errorf("protocol %q", proto)
	}
	return out, nil
}

// requireValidLabels checks what a receiver checks: names sorted and unique,
// a metric name, no empty values.
func requireValidLabels(t testing.TB, ls []label) {
	t.Helper()
	require.True(t, slices.IsSortedFunc(ls, func(a, b label) int { return strings.Compare(a.name, b.name) }), "labels sorted: %v", ls)
	for i, l := range ls {
		require.NotEmpty(t, l.name)
		require.NotEmpty(t, l.value, "label %s", l.name)
		if i > 0 {
			require.NotEqual(t, ls[i-1].name, l.name, "duplicate label name")
		}
	}
	require.Equal(t, "__name__", ls[0].name)
}
