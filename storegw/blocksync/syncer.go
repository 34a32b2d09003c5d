package blocksync

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"math"
	"slices"
	"sync"
	"time"

	"github.com/oklog/ulid/v2"
	"github.com/prometheus/prometheus/model/labels"

	"github.com/stratametrics/strata/block"
)

// DefaultSyncInterval is how often a Syncer fetches when SyncerConfig.SyncInterval
// is not set.
const DefaultSyncInterval = 3 * time.Minute

// SyncerConfig configures a Syncer.
type SyncerConfig struct {
	// SyncInterval is the time between the start of one sync and the next;
	// DefaultSyncInterval if zero or negative.
	SyncInterval time.Duration
	// OnAdd, if set, is called for every block that starts being served, before it
	// appears in Metas. If it fails, the block is not served and OnAdd is called
	// again on the next sync.
	OnAdd func(ctx context.Context, meta *block.Meta) error
	// OnRemove, if set, is called for every block that stops being served, after it
	// has disappeared from Metas.
	OnRemove func(id ulid.ULID)
}

// Syncer keeps the set of blocks a store gateway serves up to date with the bucket.
// OnAdd and OnRemove are called from the goroutine running Sync or Run, one at a
// time; Metas and Info are safe to call concurrently with them. So Metas only ever
// lists blocks whose OnAdd has returned successfully and whose OnRemove has not yet
// been called.
type Syncer struct {
	fetcher *Fetcher
	cfg     SyncerConfig
	logger  *slog.Logger

	syncMu sync.Mutex // serializes Sync

	mu     sync.RWMutex
	served map[ulid.ULID]*block.Meta // replaced, never modified, once published
}

// NewSyncer returns a Syncer that fetches with f. logger may be nil.
func NewSyncer(f *Fetcher, cfg SyncerConfig, logger *slog.Logger) *Syncer {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if cfg.SyncInterval <= 0 {
		cfg.SyncInterval = DefaultSyncInterval
	}
	return &Syncer{fetcher: f, cfg: cfg, logger: logger, served: map[ulid.ULID]*block.Meta{}}
}

// Run syncs at once and then every SyncInterval until ctx is done, when it returns
// nil. A failed sync is logged and the blocks served before stay served.
func (s *Syncer) Run(ctx context.Context) error {
	t := time.NewTicker(s.cfg.SyncInterval)
	defer t.Stop()
	for {
		if err := s.Sync(ctx); err != nil && ctx.Err() == nil {
			s.logger.Warn("sync blocks", "err", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// Sync fetches once and updates the served set, calling OnRemove for blocks that
// went away and OnAdd for new ones. If the fetch fails the served set is left as
// it was. Blocks whose OnAdd fails are logged and left out; Sync does not fail for
// them.
func (s *Syncer) Sync(ctx context.Context) error {
	s.syncMu.Lock()
	defer s.syncMu.Unlock()

	metas, _, err := s.fetcher.Fetch(ctx)
	if err != nil {
		return fmt.Errorf("sync blocks: %w", err)
	}
	s.mu.RLock()
	old := s.served
	s.mu.RUnlock()

	// Unpublish removed blocks before OnRemove unloads them.
	kept := make(map[ulid.ULID]*block.Meta, len(metas))
	var removed []ulid.ULID
	for _, id := range sortedIDs(old) {
		if _, ok := metas[id]; ok {
			kept[id] = old[id]
		} else {
			removed = append(removed, id)
		}
	}
	if len(removed) > 0 {
		s.publish(kept)
		for _, id := range removed {
			s.logger.Debug("stop serving block", "block", id)
			if s.cfg.OnRemove != nil {
				s.cfg.OnRemove(id)
			}
		}
	}

	// Publish new blocks after OnAdd has loaded them.
	added := 0
	next := maps.Clone(kept)
	for _, id := range sortedIDs(metas) {
		if _, ok := kept[id]; ok {
			continue
		}
		if s.cfg.OnAdd != nil {
			if err := s.cfg.OnAdd(ctx, metas[id]); err != nil {
				s.logger.Warn("add block", "block", id, "err", err)
				continue
			}
		}
		s.logger.Debug("serve block", "block", id)
		next[id] = metas[id]
		added++
	}
	if added > 0 {
		s.publish(next)
	}
	return nil
}

func (s *Syncer) publish(m map[ulid.ULID]*block.Meta) {
	s.mu.Lock()
	s.served = m
	s.mu.Unlock()
}

// Metas returns the blocks served now. The map is the caller's; the Metas are
// shared and must not be modified.
func (s *Syncer) Metas() map[ulid.ULID]*block.Meta {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return maps.Clone(s.served)
}

// Info returns what the served blocks cover; see BlocksInfo.
func (s *Syncer) Info() Info {
	s.mu.RLock()
	served := s.served
	s.mu.RUnlock()
	return BlocksInfo(served)
}

// Info is what a set of blocks covers, as a store gateway advertises it through the
// Store API's Info call.
type Info struct {
	// MinTime is the earliest MinTime of the blocks, math.MaxInt64 without blocks.
	MinTime int64
	// MaxTime is the latest MaxTime of the blocks, math.MinInt64 without blocks.
	// Like meta.json's MaxTime it is exclusive: the blocks hold no sample at it.
	MaxTime int64
	// LabelSets are the distinct external label sets of the blocks, sorted, without
	// empty sets.
	LabelSets []labels.Labels
}

// BlocksInfo computes the time range and the distinct external label sets of
// metas. Without blocks the range is empty (MinTime > MaxTime), as the Store API
// expects of a component with no data yet.
func BlocksInfo(metas map[ulid.ULID]*block.Meta) Info {
	info := Info{MinTime: math.MaxInt64, MaxTime: math.MinInt64}
	for _, m := range metas {
		info.MinTime = min(info.MinTime, m.MinTime)
		info.MaxTime = max(info.MaxTime, m.MaxTime)
		if len(m.Thanos.Labels) > 0 {
			info.LabelSets = append(info.LabelSets, labels.FromMap(m.Thanos.Labels))
		}
	}
	slices.SortFunc(info.LabelSets, labels.Compare)
	info.LabelSets = slices.CompactFunc(info.LabelSets, labels.Equal)
	return info
}
