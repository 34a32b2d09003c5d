package blocksync

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/oklog/ulid/v2"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"

	"github.com/stratametrics/strata/block"
	"github.com/stratametrics/strata/objstore"
)

// States of a block as reported by strata_blocksync_blocks. Filters report the
// state they drop blocks with; a block that passes every filter is StateLoaded.
const (
	// StateLoaded is a block that passed every filter and is served.
	StateLoaded = "loaded"
	// StatePartial is a block directory without meta.json: an upload in progress or
	// one that failed.
	StatePartial = "partial"
	// StateCorrupted is a block whose meta.json does not decode or validate.
	StateCorrupted = "corrupted"
	// StateMarkedForDeletion is a block dropped by DeletionMarkFilter.
	StateMarkedForDeletion = "marked-for-deletion"
	// StateTooNew is a block dropped by ConsistencyDelayFilter.
	StateTooNew = "too-new"
	// StateOutOfTimeRange is a block dropped by TimeFilter.
	StateOutOfTimeRange = "out-of-time-range"
	// StateOtherShard is a block dropped by ShardFilter.
	StateOtherShard = "other-shard"
)

// states lists every state, so that each fetch sets all of them, zeros included.
var states = []string{
	StateLoaded, StatePartial, StateCorrupted, StateMarkedForDeletion,
	StateTooNew, StateOutOfTimeRange, StateOtherShard,
}

// DefaultConcurrency is how many meta.json files a Fetcher reads at once when
// FetcherConfig.Concurrency is not set.
const DefaultConcurrency = 32

// Filter drops blocks from the result of a fetch.
//
// Filter deletes from metas every block it rejects and calls drop once for each of
// them with the state to report. metas belongs to the caller and is only valid
// during the call; the Meta values are shared with the Fetcher's cache and must not
// be modified. A Fetcher calls its filters one after another from one goroutine, so
// a Filter need not be safe for concurrent use by several Fetchers unless it is
// shared. An error fails the whole fetch.
type Filter interface {
	Filter(ctx context.Context, metas map[ulid.ULID]*block.Meta, drop func(id ulid.ULID, state string)) error
}

// FetcherConfig configures a Fetcher.
type FetcherConfig struct {
	// Concurrency is how many meta.json files are read at once; DefaultConcurrency
	// if zero or negative.
	Concurrency int
	// Filters are applied in order to the blocks whose meta was read.
	Filters []Filter
}

// Fetcher lists the blocks of a bucket and reads their metas. It is safe for
// concurrent use, though concurrent fetches do the same work twice.
type Fetcher struct {
	bkt     objstore.BucketReader
	cfg     FetcherConfig
	logger  *slog.Logger
	metrics *fetcherMetrics

	mu    sync.Mutex
	cache map[ulid.ULID]*block.Meta // metas read successfully; meta.json is immutable
}

type fetcherMetrics struct {
	blocks   *prometheus.GaugeVec
	syncs    prometheus.Counter
	failures prometheus.Counter
	duration prometheus.Histogram
}

func newFetcherMetrics(reg prometheus.Registerer) *fetcherMetrics {
	f := promauto.With(reg)
	return &fetcherMetrics{
		blocks: f.NewGaugeVec(prometheus.GaugeOpts{
			Name: "strata_blocksync_blocks",
			Help: "Number of blocks in the bucket by state at the last successful sync.",
		}, []string{"state"}),
		syncs: f.NewCounter(prometheus.CounterOpts{
			Name: "strata_blocksync_syncs_total",
			Help: "Total number of block syncs (fetches of the bucket's metas).",
		}),
		failures: f.NewCounter(prometheus.CounterOpts{
			Name: "strata_blocksync_sync_failures_total",
			Help: "Total number of block syncs that failed.",
		}),
		duration: f.NewHistogram(prometheus.HistogramOpts{
			Name:    "strata_blocksync_sync_duration_seconds",
			Help:    "Duration of block syncs.",
			Buckets: []float64{0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60, 120, 300},
		}),
	}
}

// NewFetcher returns a Fetcher of the blocks in bkt. reg and logger may be nil.
func NewFetcher(bkt objstore.BucketReader, cfg FetcherConfig, reg prometheus.Registerer, logger *slog.Logger) *Fetcher {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Concurrency <= 0 {
		cfg.Concurrency = DefaultConcurrency
	}
	return &Fetcher{
		bkt:     bkt,
		cfg:     cfg,
		logger:  logger,
		metrics: newFetcherMetrics(reg),
		cache:   map[ulid.ULID]*block.Meta{},
	}
}

// Fetch lists the bucket's blocks, reads the metas it has not read before and
// applies the filters. metas holds the blocks that passed every filter; partial
// holds, for each block directory whose meta.json is missing (the error matches
// objstore.ErrNotFound) or invalid (it matches block.ErrInvalidMeta), an error
// naming the block. Blocks dropped by filters are in neither map.
//
// err is set, and metas and partial are nil, when the bucket cannot be listed, a
// meta.json cannot be read for another reason, or a filter fails. The returned
// Metas are shared with the Fetcher's cache and must not be modified.
func (f *Fetcher) Fetch(ctx context.Context) (metas map[ulid.ULID]*block.Meta, partial map[ulid.ULID]error, err error) {
	start := time.Now()
	f.metrics.syncs.Inc()
	defer func() {
		f.metrics.duration.Observe(time.Since(start).Seconds())
		if err != nil {
			f.metrics.failures.Inc()
		}
	}()

	ids, err := f.list(ctx)
	if err != nil {
		return nil, nil, err
	}
	metas, partial, err = f.readMetas(ctx, ids)
	if err != nil {
		return nil, nil, err
	}

	counts := map[string]int{}
	for id, perr := range partial {
		if errors.Is(perr, objstore.ErrNotFound) {
			counts[StatePartial]++
		} else {
			counts[StateCorrupted]++
			f.logger.Warn("skip block with invalid meta.json", "block", id, "err", perr)
		}
	}
	drop := func(_ ulid.ULID, state string) { counts[state]++ }
	for _, flt := range f.cfg.Filters {
		if err := flt.Filter(ctx, metas, drop); err != nil {
			return nil, nil, fmt.Errorf("filter blocks: %w", err)
		}
	}
	counts[StateLoaded] = len(metas)
	for _, s := range states {
		f.metrics.blocks.WithLabelValues(s).Set(float64(counts[s]))
	}
	return metas, partial, nil
}

// list returns the ULIDs of the top-level block directories of the bucket. Other
// names are not blocks (for example Thanos' debug/ directory) and are ignored.
func (f *Fetcher) list(ctx context.Context) ([]ulid.ULID, error) {
	return block.ListIDs(ctx, f.bkt)
}

// readMetas returns the metas of ids, from the cache or read by up to
// cfg.Concurrency workers, and forgets cached metas of blocks no longer listed.
func (f *Fetcher) readMetas(ctx context.Context, ids []ulid.ULID) (map[ulid.ULID]*block.Meta, map[ulid.ULID]error, error) {
	metas := make(map[ulid.ULID]*block.Meta, len(ids))
	var toRead []ulid.ULID
	f.mu.Lock()
	listed := make(map[ulid.ULID]struct{}, len(ids))
	for _, id := range ids {
		listed[id] = struct{}{}
		if m, ok := f.cache[id]; ok {
			metas[id] = m
		} else {
			toRead = append(toRead, id)
		}
	}
	maps.DeleteFunc(f.cache, func(id ulid.ULID, _ *block.Meta) bool {
		_, ok := listed[id]
		return !ok
	})
	f.mu.Unlock()

	var (
		mu      sync.Mutex
		partial = map[ulid.ULID]error{}
	)
	err := ForEachID(ctx, toRead, f.cfg.Concurrency, func(ctx context.Context, id ulid.ULID) error {
		m, err := block.ReadMetaFromBucket(ctx, f.bkt, id)
		mu.Lock()
		defer mu.Unlock()
		switch {
		case err == nil:
			metas[id] = m
		case errors.Is(err, objstore.ErrNotFound), errors.Is(err, block.ErrInvalidMeta):
			partial[id] = fmt.Errorf("block %s: %w", id, err)
		default:
			return fmt.Errorf("read meta of block %s: %w", id, err)
		}
		return nil
	})
	if err != nil {
		return nil, nil, fmt.Errorf("read metas: %w", err)
	}

	f.mu.Lock()
	for _, id := range toRead {
		if m, ok := metas[id]; ok {
			f.cache[id] = m
		}
	}
	f.mu.Unlock()
	return metas, partial, nil
}

// sortedIDs returns the keys of m in ULID order.
func sortedIDs[V any](m map[ulid.ULID]V) []ulid.ULID {
	return slices.SortedFunc(maps.Keys(m), func(a, b ulid.ULID) int { return a.Compare(b) })
}

// ForEachID calls f for every id, concurrency at a time (at least one). The
// first error stops the work still to start; ForEachID returns the errors, or
// the context's.
func ForEachID(ctx context.Context, ids []ulid.ULID, concurrency int, f func(context.Context, ulid.ULID) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		mu   sync.Mutex
		errs []error
		work = make(chan ulid.ULID)
		wg   sync.WaitGroup
	)
	for range min(max(concurrency, 1), len(ids)) {
		wg.Go(func() {
			for id := range work {
				if err := f(ctx, id); err != nil {
					mu.Lock()
					errs = append(errs, err)
					mu.Unlock()
					cancel()
				}
			}
		})
	}
feed:
	for _, id := range ids {
		select {
		case work <- id:
		case <-ctx.Done():
			break feed
		}
	}
	close(work)
	wg.Wait()
	if len(errs) > 0 {
		return errors.Join(errs...)
	}
	return ctx.Err()
}
