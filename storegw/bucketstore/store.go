package bucketstore

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"math"
	"slices"
	"sync"

	"github.com/oklog/ulid/v2"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/prometheus/model/labels"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/stratametrics/strata/block"
	"github.com/stratametrics/strata/objstore"
	"github.com/stratametrics/strata/storeapi"
	"github.com/stratametrics/strata/storeapi/infopb"
	"github.com/stratametrics/strata/storeapi/storepb"
)

// ComponentType is the component type the Info API reports.
const ComponentType = "store"

// blockConcurrency bounds how many blocks one request reads at the same time.
const blockConcurrency = 8

// Store serves the Store API (storepb.StoreServer) and the Info API
// (infopb.InfoServer) over the blocks added to it. Add and Remove may be called
// at any time, concurrently with requests; a request uses the blocks served when
// it started. It is safe for concurrent use.
type Store struct {
	storepb.UnimplementedStoreServer
	infopb.UnimplementedInfoServer

	bkt     *meteredBucket
	dir     string
	logger  *slog.Logger
	metrics *metrics
	opts    options

	mu     sync.RWMutex
	blocks map[ulid.ULID]*Block
}

// NewStore returns a store without blocks that reads from bkt and keeps index
// headers under dir. reg and logger may be nil. Without options nothing is
// cached and requests are not limited.
func NewStore(bkt objstore.BucketReader, dir string, reg prometheus.Registerer, logger *slog.Logger, opts ...Option) *Store {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	m := newMetrics(reg)
	return &Store{
		bkt:     &meteredBucket{BucketReader: bkt, m: m},
		dir:     dir,
		logger:  logger,
		metrics: m,
		opts:    o,
		blocks:  map[ulid.ULID]*Block{},
	}
}

// Add opens the block meta describes and starts serving it; its index header is
// built from the bucket if dir does not hold a valid one. Adding a block that is
// served already does nothing. It has the signature of blocksync's OnAdd.
func (s *Store) Add(ctx context.Context, meta *block.Meta) error {
	s.mu.RLock()
	_, ok := s.blocks[meta.ULID]
	s.mu.RUnlock()
	if ok {
		return nil
	}
	b, err := OpenBlock(ctx, s.bkt, meta, s.dir, s.logger)
	if err != nil {
		return err
	}
	b.caches = s.opts.caches
	s.mu.Lock()
	s.blocks[meta.ULID] = b
	s.metrics.blocksLoaded.Set(float64(len(s.blocks)))
	s.mu.Unlock()
	s.logger.Debug("serving block", "block", meta.ULID)
	return nil
}

// Remove stops serving block id. Requests already running finish with it: a
// Block holds nothing that must be closed. It has the signature of blocksync's
// OnRemove.
func (s *Store) Remove(id ulid.ULID) {
	s.mu.Lock()
	delete(s.blocks, id)
	s.metrics.blocksLoaded.Set(float64(len(s.blocks)))
	s.mu.Unlock()
}

// Blocks returns the served blocks, sorted by min time then ULID.
func (s *Store) Blocks() []*Block {
	s.mu.RLock()
	out := slices.Collect(maps.Values(s.blocks))
	s.mu.RUnlock()
	slices.SortFunc(out, func(a, b *Block) int {
		if a.meta.MinTime != b.meta.MinTime {
			if a.meta.MinTime < b.meta.MinTime {
				return -1
			}
			return 1
		}
		return a.meta.ULID.Compare(b.meta.ULID)
	})
	return out
}

// ReadStats returns what the store has read from the bucket so far, index
// headers included.
func (s *Store) ReadStats() ReadStats {
	return ReadStats{Bytes: s.metrics.bytes.Load(), Requests: s.metrics.requests.Load()}
}

// overlapping returns the served blocks that overlap [mint, maxt].
func (s *Store) overlapping(mint, maxt int64) []*Block {
	var blocks []*Block
	for _, b := range s.Blocks() {
		if b.overlaps(mint, maxt) {
			blocks = append(blocks, b)
		}
	}
	return blocks
}

// forEachBlock calls f for every block of blocks, at most blockConcurrency at a
// time, and returns the first error.
func forEachBlock(ctx context.Context, blocks []*Block, f func(ctx context.Context, i int, b *Block) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		wg   sync.WaitGroup
		sem  = make(chan struct{}, blockConcurrency)
		mu   sync.Mutex
		errs error
	)
	for i, b := range blocks {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			if err := f(ctx, i, b); err != nil {
				mu.Lock()
				if errs == nil {
					errs = err
					cancel()
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	return errs
}

// Series streams the matching series of the blocks that selectBlocks picks for
// the request's time range and max_resolution_window, sorted by labels, with
// series of equal labels from several blocks joined into one. Downsampled
// blocks serve the requested aggregates.
func (s *Store) Series(r *storepb.SeriesRequest, srv storepb.Store_SeriesServer) error {
	ctx := srv.Context()
	ms, err := storeapi.MatchersFromProto(r.GetMatchers())
	if err != nil {
		return storeapi.GRPCError(ctx, err)
	}
	q := Query{
		MinTime:              r.GetMinTime(),
		MaxTime:              r.GetMaxTime(),
		Matchers:             ms,
		SkipChunks:           r.GetSkipChunks(),
		WithoutReplicaLabels: r.GetWithoutReplicaLabels(),
		Aggregates:           r.GetAggregates(),
	}
	served := s.Blocks()
	byID := make(map[ulid.ULID]*Block, len(served))
	metas := make([]*block.Meta, len(served))
	for i, b := range served {
		byID[b.meta.ULID], metas[i] = b, b.meta
	}
	sel := selectBlocks(metas, q.MinTime, q.MaxTime, r.GetMaxResolutionWindow())
	blocks := make([]*Block, len(sel))
	for i, bs := range sel {
		blocks[i] = byID[bs.meta.ULID]
	}
	var (
		mu  sync.Mutex
		all []Series
		lim = newLimiter(s.opts, func(what string) { s.metrics.limitHits.WithLabelValues(what).Inc() })
	)
	err = forEachBlock(ctx, blocks, func(ctx context.Context, i int, b *Block) error {
		bq := q
		bq.ranges = openEnds(sel[i].ranges, q.MinTime, q.MaxTime)
		ss, err := b.series(ctx, bq, lim)
		if err != nil {
			return fmt.Errorf("block %s: %w", b.meta.ULID, err)
		}
		mu.Lock()
		all = append(all, ss...)
		mu.Unlock()
		return nil
	})
	if le := (*LimitError)(nil); errors.As(err, &le) {
		// The limit's own message, without the block that happened to hit it.
		return status.Error(codes.ResourceExhausted, le.Error())
	}
	if err != nil {
		return storeapi.GRPCError(ctx, err)
	}
	all = storeapi.MergeSeries(all)
	if limit := r.GetLimit(); limit > 0 && int64(len(all)) > limit {
		all = all[:limit]
	}
	return storeapi.GRPCError(ctx, storeapi.SendSeries(srv, all, r.GetResponseBatchSize()))
}

// LabelNames returns the label names of the matching series, external labels
// included. Without matchers on series labels it answers from the index headers
// alone; otherwise it reads the matching series entries (but no chunks).
func (s *Store) LabelNames(ctx context.Context, r *storepb.LabelNamesRequest) (*storepb.LabelNamesResponse, error) {
	ms, err := storeapi.MatchersFromProto(r.GetMatchers())
	if err != nil {
		return nil, storeapi.GRPCError(ctx, err)
	}
	var (
		mu    sync.Mutex
		names []string
	)
	err = forEachBlock(ctx, s.overlapping(r.GetStart(), r.GetEnd()), func(ctx context.Context, _ int, b *Block) error {
		n, err := b.labelNames(ctx, r.GetStart(), r.GetEnd(), ms, r.GetWithoutReplicaLabels())
		if err != nil {
			return fmt.Errorf("block %s: %w", b.meta.ULID, err)
		}
		mu.Lock()
		names = append(names, n...)
		mu.Unlock()
		return nil
	})
	if err != nil {
		return nil, storeapi.GRPCError(ctx, err)
	}
	return &storepb.LabelNamesResponse{Names: storeapi.SortedLimited(names, r.GetLimit())}, nil
}

// LabelValues returns the values of one label of the matching series.
func (s *Store) LabelValues(ctx context.Context, r *storepb.LabelValuesRequest) (*storepb.LabelValuesResponse, error) {
	if r.GetLabel() == "" {
		return nil, storeapi.GRPCError(ctx, fmt.Errorf("%w: label name is empty", storeapi.ErrInvalidRequest))
	}
	ms, err := storeapi.MatchersFromProto(r.GetMatchers())
	if err != nil {
		return nil, storeapi.GRPCError(ctx, err)
	}
	var (
		mu     sync.Mutex
		values []string
	)
	err = forEachBlock(ctx, s.overlapping(r.GetStart(), r.GetEnd()), func(ctx context.Context, _ int, b *Block) error {
		v, err := b.labelValues(ctx, r.GetStart(), r.GetEnd(), r.GetLabel(), ms, r.GetWithoutReplicaLabels())
		if err != nil {
			return fmt.Errorf("block %s: %w", b.meta.ULID, err)
		}
		mu.Lock()
		values = append(values, v...)
		mu.Unlock()
		return nil
	})
	if err != nil {
		return nil, storeapi.GRPCError(ctx, err)
	}
	return &storepb.LabelValuesResponse{Values: storeapi.SortedLimited(values, r.GetLimit())}, nil
}

// Info reports the distinct external label sets of the blocks and the union of
// their time ranges. Without blocks the range is empty (min > max), so that a
// querier skips the store.
func (s *Store) Info(context.Context, *infopb.InfoRequest) (*infopb.InfoResponse, error) {
	info := &infopb.StoreInfo{MinTime: math.MaxInt64, MaxTime: math.MinInt64, SupportsWithoutReplicaLabels: true}
	resp := &infopb.InfoResponse{ComponentType: ComponentType, Store: info}
	var sets []labels.Labels
	for _, b := range s.Blocks() {
		// A block's MaxTime is exclusive; Info's is inclusive.
		info.MinTime, info.MaxTime = min(info.MinTime, b.meta.MinTime), max(info.MaxTime, b.meta.MaxTime-1)
		if !b.ext.IsEmpty() {
			sets = append(sets, b.ext)
		}
	}
	slices.SortFunc(sets, labels.Compare)
	for _, ls := range slices.CompactFunc(sets, labels.Equal) {
		resp.LabelSets = append(resp.LabelSets, &storepb.LabelSet{Labels: storeapi.LabelsToProto(ls)})
	}
	return resp, nil
}
