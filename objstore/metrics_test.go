package objstore_test

import (
	"context"
	"io"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"

	"github.com/stratametrics/strata/objstore"
)

// counterValue returns the value of a counter series, or the sample count of
// a histogram series; 0 when the series does not exist.
func counterValue(t *testing.T, g prometheus.Gatherer, metric, bucket, op string) float64 {
	t.Helper()
	families, err := g.Gather()
	require.NoError(t, err)
	for _, mf := range families {
		if mf.GetName() != metric {
			continue
		}
		for _, m := range mf.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			if labels["bucket"] != bucket || labels["operation"] != op {
				continue
			}
			if h := m.GetHistogram(); h != nil {
				return float64(h.GetSampleCount())
			}
			return m.GetCounter().GetValue()
		}
	}
	return 0
}

func TestInstrumentedBucket(t *testing.T) {
	fs, err := objstore.NewFilesystem(t.TempDir())
	require.NoError(t, err)
	reg := prometheus.NewRegistry()
	bkt := objstore.NewInstrumentedBucket(fs, reg)
	ctx := t.Context()
	name := fs.Name()

	const (
		ops       = "strata_objstore_bucket_operations_total"
		failures  = "strata_objstore_bucket_operation_failures_total"
		durations = "strata_objstore_bucket_operation_duration_seconds"
	)
	type want struct{ ops, failures, durations float64 }
	check := func(t *testing.T, op string, w want) {
		t.Helper()
		require.Equal(t, w.ops, counterValue(t, reg, ops, name, op), "%s %s", ops, op)
		require.Equal(t, w.failures, counterValue(t, reg, failures, name, op), "%s %s", failures, op)
		require.Equal(t, w.durations, counterValue(t, reg, durations, name, op), "%s %s", durations, op)
	}

	// Every operation has its series from the start, so rates work at once.
	for _, metric := range []string{ops, failures, durations} {
		require.Equal(t, 7, testutil.CollectAndCount(reg, metric), metric)
	}
	require.NoError(t, testutil.GatherAndCompare(reg, strings.NewReader(`
# HELP strata_objstore_bucket_operations_total Bucket operations started, by operation.
# TYPE strata_objstore_bucket_operations_total counter
strata_objstore_bucket_operations_total{bucket="`+name+`",operation="attributes"} 0
strata_objstore_bucket_operations_total{bucket="`+name+`",operation="delete"} 0
strata_objstore_bucket_operations_total{bucket="`+name+`",operation="exists"} 0
strata_objstore_bucket_operations_total{bucket="`+name+`",operation="get"} 0
strata_objstore_bucket_operations_total{bucket="`+name+`",operation="get_range"} 0
strata_objstore_bucket_operations_total{bucket="`+name+`",operation="iter"} 0
strata_objstore_bucket_operations_total{bucket="`+name+`",operation="upload"} 0
`), ops))

	t.Run("upload", func(t *testing.T) {
		require.NoError(t, bkt.Upload(ctx, "dir/object", strings.NewReader("content")))
		check(t, "upload", want{ops: 1, durations: 1})
		require.ErrorIs(t, bkt.Upload(ctx, "../escape", strings.NewReader("x")), objstore.ErrInvalidName)
		check(t, "upload", want{ops: 2, failures: 1, durations: 2})
	})

	t.Run("get is timed until the reader is closed", func(t *testing.T) {
		rc, err := bkt.Get(ctx, "dir/object")
		require.NoError(t, err)
		check(t, "get", want{ops: 1, durations: 0})
		_, err = io.ReadAll(rc)
		require.NoError(t, err)
		check(t, "get", want{ops: 1, durations: 0})
		require.NoError(t, rc.Close())
		check(t, "get", want{ops: 1, durations: 1})
		_ = rc.Close() // The second close is the file's business, not a second observation.
		check(t, "get", want{ops: 1, durations: 1})

		rc, err = bkt.GetRange(ctx, "dir/object", 1, 2)
		require.NoError(t, err)
		check(t, "get_range", want{ops: 1, durations: 0})
		b, err := io.ReadAll(rc)
		require.NoError(t, err)
		require.Equal(t, "on", string(b))
		require.NoError(t, rc.Close())
		check(t, "get_range", want{ops: 1, durations: 1})

		// Bytes read are counted by operation: "content" whole, then "on".
		const readBytes = "strata_objstore_bucket_read_bytes_total"
		require.Equal(t, float64(len("content")), counterValue(t, reg, readBytes, name, "get"))
		require.Equal(t, 2.0, counterValue(t, reg, readBytes, name, "get_range"))
	})

	t.Run("not found is not a failure of reads", func(t *testing.T) {
		_, err := bkt.Get(ctx, "missing")
		require.ErrorIs(t, err, objstore.ErrNotFound)
		check(t, "get", want{ops: 2, durations: 2})
		_, err = bkt.GetRange(ctx, "missing", 0, 1)
		require.ErrorIs(t, err, objstore.ErrNotFound)
		check(t, "get_range", want{ops: 2, durations: 2})
		_, err = bkt.Attributes(ctx, "missing")
		require.ErrorIs(t, err, objstore.ErrNotFound)
		check(t, "attributes", want{ops: 1, durations: 1})
		ok, err := bkt.Exists(ctx, "missing")
		require.NoError(t, err)
		require.False(t, ok)
		check(t, "exists", want{ops: 1, durations: 1})
	})

	t.Run("not found is a failure of delete", func(t *testing.T) {
		require.ErrorIs(t, bkt.Delete(ctx, "missing"), objstore.ErrNotFound)
		check(t, "delete", want{ops: 1, failures: 1, durations: 1})
		require.NoError(t, bkt.Delete(ctx, "dir/object"))
		check(t, "delete", want{ops: 2, failures: 1, durations: 2})
	})

	t.Run("iter", func(t *testing.T) {
		require.NoError(t, bkt.Iter(ctx, "", func(string) error { return nil }))
		check(t, "iter", want{ops: 1, durations: 1})
		_, err := bkt.Attributes(ctx, "")
		require.ErrorIs(t, err, objstore.ErrInvalidName)
		check(t, "attributes", want{ops: 2, failures: 1, durations: 2})
	})

	t.Run("cancellation is not a failure", func(t *testing.T) {
		cancelled, cancel := context.WithCancel(ctx)
		cancel()
		require.ErrorIs(t, bkt.Iter(cancelled, "", func(string) error { return nil }), context.Canceled)
		check(t, "iter", want{ops: 2, durations: 2})
	})
}
