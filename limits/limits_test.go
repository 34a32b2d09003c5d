package limits

import (
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql/parser"
	"github.com/stretchr/testify/require"
)

const overridesFile = `
defaults:
  ingestion_rate: 1000
  max_active_series: 500
  max_labels_per_series: 10
  retention: 30d
tenants:
  team-a:
    ingestion_rate: 5000
    ingestion_burst: 10000
  team-b:
    max_active_series: 0
    out_of_order_window: 1h
`

func TestParse(t *testing.T) {
	c, err := Parse([]byte(overridesFile))
	require.NoError(t, err)
	def := Limits{IngestionRate: 1000, MaxActiveSeries: 500, MaxLabelsPerSeries: 10, Retention: model.Duration(30 * 24 * time.Hour)}
	require.Equal(t, def, c.Defaults)
	require.Equal(t, def, c.For("unknown"))
	a := def
	a.IngestionRate, a.IngestionBurst = 5000, 10000
	require.Equal(t, a, c.For("team-a"))
	b := def
	b.MaxActiveSeries, b.OutOfOrderWindow = 0, model.Duration(time.Hour)
	require.Equal(t, b, c.For("team-b"), "a zero set by a tenant removes the default limit")
	require.Equal(t, 1000, def.Burst())
	require.Equal(t, 10000, a.Burst())

	empty, err := Parse(nil)
	require.NoError(t, err)
	require.Equal(t, Limits{}, empty.For("x"))

	for content, want := range map[string]string{
		"defaults:\n  ingestion_rte: 5\n":            "line 2: field ingestion_rte not found",
		"tenants:\n  a:\n    max_series: 5\n":        "line 3: field max_series not found",
		"defaults:\n  max_active_series: -1\n":       "max_active_series must be a finite number, not negative",
		"tenants:\n  a:\n    ingestion_rate: -5\n":   `tenant "a": ingestion_rate must be a finite number, not negative`,
		"tenants:\n  a:\n    retention: forever\n":   "forever",
		"defaults:\n  max_request_bytes: [1]\n":      "cannot unmarshal",
		"tenants:\n  \"\":\n    ingestion_rate: 5\n": "empty tenant name",
		"defaults: [\n": "yaml",
	} {
		_, err := Parse([]byte(content))
		require.ErrorContains(t, err, want, content)
	}
}

func TestOverridesReload(t *testing.T) {
	path := filepath.Join(t.TempDir(), "limits.yaml")
	require.NoError(t, os.WriteFile(path, []byte(overridesFile), 0o644))
	o, err := NewOverrides(path, Limits{}, prometheus.NewRegistry(), nil)
	require.NoError(t, err)
	require.Equal(t, 5000.0, o.For("team-a").IngestionRate)

	changed, err := o.Reload()
	require.NoError(t, err)
	require.False(t, changed)

	require.NoError(t, os.WriteFile(path, []byte(strings.Replace(overridesFile, "5000", "7000", 1)), 0o644))
	changed, err = o.Reload()
	require.NoError(t, err)
	require.True(t, changed)
	require.Equal(t, 7000.0, o.For("team-a").IngestionRate)

	// A broken file keeps the limits in force.
	require.NoError(t, os.WriteFile(path, []byte("defaults: {ingestion_rate: -1}\n"), 0o644))
	_, err = o.Reload()
	require.ErrorContains(t, err, path)
	require.Equal(t, 7000.0, o.For("team-a").IngestionRate)
	require.NoError(t, os.Remove(path))
	_, err = o.Reload()
	require.Error(t, err)
	require.Equal(t, 7000.0, o.For("team-a").IngestionRate)

	_, err = NewOverrides(path, Limits{}, nil, nil)
	require.Error(t, err, "a missing file at start is an error")
	noFile, err := NewOverrides("", Limits{MaxActiveSeries: 3}, nil, nil)
	require.NoError(t, err)
	require.Equal(t, 3, noFile.For("any").MaxActiveSeries)
}

func limitError(t *testing.T, err error) *Error {
	t.Helper()
	var le *Error
	require.True(t, errors.As(err, &le), "want a *limits.Error, got %v", err)
	return le
}

func TestCheckSeries(t *testing.T) {
	l := Limits{MaxLabelsPerSeries: 3, MaxLabelNameLength: 8, MaxLabelValueLength: 10}
	require.NoError(t, CheckSeries(labels.FromStrings("__name__", "up", "job", "api"), l))
	require.NoError(t, CheckSeries(labels.FromStrings("__name__", "up", "job", "api", "a", "b", "c", "d"), Limits{}))

	for lset, want := range map[string]struct{ limit, msg string }{
		`{__name__="up", a="1", b="2", c="3"}`:     {"max_labels_per_series", "has 4 labels, more than max_labels_per_series=3"},
		`{__name__="up", very_long_name="1"}`:      {"max_label_name_length", `label name "very_long_name"`},
		`{__name__="up", job="a-very-long-value"}`: {"max_label_value_length", `value of label "job"`},
	} {
		ls, err := parser.NewParser(parser.Options{}).ParseMetric(lset)
		require.NoError(t, err)
		le := limitError(t, CheckSeries(ls, l))
		require.Equal(t, want.limit, le.Limit)
		require.Equal(t, http.StatusBadRequest, le.Status)
		require.Contains(t, le.Error(), want.msg)
		require.Contains(t, le.Error(), "series {")
	}
}

func TestCheckActiveSeries(t *testing.T) {
	require.NoError(t, CheckActiveSeries(10, 0, Limits{MaxActiveSeries: 5}), "samples of existing series pass")
	require.NoError(t, CheckActiveSeries(3, 2, Limits{MaxActiveSeries: 5}))
	le := limitError(t, CheckActiveSeries(4, 2, Limits{MaxActiveSeries: 5}))
	require.Equal(t, http.StatusTooManyRequests, le.Status)
	require.Equal(t, "max_active_series", le.Limit)
	require.Positive(t, le.RetryAfterSeconds())
}

func TestRateLimiter(t *testing.T) {
	r := NewRateLimiter()
	now := time.Unix(1000, 0)
	r.now = func() time.Time { return now }
	l := Limits{IngestionRate: 100, IngestionBurst: 200}

	require.NoError(t, r.Allow("a", 150, l))
	le := limitError(t, r.Allow("a", 100, l))
	require.Equal(t, "ingestion_rate", le.Limit)
	require.Equal(t, http.StatusTooManyRequests, le.Status)
	require.Equal(t, 500*time.Millisecond, le.RetryAfter, "50 tokens left, 100 wanted at 100/s")
	require.Equal(t, 1, le.RetryAfterSeconds())
	require.NoError(t, r.Allow("b", 200, l), "tenants have their own buckets")

	// The refused request took nothing: after the wait it passes.
	now = now.Add(500 * time.Millisecond)
	require.NoError(t, r.Allow("a", 100, l))

	le = limitError(t, r.Allow("a", 201, l))
	require.Equal(t, "ingestion_burst", le.Limit)
	require.Contains(t, le.Error(), "larger than the tenant's burst of 200")

	// A reloaded, higher limit applies from the next request: the bucket
	// refills at the new rate up to the new burst.
	high := Limits{IngestionRate: 1000}
	now = now.Add(10 * time.Second)
	require.NoError(t, r.Allow("a", 100, high))
	require.Error(t, r.Allow("a", 1000, high), "the bucket held the old burst of 200")
	now = now.Add(time.Second)
	require.NoError(t, r.Allow("a", 1000, high))
	require.NoError(t, r.Allow("a", 1e9, Limits{}), "no rate limit")
}

func TestParseWithBase(t *testing.T) {
	base := Limits{MaxExemplars: 100, OutOfOrderWindow: model.Duration(time.Hour)}
	c, err := ParseWith([]byte("defaults: {max_exemplars: 5}\ntenants: {a: {ingestion_rate: 10}}\n"), base)
	require.NoError(t, err)
	require.Equal(t, Limits{MaxExemplars: 5, OutOfOrderWindow: model.Duration(time.Hour)}, c.Defaults, "fields the file leaves out keep the base")
	require.Equal(t, Limits{MaxExemplars: 5, OutOfOrderWindow: model.Duration(time.Hour), IngestionRate: 10}, c.For("a"))

	c, err = ParseWith(nil, base)
	require.NoError(t, err)
	require.Equal(t, base, c.For("anyone"))
}
