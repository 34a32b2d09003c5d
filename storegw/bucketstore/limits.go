package bucketstore

import (
	"errors"
	"fmt"
	"sync/atomic"
)

// ErrLimitExceeded means a request would have gone past a per-request limit set
// with WithLimits. Errors wrapping it are *LimitError.
var ErrLimitExceeded = errors.New("request limit exceeded")

// LimitError is the error of a request that hit a per-request limit. Its message
// names the limit, its value and the flag that usually sets it, and is what the
// client sees.
type LimitError struct {
	// What is "series" or "samples".
	What string
	// Limit is the configured limit that was hit.
	Limit int64
}

// Error implements error. The flag is the one that sets the limit in
// `strata store`.
func (e *LimitError) Error() string {
	return fmt.Sprintf("the query hit the %s limit of %d (--store.limits.request-%s)", e.What, e.Limit, e.What)
}

// Is makes a LimitError match ErrLimitExceeded.
func (e *LimitError) Is(target error) bool { return target == ErrLimitExceeded }

// limiter counts the series and samples of one Series request across the blocks
// it reads concurrently; it is safe for concurrent use. A nil limiter limits
// nothing. Counts only grow, so once a limit is hit every later check fails too.
type limiter struct {
	maxSeries, maxSamples int64
	series, samples       atomic.Int64
	hit                   atomic.Bool
	onHit                 func(what string)
}

// newLimiter returns a limiter for the limits of o, or nil if there are none.
// onHit, which may be nil, is called for the first limit the request hits.
func newLimiter(o options, onHit func(what string)) *limiter {
	if o.maxSeries <= 0 && o.maxSamples <= 0 {
		return nil
	}
	return &limiter{maxSeries: o.maxSeries, maxSamples: o.maxSamples, onHit: onHit}
}

// addSeries counts n more series and fails if that passes the series limit.
func (l *limiter) addSeries(n int) error {
	if l == nil || l.maxSeries <= 0 {
		return nil
	}
	return l.check("series", l.series.Add(int64(n)), l.maxSeries)
}

// addSamples counts n more samples and fails if that passes the samples limit.
func (l *limiter) addSamples(n int) error {
	if l == nil || l.maxSamples <= 0 {
		return nil
	}
	return l.check("samples", l.samples.Add(int64(n)), l.maxSamples)
}

func (l *limiter) check(what string, total, limit int64) error {
	if total <= limit {
		return nil
	}
	if l.hit.CompareAndSwap(false, true) && l.onHit != nil {
		l.onHit(what)
	}
	return &LimitError{What: what, Limit: limit}
}
