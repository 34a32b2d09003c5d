package bucketstore

import "github.com/stratametrics/strata/storegw/cache"

// Option configures a Store made by NewStore.
type Option func(*options)

type options struct {
	// caches holds the caches to consult before ranged reads; a nil field
	// disables that cache.
	caches cache.Gateway
	// maxSeries and maxSamples bound one Series request; zero is unlimited.
	maxSeries, maxSamples int64
}

// WithCaches makes the store look up postings lists, series entries and chunks
// in caches before reading them from the bucket, and store what it read and
// verified there. A nil cache in caches is not used. Without this option
// nothing is cached.
func WithCaches(caches cache.Gateway) Option {
	return func(o *options) { o.caches = caches }
}

// WithLimits bounds each Series request to maxSeries series and maxSamples
// samples; zero (or less) means no limit. A request that would go past a limit
// fails with gRPC code ResourceExhausted before it reads more. See the package
// documentation for how series and samples are counted.
func WithLimits(maxSeries, maxSamples int64) Option {
	return func(o *options) {
		o.maxSeries, o.maxSamples = max(maxSeries, 0), max(maxSamples, 0)
	}
}
