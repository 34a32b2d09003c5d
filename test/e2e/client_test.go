package e2e

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math"
	"net/http"
	"sort"
	"testing"

	"github.com/golang/snappy"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/value"
	"github.com/prometheus/prometheus/prompb"
	"github.com/prometheus/prometheus/tsdb"
	"github.com/stretchr/testify/require"
)

// pushRW1 sends one Remote Write 1.0 request and returns the status code and body.
func pushRW1(ctx context.Context, client *http.Client, url, tenant string, series []prompb.TimeSeries) (int, string, error) {
	raw, err := (&prompb.WriteRequest{Timeseries: series}).Marshal()
	if err != nil {
		return 0, "", err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(snappy.Encode(nil, raw)))
	if err != nil {
		return 0, "", err
	}
	req.Header.Set("Content-Type", "application/x-protobuf")
	req.Header.Set("Content-Encoding", "snappy")
	req.Header.Set("X-Prometheus-Remote-Write-Version", "0.1.0")
	if tenant != "" {
		req.Header.Set("THANOS-TENANT", tenant)
	}
	resp, err := client.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer func() { _ = resp.Body.Close() }()
	body, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body), err
}

// sample is one stored float sample.
type sample struct {
	t int64
	v float64
}

// readTSDB returns every float sample in the TSDB directory dir (blocks and WAL),
// keyed by series labels. Stale markers are included; check them with value.IsStaleNaN.
func readTSDB(t *testing.T, dir string) map[string][]sample {
	t.Helper()
	db, err := tsdb.OpenDBReadOnly(dir, t.TempDir(), nil)
	require.NoError(t, err)
	defer func() { require.NoError(t, db.Close()) }()
	q, err := db.Querier(math.MinInt64, math.MaxInt64)
	require.NoError(t, err)
	defer func() { require.NoError(t, q.Close()) }()

	out := map[string][]sample{}
	set := q.Select(context.Background(), false, nil, labels.MustNewMatcher(labels.MatchRegexp, "__name__", ".+"))
	for set.Next() {
		s := set.At()
		it := s.Iterator(nil)
		var ss []sample
		for it.Next() != 0 {
			ts, v := it.At()
			ss = append(ss, sample{ts, v})
		}
		require.NoError(t, it.Err())
		out[s.Labels().String()] = ss
	}
	require.NoError(t, set.Err())
	return out
}

// sameSamples reports the first difference between two sample lists, comparing
// NaNs by bit pattern class (stale or not).
func sameSamples(a, b []sample) error {
	if len(a) != len(b) {
		return fmt.Errorf("%d samples vs %d", len(a), len(b))
	}
	sort.Slice(a, func(i, j int) bool { return a[i].t < a[j].t })
	sort.Slice(b, func(i, j int) bool { return b[i].t < b[j].t })
	for i := range a {
		if a[i].t != b[i].t {
			return fmt.Errorf("sample %d: timestamp %d vs %d", i, a[i].t, b[i].t)
		}
		x, y := a[i].v, b[i].v
		if math.IsNaN(x) || math.IsNaN(y) {
			if value.IsStaleNaN(x) != value.IsStaleNaN(y) || math.IsNaN(x) != math.IsNaN(y) {
				return fmt.Errorf("sample %d at %d: %v vs %v", i, a[i].t, x, y)
			}
			continue
		}
		if x != y {
			return fmt.Errorf("sample %d at %d: %v vs %v", i, a[i].t, x, y)
		}
	}
	return nil
}
