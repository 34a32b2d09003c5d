package compactor

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/oklog/ulid/v2"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/stratametrics/strata/block"
	"github.com/stratametrics/strata/compactor/bucket"
	"github.com/stratametrics/strata/objstore"
	"github.com/stratametrics/strata/storegw/blocksync"
)

// Reasons the compactor writes into no-compact and no-downsample marks, next to
// the ones of package block.
const (
	// ReasonCorruptedBlock marks a block that failed to download (a file its
	// meta.json lists is missing) or to verify MaxBlockFailures passes in a row.
	ReasonCorruptedBlock = "corrupted-block"
	// ReasonDownsampleEmpty marks a block in which downsampling found nothing to
	// aggregate, so that it is not downloaded again every pass.
	ReasonDownsampleEmpty = "downsample-empty"
)

// Defaults of Config.
const (
	// DefaultConsistencyDelay is how old a block uploaded by another component
	// must be before the compactor touches it.
	DefaultConsistencyDelay = 30 * time.Minute
	// DefaultMaxBlockFailures is how many passes in a row a block may fail to
	// download or verify before it is marked no-compact.
	DefaultMaxBlockFailures = 3
	// DownsampleRange5m is the least time span of a raw block before it is
	// downsampled to 5m: enough for about two chunks of 5m aggregates.
	DownsampleRange5m = int64(40 * time.Hour / time.Millisecond)
	// DownsampleRange1h is the least time span of a 5m block before it is
	// downsampled to 1h.
	DownsampleRange1h = int64(10 * 24 * time.Hour / time.Millisecond)
)

// Config configures a Compactor.
type Config struct {
	// DataDir is the scratch directory blocks are downloaded to and compacted
	// in. New wipes it: nothing in it survives a restart.
	DataDir string
	// ConsistencyDelay is how old (by ULID time) a block uploaded by another
	// component must be before it is compacted; the compactor's own blocks are
	// never delayed.
	ConsistencyDelay time.Duration
	// DeleteDelay is how long a block marked for deletion stays in the bucket.
	// The compactor stops seeing such a block after half of it.
	DeleteDelay time.Duration
	// PartialUploadAge is how long a block directory without meta.json may stay
	// unmodified before it is deleted as an abandoned upload.
	PartialUploadAge time.Duration
	// RetentionRaw, Retention5m and Retention1h are how long blocks of each
	// resolution are kept past their MaxTime; zero keeps them forever.
	RetentionRaw, Retention5m, Retention1h time.Duration
	// TenantRetention, when set, gives how long the blocks of a tenant (named
	// by the block's TenantLabel external label) are kept at every
	// resolution; zero means no limit of its own. The shorter of it and the
	// resolution's retention applies. It is asked on every pass, so it may
	// change at runtime.
	TenantRetention func(tenant string) time.Duration
	// TenantLabel is the external label that names a block's tenant;
	// tenant_id if empty.
	TenantLabel string
	// ReplicaLabels are external labels removed from every block before
	// grouping, so that replicas of a stream are merged (deduplicated) into
	// one block without them. This cannot be undone.
	ReplicaLabels []string
	// DisableDownsampling turns downsampling off.
	DisableDownsampling bool
	// Concurrency is how many groups are compacted, and blocks downsampled, at
	// once; 1 if not positive.
	Concurrency int
	// BlockSyncConcurrency is how many metas and marks are read at once.
	BlockSyncConcurrency int
	// Ranges are the planner's block ranges in milliseconds; DefaultRanges if
	// empty.
	Ranges []int64
	// MaxBlockFailures is how many passes in a row a block may fail to download
	// or verify before it is marked no-compact; DefaultMaxBlockFailures if not
	// positive.
	MaxBlockFailures int
	// Now is the clock for marks, retention, delays and cleanup; time.Now if nil.
	Now func() time.Time
}

// Validate reports whether the configuration can be used.
func (c *Config) Validate() error {
	if c.DataDir == "" {
		return errors.New("compactor: no data directory")
	}
	for name, d := range map[string]time.Duration{
		"consistency delay": c.ConsistencyDelay, "delete delay": c.DeleteDelay,
		"partial upload age": c.PartialUploadAge, "raw retention": c.RetentionRaw,
		"5m retention": c.Retention5m, "1h retention": c.Retention1h,
	} {
		if d < 0 {
			return fmt.Errorf("compactor: %s %s is negative", name, d)
		}
	}
	for i, r := range c.Ranges {
		if r <= 0 || (i > 0 && r <= c.Ranges[i-1]) {
			return fmt.Errorf("compactor: ranges %v must be positive and increasing", c.Ranges)
		}
	}
	return nil
}

// retention returns the retention of block m's data at resolution res, zero
// for forever.
func (c *Config) retention(m *block.Meta, res int64) time.Duration {
	var r time.Duration
	switch res {
	case block.ResolutionRaw:
		r = c.RetentionRaw
	case block.Resolution5m:
		r = c.Retention5m
	case block.Resolution1h:
		r = c.Retention1h
	}
	if c.TenantRetention == nil {
		return r
	}
	label := c.TenantLabel
	if label == "" {
		label = "tenant_id"
	}
	tenant, ok := m.Thanos.Labels[label]
	if !ok {
		return r
	}
	if t := c.TenantRetention(tenant); t > 0 && (r == 0 || t < r) {
		return t
	}
	return r
}

// Compactor compacts, deduplicates, downsamples, applies retention to and
// cleans up the blocks of one bucket. Only one may run per bucket; see the
// package documentation.
type Compactor struct {
	bkt     objstore.Bucket
	cfg     Config
	logger  *slog.Logger
	metrics *metrics

	fetcher *blocksync.Fetcher
	marks   *markFilter
	dups    *duplicateFilter

	ready atomic.Bool

	mu       sync.Mutex
	failures map[ulid.ULID]int // consecutive download or verification failures
}

// New returns a Compactor of bkt. It wipes cfg.DataDir. reg and logger may be nil.
func New(bkt objstore.Bucket, cfg Config, reg prometheus.Registerer, logger *slog.Logger) (*Compactor, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Concurrency <= 0 {
		cfg.Concurrency = 1
	}
	if cfg.BlockSyncConcurrency <= 0 {
		cfg.BlockSyncConcurrency = blocksync.DefaultConcurrency
	}
	if len(cfg.Ranges) == 0 {
		cfg.Ranges = DefaultRanges
	}
	if cfg.MaxBlockFailures <= 0 {
		cfg.MaxBlockFailures = DefaultMaxBlockFailures
	}
	cfg.ReplicaLabels = slices.Clone(cfg.ReplicaLabels)
	if err := os.RemoveAll(cfg.DataDir); err != nil {
		return nil, fmt.Errorf("compactor: wipe data directory: %w", err)
	}
	if err := os.MkdirAll(cfg.DataDir, 0o750); err != nil {
		return nil, fmt.Errorf("compactor: create data directory: %w", err)
	}
	c := &Compactor{
		bkt:      bkt,
		cfg:      cfg,
		logger:   logger,
		metrics:  newMetrics(reg),
		marks:    newMarkFilter(bkt, cfg.DeleteDelay/2, cfg.Now, cfg.BlockSyncConcurrency, logger),
		dups:     &duplicateFilter{},
		failures: map[ulid.ULID]int{},
	}
	c.metrics.halted.Set(0)
	c.fetcher = blocksync.NewFetcher(bkt, blocksync.FetcherConfig{
		Concurrency: cfg.BlockSyncConcurrency,
		Filters: []blocksync.Filter{
			consistencyDelayFilter{delay: cfg.ConsistencyDelay, now: cfg.Now},
			c.marks,
			replicaLabelFilter{labels: cfg.ReplicaLabels},
			c.dups,
		},
	}, reg, logger)
	return c, nil
}

// Ready reports whether the bucket was synced successfully at least once.
func (c *Compactor) Ready() bool { return c.ready.Load() }

// Run runs a pass, then, until ctx is done, another one every interval after
// the previous one ended. A failed pass is logged and counted, never fatal:
// what failed is retried in the next pass. Run returns nil when ctx is done.
func (c *Compactor) Run(ctx context.Context, interval time.Duration) error {
	for {
		if err := c.Pass(ctx); err != nil && ctx.Err() == nil {
			c.logger.Warn("compactor pass failed; retrying in the next pass", "err", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(interval):
		}
	}
}

// Pass runs one full pass: sync, compaction of every group until nothing is
// left to plan, downsampling raw to 5m, sync, 5m to 1h, sync, retention and
// cleanup. A failure in one group, block or step does not stop the others; the
// failures are returned joined, after everything else was done.
func (c *Compactor) Pass(ctx context.Context) error {
	start := time.Now()
	c.metrics.passes.Inc()
	defer func() { c.metrics.passDuration.Observe(time.Since(start).Seconds()) }()

	st, err := c.sync(ctx)
	if err != nil {
		return err
	}
	var errs []error
	if err := c.compactAll(ctx, st); err != nil {
		errs = append(errs, err)
	}
	if !c.cfg.DisableDownsampling {
		for _, step := range []struct {
			from, to, minSpan int64
		}{
			{block.ResolutionRaw, block.Resolution5m, DownsampleRange5m},
			{block.Resolution5m, block.Resolution1h, DownsampleRange1h},
		} {
			if st, err = c.sync(ctx); err != nil {
				return errors.Join(append(errs, err)...)
			}
			if err := c.downsampleAll(ctx, st, step.from, step.to, step.minSpan); err != nil {
				errs = append(errs, err)
			}
		}
	}
	if st, err = c.sync(ctx); err != nil {
		return errors.Join(append(errs, err)...)
	}
	if err := c.applyRetention(ctx, st); err != nil {
		c.countFailure(ctx, failureRetention)
		errs = append(errs, err)
	}
	if err := c.cleanup(ctx); err != nil {
		c.countFailure(ctx, failureCleanup)
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	c.metrics.lastSuccess.Set(float64(time.Now().UnixNano()) / 1e9)
	return nil
}

// countFailure counts a failure of the given reason, unless it is only the
// cancellation of ctx at shutdown.
func (c *Compactor) countFailure(ctx context.Context, reason string) {
	if ctx.Err() == nil {
		c.metrics.failures.WithLabelValues(reason).Inc()
	}
}

// syncState is what one sync of the bucket found.
type syncState struct {
	// metas are the blocks the compactor works on, with replica labels removed.
	metas map[ulid.ULID]*block.Meta
	marks marks
}

// sync reads the bucket's metas and marks, and marks for deletion every block
// the duplicate filter dropped: after a crash between the upload of a
// compaction's result and the marking of its sources, this finishes the job.
func (c *Compactor) sync(ctx context.Context) (*syncState, error) {
	metas, _, err := c.fetcher.Fetch(ctx)
	if err != nil {
		c.countFailure(ctx, failureSync)
		return nil, fmt.Errorf("sync blocks: %w", err)
	}
	c.ready.Store(true)
	st := &syncState{metas: metas, marks: c.marks.marks()}
	dups := c.dups.last()
	for _, id := range slices.SortedFunc(maps.Keys(dups), ulid.ULID.Compare) {
		if _, ok := st.marks.deletion[id]; ok {
			continue
		}
		details := fmt.Sprintf("duplicate: its sources are in block %s", dups[id])
		if err := block.WriteDeletionMark(ctx, c.bkt, id, c.cfg.Now(), details); err != nil {
			c.countFailure(ctx, failureMark)
			c.logger.Warn("mark duplicate block for deletion", "block", id, "err", err)
			continue
		}
		c.metrics.markedForDeletion.WithLabelValues(deletionDuplicate).Inc()
		c.logger.Info("marked duplicate block for deletion", "block", id, "covered_by", dups[id])
	}
	return st, nil
}

// applyRetention marks for deletion every block whose MaxTime is older than the
// retention of its resolution.
func (c *Compactor) applyRetention(ctx context.Context, st *syncState) error {
	now := c.cfg.Now()
	var errs []error
	for _, id := range slices.SortedFunc(maps.Keys(st.metas), ulid.ULID.Compare) {
		m := st.metas[id]
		if _, ok := st.marks.deletion[id]; ok {
			continue
		}
		if !c.expired(m, m.Thanos.Downsample.Resolution, now) {
			continue
		}
		details := fmt.Sprintf("retention: older than %s at resolution %d", c.cfg.retention(m, m.Thanos.Downsample.Resolution), m.Thanos.Downsample.Resolution)
		if err := block.WriteDeletionMark(ctx, c.bkt, id, now, details); err != nil {
			errs = append(errs, fmt.Errorf("apply retention to block %s: %w", id, err))
			continue
		}
		c.metrics.markedForDeletion.WithLabelValues(deletionRetention).Inc()
		c.logger.Info("marked block for deletion by retention", "block", id, "resolution", m.Thanos.Downsample.Resolution,
			"max_time", time.UnixMilli(m.MaxTime).UTC())
	}
	return errors.Join(errs...)
}

// expired reports whether data of block m kept at resolution res is past
// retention at now.
func (c *Compactor) expired(m *block.Meta, res int64, now time.Time) bool {
	r := c.cfg.retention(m, res)
	return r > 0 && now.After(time.UnixMilli(m.MaxTime).Add(r))
}

// cleanup deletes blocks whose deletion mark aged past the delete delay and
// abandoned partial uploads.
func (c *Compactor) cleanup(ctx context.Context) error {
	stats, err := bucket.Cleanup(ctx, c.logger, c.bkt, bucket.CleanupConfig{
		DeleteDelay:      c.cfg.DeleteDelay,
		PartialUploadAge: c.cfg.PartialUploadAge,
		Now:              c.cfg.Now(),
	})
	c.metrics.deleted.Add(float64(stats.Deleted + stats.InterruptedDeleted))
	c.metrics.partialDeleted.Add(float64(stats.PartialDeleted))
	if err != nil {
		return fmt.Errorf("clean up bucket: %w", err)
	}
	return nil
}
