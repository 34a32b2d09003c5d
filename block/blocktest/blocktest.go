// Package blocktest helps tests of components that handle blocks: it writes real
// Prometheus TSDB blocks, reads their samples back, and wraps a bucket to record and
// fail uploads. It is imported only by tests.
package blocktest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"slices"
	"sync"
	"testing"

	"github.com/prometheus/common/model"

	"github.com/oklog/ulid/v2"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/tsdb"
	"github.com/prometheus/prometheus/tsdb/chunkenc"
	"github.com/stretchr/testify/require"

	"github.com/stratametrics/strata/objstore"
)

// Step is the distance in milliseconds between the samples Create writes.
const Step = 15_000

// Create writes a real Prometheus block into dir and returns its ULID; the block's
// directory is dir/<ULID>. The block holds numSeries series named test_metric, told
// apart by the label "series", each with one sample every Step milliseconds from
// mint up to but excluding maxt. numSeries must be positive and maxt > mint, since
// Prometheus does not write empty blocks.
func Create(t testing.TB, dir string, mint, maxt int64, numSeries int) ulid.ULID {
	t.Helper()
	require.Positive(t, numSeries, "a block needs at least one series")
	require.Greater(t, maxt, mint, "a block needs a time range")

	logger := slog.New(slog.DiscardHandler)
	w, err := tsdb.NewBlockWriter(logger, dir, tsdb.DefaultBlockDuration)
	require.NoError(t, err)
	defer func() { require.NoError(t, w.Close()) }()

	app := w.Appender(context.Background())
	for i := range numSeries {
		lset := labels.FromStrings(model.MetricNameLabel, "test_metric", "series", fmt.Sprint(i))
		for ts := mint; ts < maxt; ts += Step {
			_, err := app.Append(0, lset, ts, float64(ts)+float64(i))
			require.NoError(t, err)
		}
	}
	require.NoError(t, app.Commit())
	id, err := w.Flush(context.Background())
	require.NoError(t, err)
	require.NotEqual(t, ulid.ULID{}, id, "no block was written")
	return id
}

// Sample is one float sample of a series.
type Sample struct {
	// T is the sample's timestamp in milliseconds.
	T int64
	// V is the sample's value.
	V float64
}

// Samples opens the block in blockDir with Prometheus' own reader and returns every
// float sample in it, keyed by the series' labels in their string form.
func Samples(t testing.TB, blockDir string) map[string][]Sample {
	t.Helper()
	b, err := tsdb.OpenBlock(slog.New(slog.DiscardHandler), blockDir, nil, nil)
	require.NoError(t, err)
	defer func() { require.NoError(t, b.Close()) }()

	q, err := tsdb.NewBlockQuerier(b, math.MinInt64, math.MaxInt64)
	require.NoError(t, err)
	defer func() { require.NoError(t, q.Close()) }()

	out := map[string][]Sample{}
	ss := q.Select(context.Background(), true, nil, labels.MustNewMatcher(labels.MatchRegexp, model.MetricNameLabel, ".+"))
	var it chunkenc.Iterator
	for ss.Next() {
		s := ss.At()
		it = s.Iterator(it)
		var samples []Sample
		for typ := it.Next(); typ != chunkenc.ValNone; typ = it.Next() {
			require.Equal(t, chunkenc.ValFloat, typ, "only float samples are supported")
			ts, v := it.At()
			samples = append(samples, Sample{T: ts, V: v})
		}
		require.NoError(t, it.Err())
		out[s.Labels().String()] = samples
	}
	require.NoError(t, ss.Err())
	return out
}

// ErrInjected is the error FailUploadsOf makes a RecordingBucket return.
var ErrInjected = errors.New("injected upload failure")

// RecordingBucket wraps a bucket and records, in order, the name of every object
// whose upload was attempted through it. It can also fail chosen uploads, which then
// never reach the wrapped bucket. It is safe for concurrent use.
type RecordingBucket struct {
	objstore.Bucket

	mu      sync.Mutex
	uploads []string
	fail    func(name string) error
}

// NewRecordingBucket returns a RecordingBucket around bkt that fails nothing.
func NewRecordingBucket(bkt objstore.Bucket) *RecordingBucket {
	return &RecordingBucket{Bucket: bkt}
}

// Upload records name, then fails if the injected function says so, or uploads to
// the wrapped bucket.
func (b *RecordingBucket) Upload(ctx context.Context, name string, r io.Reader) error {
	b.mu.Lock()
	b.uploads = append(b.uploads, name)
	fail := b.fail
	b.mu.Unlock()
	if fail != nil {
		if err := fail(name); err != nil {
			return err
		}
	}
	return b.Bucket.Upload(ctx, name, r)
}

// Uploads returns the names of all uploads attempted so far, in order.
func (b *RecordingBucket) Uploads() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return slices.Clone(b.uploads)
}

// Reset forgets the uploads recorded so far.
func (b *RecordingBucket) Reset() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.uploads = nil
}

// FailUploads installs fail, which every later Upload calls with the object's name;
// when it returns an error, Upload returns that error without uploading. A nil fail
// stops injecting failures.
func (b *RecordingBucket) FailUploads(fail func(name string) error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.fail = fail
}

// FailUploadsOf makes every later upload of an object whose name satisfies match
// fail with ErrInjected.
func (b *RecordingBucket) FailUploadsOf(match func(name string) bool) {
	b.FailUploads(func(name string) error {
		if match(name) {
			return fmt.Errorf("upload %s: %w", name, ErrInjected)
		}
		return nil
	})
}
