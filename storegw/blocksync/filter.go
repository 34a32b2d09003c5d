package blocksync

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cespare/xxhash/v2"
	"github.com/oklog/ulid/v2"

	"github.com/stratametrics/strata/block"
	"github.com/stratametrics/strata/hashring"
	"github.com/stratametrics/strata/objstore"
)

// DeletionMarkFilter drops blocks whose deletion mark is at least Delay old.
//
// A block with a younger mark stays served: the compactor marks a block once its
// replacement is uploaded, and readers need time to pick the replacement up before
// they let go of the original, or queries would briefly miss its data. Delay should
// therefore be well below the compactor's delete delay and above the sync interval.
//
// Marks can appear at any time, so they are read on every fetch, by up to
// Concurrency readers at once. A mark that does not decode is logged and ignored:
// the block stays served. Any other read error fails the fetch.
type DeletionMarkFilter struct {
	bkt         objstore.BucketReader
	delay       time.Duration
	concurrency int
	logger      *slog.Logger
}

// NewDeletionMarkFilter returns a DeletionMarkFilter reading marks from bkt.
// concurrency defaults to DefaultConcurrency if not positive; logger may be nil.
func NewDeletionMarkFilter(bkt objstore.BucketReader, delay time.Duration, concurrency int, logger *slog.Logger) *DeletionMarkFilter {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if concurrency <= 0 {
		concurrency = DefaultConcurrency
	}
	return &DeletionMarkFilter{bkt: bkt, delay: delay, concurrency: concurrency, logger: logger}
}

// Filter implements Filter.
func (f *DeletionMarkFilter) Filter(ctx context.Context, metas map[ulid.ULID]*block.Meta, drop func(ulid.ULID, string)) error {
	var (
		mu      sync.Mutex
		expired []ulid.ULID
	)
	now := time.Now()
	err := ForEachID(ctx, sortedIDs(metas), f.concurrency, func(ctx context.Context, id ulid.ULID) error {
		m, err := block.ReadDeletionMark(ctx, f.bkt, id)
		switch {
		case errors.Is(err, objstore.ErrNotFound):
			return nil
		case errors.Is(err, block.ErrInvalidDeletionMark):
			f.logger.Warn("ignore invalid deletion mark", "block", id, "err", err)
			return nil
		case err != nil:
			return fmt.Errorf("read deletion mark of block %s: %w", id, err)
		}
		if now.Sub(time.Unix(m.DeletionTime, 0)) >= f.delay {
			mu.Lock()
			expired = append(expired, id)
			mu.Unlock()
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("read deletion marks: %w", err)
	}
	for _, id := range expired {
		delete(metas, id)
		drop(id, StateMarkedForDeletion)
	}
	return nil
}

// ConsistencyDelayFilter drops blocks whose ULID time is less than Delay ago.
//
// Some object stores list an object before every reader can get it. A block is
// served only once its ULID, which its producer stamps when it cuts the block and
// before it uploads it, is older than Delay, so that all of its files are readable
// by then. The ULID time is used rather than meta.json's upload time because Thanos
// does so and every block has one; it applies to every block whatever its source,
// including the compactor's. A zero Delay keeps every block.
type ConsistencyDelayFilter struct {
	// Delay is how old a block's ULID must be for the block to be served.
	Delay time.Duration
}

// Filter implements Filter.
func (f ConsistencyDelayFilter) Filter(_ context.Context, metas map[ulid.ULID]*block.Meta, drop func(ulid.ULID, string)) error {
	if f.Delay <= 0 {
		return nil
	}
	now := time.Now()
	for id := range metas {
		if now.Sub(ulid.Time(id.Time())) < f.Delay {
			delete(metas, id)
			drop(id, StateTooNew)
		}
	}
	return nil
}

// TimeFilter keeps the blocks that overlap the time range [MinTime, MaxTime], both
// inclusive. A block covers [meta.MinTime, meta.MaxTime) as in Prometheus. Relative
// bounds are resolved against the clock on every fetch, so "-2w" keeps moving. An
// unset bound is unbounded.
type TimeFilter struct {
	// MinTime is the earliest time to serve.
	MinTime TimeOrDuration
	// MaxTime is the latest time to serve.
	MaxTime TimeOrDuration
}

// Filter implements Filter.
func (f TimeFilter) Filter(_ context.Context, metas map[ulid.ULID]*block.Meta, drop func(ulid.ULID, string)) error {
	now := time.Now()
	mint, maxt := int64(math.MinInt64), int64(math.MaxInt64)
	if f.MinTime.IsSet() {
		mint = f.MinTime.UnixMilli(now)
	}
	if f.MaxTime.IsSet() {
		maxt = f.MaxTime.UnixMilli(now)
	}
	for id, m := range metas {
		if m.MaxTime <= mint || m.MinTime > maxt {
			delete(metas, id)
			drop(id, StateOutOfTimeRange)
		}
	}
	return nil
}

// BlockHash returns the placement hash of a block on a ring of store gateways:
// xxhash64 of the block's ULID in its 26-character string form. It differs from
// hashring.Hash, which hashes a tenant and a series' labels; a block has neither a
// single series nor necessarily a tenant, and its ID is unique and stable.
func BlockHash(id ulid.ULID) uint64 {
	return xxhash.Sum64String(id.String())
}

// ShardFilter keeps the blocks that a ring of store gateways assigns to this
// gateway: those whose BlockHash's first owner on the ring is the endpoint named
// Self. Only the first owner counts, whatever the ring's replication factor, so
// every block is served by exactly one gateway of the ring. It is safe for
// concurrent use, and SetRing swaps the ring while fetches run.
type ShardFilter struct {
	self string
	ring atomic.Pointer[hashring.Ring]
}

// NewShardFilter returns a ShardFilter for the gateway named self on ring. It fails
// if self is not an endpoint of ring.
func NewShardFilter(ring hashring.Ring, self string) (*ShardFilter, error) {
	f := &ShardFilter{self: self}
	if err := f.SetRing(ring); err != nil {
		return nil, err
	}
	return f, nil
}

// SetRing replaces the ring, for example after the hashring file changed. It fails,
// keeping the old ring, if this gateway is not an endpoint of ring.
func (f *ShardFilter) SetRing(ring hashring.Ring) error {
	found := false
	for _, ep := range ring.Endpoints() {
		if ep.Name == f.self {
			found = true
			break
		}
	}
	if !found {
		return fmt.Errorf("shard blocks: gateway %q is not an endpoint of the ring", f.self)
	}
	f.ring.Store(&ring)
	return nil
}

// Filter implements Filter.
func (f *ShardFilter) Filter(_ context.Context, metas map[ulid.ULID]*block.Meta, drop func(ulid.ULID, string)) error {
	ring := *f.ring.Load()
	eps := ring.Endpoints()
	owners := make([]int, 0, ring.ReplicationFactor())
	for id := range metas {
		owners = ring.Owners(BlockHash(id), owners[:0])
		if len(owners) == 0 || eps[owners[0]].Name != f.self {
			delete(metas, id)
			drop(id, StateOtherShard)
		}
	}
	return nil
}
