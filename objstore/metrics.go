package objstore

import (
	"context"
	"errors"
	"io"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Operation names, the values of the "operation" label of bucket metrics.
const (
	opUpload     = "upload"
	opGet        = "get"
	opGetRange   = "get_range"
	opExists     = "exists"
	opDelete     = "delete"
	opIter       = "iter"
	opAttributes = "attributes"
)

// operations lists every operation, to create the series of each up front.
func operations() []string {
	return []string{opUpload, opGet, opGetRange, opExists, opDelete, opIter, opAttributes}
}

type bucketMetrics struct {
	ops       *prometheus.CounterVec
	failures  *prometheus.CounterVec
	duration  *prometheus.HistogramVec
	readBytes *prometheus.CounterVec
}

func newBucketMetrics(reg prometheus.Registerer) *bucketMetrics {
	return &bucketMetrics{
		ops: registerOrExisting(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "strata_objstore_bucket_operations_total",
			Help: "Bucket operations started, by operation.",
		}, []string{"bucket", "operation"})),
		failures: registerOrExisting(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "strata_objstore_bucket_operation_failures_total",
			Help: "Bucket operations that failed. A missing object is not a failure of get, get_range, exists or attributes, and a cancelled context is no failure at all.",
		}, []string{"bucket", "operation"})),
		duration: registerOrExisting(reg, prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:                            "strata_objstore_bucket_operation_duration_seconds",
			Help:                            "Duration of bucket operations, retries included. For get and get_range it lasts until the reader is closed.",
			Buckets:                         []float64{0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120},
			NativeHistogramBucketFactor:     1.1,
			NativeHistogramMaxBucketNumber:  100,
			NativeHistogramMinResetDuration: time.Hour,
		}, []string{"bucket", "operation"})),
		readBytes: registerOrExisting(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "strata_objstore_bucket_read_bytes_total",
			Help: "Bytes read from the readers of get and get_range operations.",
		}, []string{"bucket", "operation"})),
	}
}

// registerOrExisting registers c with reg, or returns the collector registered
// before it under the same name. Several buckets, or several components of
// `strata up` that each open the same bucket, share one registry and so one
// set of series told apart by the bucket label; promauto would panic on the
// second registration. A nil reg registers nothing.
func registerOrExisting[C prometheus.Collector](reg prometheus.Registerer, c C) C {
	if reg == nil {
		return c
	}
	if err := reg.Register(c); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			if existing, ok := are.ExistingCollector.(C); ok {
				return existing
			}
		}
		// Same name, different help or labels: a programming error, reported
		// the way promauto does.
		panic(err)
	}
	return c
}

// instrumentedBucket counts and times the operations of the bucket it wraps.
type instrumentedBucket struct {
	bkt     Bucket
	metrics map[string]opMetrics
}

// opMetrics are the series of one operation on one bucket.
type opMetrics struct {
	ops       prometheus.Counter
	failures  prometheus.Counter
	duration  prometheus.Observer
	readBytes prometheus.Counter
}

// NewInstrumentedBucket wraps bkt so that each operation is counted in
// strata_objstore_bucket_operations_total, failures in
// strata_objstore_bucket_operation_failures_total and durations in
// strata_objstore_bucket_operation_duration_seconds and the bytes read by get and
// get_range in strata_objstore_bucket_read_bytes_total, labelled with bkt.Name()
// and the operation. ErrNotFound is not a failure of get, get_range, exists or
// attributes: asking is how callers find out. context.Canceled is never a
// failure: the caller gave up. Get and GetRange are timed until the returned
// reader is closed, and a read error counts as a failure then.
//
// Registering with a registry that already holds these metrics, from another
// bucket, adds series to them instead of failing.
func NewInstrumentedBucket(bkt Bucket, reg prometheus.Registerer) Bucket {
	m := newBucketMetrics(reg)
	ib := &instrumentedBucket{bkt: bkt, metrics: make(map[string]opMetrics, len(operations()))}
	for _, op := range operations() {
		ib.metrics[op] = opMetrics{
			ops:       m.ops.WithLabelValues(bkt.Name(), op),
			failures:  m.failures.WithLabelValues(bkt.Name(), op),
			duration:  m.duration.WithLabelValues(bkt.Name(), op),
			readBytes: m.readBytes.WithLabelValues(bkt.Name(), op),
		}
	}
	return ib
}

// start counts the start of op and returns the function that records its end.
func (b *instrumentedBucket) start(op string) func(err error) {
	m := b.metrics[op]
	m.ops.Inc()
	begin := time.Now()
	return func(err error) {
		if isFailure(op, err) {
			m.failures.Inc()
		}
		m.duration.Observe(time.Since(begin).Seconds())
	}
}

func isFailure(op string, err error) bool {
	switch {
	case err == nil, errors.Is(err, context.Canceled):
		return false
	case errors.Is(err, ErrNotFound):
		return op != opGet && op != opGetRange && op != opExists && op != opAttributes
	}
	return true
}

// Name implements Bucket.
func (b *instrumentedBucket) Name() string { return b.bkt.Name() }

// Close implements Bucket.
func (b *instrumentedBucket) Close() error { return b.bkt.Close() }

// Iter implements BucketReader. The time f takes is part of the duration.
func (b *instrumentedBucket) Iter(ctx context.Context, dir string, f func(string) error, opts ...IterOption) error {
	done := b.start(opIter)
	err := b.bkt.Iter(ctx, dir, f, opts...)
	done(err)
	return err
}

// Get implements BucketReader.
func (b *instrumentedBucket) Get(ctx context.Context, name string) (io.ReadCloser, error) {
	done := b.start(opGet)
	rc, err := b.bkt.Get(ctx, name)
	if err != nil {
		done(err)
		return nil, err
	}
	return &timedReader{rc: rc, done: done, bytes: b.metrics[opGet].readBytes}, nil
}

// GetRange implements BucketReader.
func (b *instrumentedBucket) GetRange(ctx context.Context, name string, off, length int64) (io.ReadCloser, error) {
	done := b.start(opGetRange)
	rc, err := b.bkt.GetRange(ctx, name, off, length)
	if err != nil {
		done(err)
		return nil, err
	}
	return &timedReader{rc: rc, done: done, bytes: b.metrics[opGetRange].readBytes}, nil
}

// Exists implements BucketReader.
func (b *instrumentedBucket) Exists(ctx context.Context, name string) (bool, error) {
	done := b.start(opExists)
	ok, err := b.bkt.Exists(ctx, name)
	done(err)
	return ok, err
}

// Attributes implements BucketReader.
func (b *instrumentedBucket) Attributes(ctx context.Context, name string) (ObjectAttributes, error) {
	done := b.start(opAttributes)
	attrs, err := b.bkt.Attributes(ctx, name)
	done(err)
	return attrs, err
}

// Upload implements Bucket.
func (b *instrumentedBucket) Upload(ctx context.Context, name string, r io.Reader) error {
	done := b.start(opUpload)
	err := b.bkt.Upload(ctx, name, r)
	done(err)
	return err
}

// Delete implements Bucket.
func (b *instrumentedBucket) Delete(ctx context.Context, name string) error {
	done := b.start(opDelete)
	err := b.bkt.Delete(ctx, name)
	done(err)
	return err
}

// timedReader counts the bytes read through it and ends the measurement of a
// get when it is closed, reporting the first read error, if any, as the
// operation's outcome.
type timedReader struct {
	rc      io.ReadCloser
	done    func(error)
	bytes   prometheus.Counter
	readErr error
	once    sync.Once
}

func (t *timedReader) Read(p []byte) (int, error) {
	n, err := t.rc.Read(p)
	t.bytes.Add(float64(n))
	if err != nil && !errors.Is(err, io.EOF) && t.readErr == nil {
		t.readErr = err
	}
	return n, err
}

func (t *timedReader) Close() error {
	err := t.rc.Close()
	t.once.Do(func() { t.done(t.readErr) })
	return err
}
