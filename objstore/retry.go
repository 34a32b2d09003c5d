package objstore

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// TransientClassifier is implemented by backends that can tell a transient
// failure, one a later attempt may not see, from a permanent one.
// NewRetryingBucket uses it when RetryOptions.IsTransient is nil.
type TransientClassifier interface {
	// IsTransient reports whether an operation that returned err may succeed if
	// attempted again. It must be safe for concurrent use.
	IsTransient(err error) bool
}

// RetryOptions configures the retries of NewRetryingBucket.
type RetryOptions struct {
	// MaxAttempts bounds the attempts of one operation, the first included.
	// Values below 1 mean 1.
	MaxAttempts int
	// MinBackoff is the wait before the second attempt; it doubles before each
	// further attempt, up to MaxBackoff. Each wait is jittered down by up to half.
	MinBackoff time.Duration
	// MaxBackoff caps the wait between two attempts.
	MaxBackoff time.Duration
	// IsTransient classifies errors. When nil, the bucket's own classifier is
	// used if it implements TransientClassifier; otherwise nothing is retried.
	IsTransient func(error) bool
}

// DefaultRetryOptions returns the retry options NewBucket uses: six attempts
// with waits growing from 100ms to 5s, about six seconds in all before jitter.
func DefaultRetryOptions() RetryOptions {
	return RetryOptions{
		MaxAttempts: 6,
		MinBackoff:  100 * time.Millisecond,
		MaxBackoff:  5 * time.Second,
	}
}

type retryMetrics struct {
	retries *prometheus.CounterVec
}

func newRetryMetrics(reg prometheus.Registerer) *retryMetrics {
	return &retryMetrics{
		retries: registerOrExisting(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "strata_objstore_bucket_operation_retries_total",
			Help: "Attempts of bucket operations repeated after a transient failure.",
		}, []string{"bucket", "operation"})),
	}
}

// retryBucket retries the transient failures of the bucket it wraps.
type retryBucket struct {
	bkt         Bucket
	opts        RetryOptions
	isTransient func(error) bool
	logger      *slog.Logger
	retries     map[string]prometheus.Counter
}

// NewRetryingBucket wraps bkt so that operations failing with a transient error
// are attempted again, with exponential backoff and jitter, until they succeed,
// fail permanently, run out of attempts or their context is done.
//
// ErrNotFound, ErrInvalidName and context errors are never retried. Upload is
// retried only when its reader is an io.Seeker, rewound to its starting
// position before each attempt; any other reader is consumed by the first
// attempt, so it gets one. Get and GetRange retry opening the object, not
// reads from the returned reader. Iter is retried only while it has not called
// f yet, so that f never sees an entry twice. A Delete retried after a
// transient failure that then finds the object absent reports success: the
// failed attempt may have deleted it.
func NewRetryingBucket(bkt Bucket, opts RetryOptions, reg prometheus.Registerer, logger *slog.Logger) Bucket {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if opts.MaxAttempts < 1 {
		opts.MaxAttempts = 1
	}
	if opts.MinBackoff <= 0 {
		opts.MinBackoff = time.Millisecond
	}
	if opts.MaxBackoff < opts.MinBackoff {
		opts.MaxBackoff = opts.MinBackoff
	}
	isTransient := opts.IsTransient
	if isTransient == nil {
		if c, ok := bkt.(TransientClassifier); ok {
			isTransient = c.IsTransient
		} else {
			isTransient = func(error) bool { return false }
		}
	}
	m := newRetryMetrics(reg)
	retries := make(map[string]prometheus.Counter, len(operations()))
	for _, op := range operations() {
		retries[op] = m.retries.WithLabelValues(bkt.Name(), op)
	}
	return &retryBucket{
		bkt:         bkt,
		opts:        opts,
		isTransient: isTransient,
		logger:      logger.With("bucket", bkt.Name()),
		retries:     retries,
	}
}

// permanentError marks an error that must end the retries, whatever the classifier says.
type permanentError struct{ err error }

func (e permanentError) Error() string { return e.err.Error() }
func (e permanentError) Unwrap() error { return e.err }

func (r *retryBucket) retryable(ctx context.Context, err error) bool {
	switch {
	case ctx.Err() != nil,
		errors.Is(err, ErrNotFound),
		errors.Is(err, ErrInvalidName),
		errors.Is(err, context.Canceled),
		errors.Is(err, context.DeadlineExceeded):
		return false
	}
	return r.isTransient(err)
}

// do runs attempt until it succeeds or may not be retried. attempt receives
// the attempt number, starting at 1, and returns a permanentError to stop.
func (r *retryBucket) do(ctx context.Context, op, name string, attempt func(n int) error) error {
	backoff := r.opts.MinBackoff
	for n := 1; ; n++ {
		err := attempt(n)
		if err == nil {
			return nil
		}
		if perm, ok := err.(permanentError); ok { //nolint:errorlint // Only the outermost error is ours.
			return perm.err
		}
		if !r.retryable(ctx, err) {
			return err
		}
		if n >= r.opts.MaxAttempts {
			if n == 1 {
				return err
			}
			return fmt.Errorf("%s %q: giving up after %d attempts: %w", op, name, n, err)
		}

		// Equal jitter: wait between half and all of the backoff, so waits
		// still grow while clients that failed together spread out.
		wait := backoff/2 + rand.N(backoff/2+1)
		r.retries[op].Inc()
		r.logger.Debug("retrying bucket operation", "operation", op, "object", name, "attempt", n, "wait", wait, "err", err)
		timer := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			timer.Stop()
			return fmt.Errorf("%s %q: %w (after %d attempts, last error: %w)", op, name, ctx.Err(), n, err)
		case <-timer.C:
		}
		backoff = min(2*backoff, r.opts.MaxBackoff)
	}
}

// Name implements Bucket.
func (r *retryBucket) Name() string { return r.bkt.Name() }

// Close implements Bucket.
func (r *retryBucket) Close() error { return r.bkt.Close() }

// Iter implements BucketReader.
func (r *retryBucket) Iter(ctx context.Context, dir string, f func(string) error, opts ...IterOption) error {
	called := false
	return r.do(ctx, opIter, dir, func(int) error {
		err := r.bkt.Iter(ctx, dir, func(name string) error {
			called = true
			return f(name)
		}, opts...)
		if err != nil && called {
			// Once f has seen entries a retry would show them again, and f's
			// own errors belong to the caller.
			return permanentError{err}
		}
		return err
	})
}

// Get implements BucketReader.
func (r *retryBucket) Get(ctx context.Context, name string) (rc io.ReadCloser, err error) {
	err = r.do(ctx, opGet, name, func(int) error {
		rc, err = r.bkt.Get(ctx, name)
		return err
	})
	return rc, err
}

// GetRange implements BucketReader.
func (r *retryBucket) GetRange(ctx context.Context, name string, off, length int64) (rc io.ReadCloser, err error) {
	err = r.do(ctx, opGetRange, name, func(int) error {
		rc, err = r.bkt.GetRange(ctx, name, off, length)
		return err
	})
	return rc, err
}

// Exists implements BucketReader.
func (r *retryBucket) Exists(ctx context.Context, name string) (ok bool, err error) {
	err = r.do(ctx, opExists, name, func(int) error {
		ok, err = r.bkt.Exists(ctx, name)
		return err
	})
	return ok, err
}

// Attributes implements BucketReader.
func (r *retryBucket) Attributes(ctx context.Context, name string) (attrs ObjectAttributes, err error) {
	err = r.do(ctx, opAttributes, name, func(int) error {
		attrs, err = r.bkt.Attributes(ctx, name)
		return err
	})
	return attrs, err
}

// Upload implements Bucket.
func (r *retryBucket) Upload(ctx context.Context, name string, rd io.Reader) error {
	s, ok := rd.(io.Seeker)
	if !ok {
		return r.bkt.Upload(ctx, name, rd)
	}
	start, err := s.Seek(0, io.SeekCurrent)
	if err != nil {
		// A Seeker that cannot seek, such as an *os.File on a pipe.
		return r.bkt.Upload(ctx, name, rd)
	}
	return r.do(ctx, opUpload, name, func(n int) error {
		if n > 1 {
			if _, err := s.Seek(start, io.SeekStart); err != nil {
				return permanentError{fmt.Errorf("rewind upload of %q: %w", name, err)}
			}
		}
		return r.bkt.Upload(ctx, name, rd)
	})
}

// Delete implements Bucket.
func (r *retryBucket) Delete(ctx context.Context, name string) error {
	return r.do(ctx, opDelete, name, func(n int) error {
		err := r.bkt.Delete(ctx, name)
		if n > 1 && errors.Is(err, ErrNotFound) {
			return nil
		}
		return err
	})
}
