package blocksync_test

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/oklog/ulid/v2"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/stretchr/testify/require"

	"github.com/stratametrics/strata/block"
	"github.com/stratametrics/strata/hashring"
	"github.com/stratametrics/strata/storegw/blocksync"
)

// events records the callbacks of a Syncer.
type events struct {
	mu      sync.Mutex
	added   []ulid.ULID
	removed []ulid.ULID
	failAdd map[ulid.ULID]bool
}

func (e *events) onAdd(_ context.Context, m *block.Meta) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.failAdd[m.ULID] {
		return errors.New("load failed")
	}
	e.added = append(e.added, m.ULID)
	return nil
}

func (e *events) onRemove(id ulid.ULID) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.removed = append(e.removed, id)
}

func (e *events) get() (added, removed []ulid.ULID) {
	e.mu.Lock()
	defer e.mu.Unlock()
	return slices.Clone(e.added), slices.Clone(e.removed)
}

func TestSyncerAddRemove(t *testing.T) {
	ctx := context.Background()
	bkt := newBucket(t)
	a := uploadBlock(t, bkt, 0, 2*hour, testLabels)

	ev := &events{failAdd: map[ulid.ULID]bool{}}
	f := blocksync.NewFetcher(bkt, blocksync.FetcherConfig{}, nil, nil)
	s := blocksync.NewSyncer(f, blocksync.SyncerConfig{OnAdd: ev.onAdd, OnRemove: ev.onRemove}, nil)
	require.Empty(t, s.Metas())
	info := s.Info()
	require.Greater(t, info.MinTime, info.MaxTime, "no blocks: empty range")

	require.NoError(t, s.Sync(ctx))
	require.ElementsMatch(t, []ulid.ULID{a.ULID}, ids(s.Metas()))
	added, removed := ev.get()
	require.Equal(t, []ulid.ULID{a.ULID}, added)
	require.Empty(t, removed)

	// A new block appears on the next sync; one whose OnAdd fails is not served
	// and is tried again.
	bLabels := map[string]string{"tenant_id": "team-b"}
	b := uploadBlock(t, bkt, 2*hour, 4*hour, bLabels)
	c := uploadMeta(t, bkt, time.Now(), 5*hour, 6*hour)
	ev.mu.Lock()
	ev.failAdd[c.ULID] = true
	ev.mu.Unlock()
	require.NoError(t, s.Sync(ctx))
	require.ElementsMatch(t, []ulid.ULID{a.ULID, b.ULID}, ids(s.Metas()))
	added, _ = ev.get()
	require.Equal(t, []ulid.ULID{a.ULID, b.ULID}, added)

	ev.mu.Lock()
	ev.failAdd = nil
	ev.mu.Unlock()
	require.NoError(t, s.Sync(ctx))
	require.ElementsMatch(t, []ulid.ULID{a.ULID, b.ULID, c.ULID}, ids(s.Metas()))

	info = s.Info()
	require.Equal(t, int64(0), info.MinTime)
	require.Equal(t, 6*hour, info.MaxTime)
	require.Equal(t, []labels.Labels{labels.FromMap(testLabels), labels.FromMap(bLabels)}, info.LabelSets,
		"label sets must be distinct and sorted")

	// Deleting a block removes it.
	deleteBlock(t, bkt, a.ULID)
	require.NoError(t, s.Sync(ctx))
	require.ElementsMatch(t, []ulid.ULID{b.ULID, c.ULID}, ids(s.Metas()))
	added, removed = ev.get()
	require.Equal(t, []ulid.ULID{a.ULID}, removed)
	require.Len(t, added, 3, "unchanged blocks must not be added again")
	require.Equal(t, 2*hour, s.Info().MinTime)

	// Metas is a copy.
	m := s.Metas()
	clear(m)
	require.Len(t, s.Metas(), 2)
}

func TestSyncerRun(t *testing.T) {
	bkt := newBucket(t)
	ev := &events{}
	f := blocksync.NewFetcher(bkt, blocksync.FetcherConfig{}, nil, nil)
	s := blocksync.NewSyncer(f, blocksync.SyncerConfig{SyncInterval: 10 * time.Millisecond, OnAdd: ev.onAdd, OnRemove: ev.onRemove}, nil)

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()

	// Concurrent readers while Run syncs.
	var readers sync.WaitGroup
	for range 4 {
		readers.Go(func() {
			for ctx.Err() == nil {
				_ = s.Metas()
				_ = s.Info()
			}
		})
	}

	a := uploadBlock(t, bkt, 0, 2*hour, testLabels)
	require.Eventually(t, func() bool { _, ok := s.Metas()[a.ULID]; return ok }, 10*time.Second, 5*time.Millisecond)
	deleteBlock(t, bkt, a.ULID)
	require.Eventually(t, func() bool { return len(s.Metas()) == 0 }, 10*time.Second, 5*time.Millisecond)
	_, removed := ev.get()
	require.Equal(t, []ulid.ULID{a.ULID}, removed)

	cancel()
	readers.Wait()
	require.NoError(t, <-done)
}

func TestShardFilter(t *testing.T) {
	ctx := context.Background()
	bkt := newBucket(t)
	const n = 60
	all := make([]ulid.ULID, 0, n)
	for i := range n {
		all = append(all, uploadMeta(t, bkt, time.Now(), int64(i)*hour, int64(i+1)*hour).ULID)
	}

	for _, alg := range []hashring.Algorithm{hashring.AlgorithmKetama, hashring.AlgorithmHashmod} {
		t.Run(string(alg), func(t *testing.T) {
			var eps []hashring.Endpoint
			for i := range 3 {
				name := fmt.Sprintf("strata-store-%d:10901", i)
				eps = append(eps, hashring.Endpoint{Name: name, Address: name})
			}
			// RF 2: still exactly one gateway per block.
			ring, err := hashring.New(alg, eps, 2)
			require.NoError(t, err)

			owner := map[ulid.ULID]string{}
			for _, ep := range eps {
				sf, err := blocksync.NewShardFilter(ring, ep.Name)
				require.NoError(t, err)
				f := blocksync.NewFetcher(bkt, blocksync.FetcherConfig{Filters: []blocksync.Filter{sf}}, nil, nil)
				metas, _, err := f.Fetch(ctx)
				require.NoError(t, err)
				require.NotEmpty(t, metas, "gateway %s got no blocks", ep.Name)
				for id := range metas {
					prev, dup := owner[id]
					require.False(t, dup, "block %s served by %s and %s", id, prev, ep.Name)
					owner[id] = ep.Name
				}
			}
			require.ElementsMatch(t, all, ids(owner))
		})
	}

	ring, err := hashring.New(hashring.AlgorithmKetama, []hashring.Endpoint{{Name: "a"}}, 1)
	require.NoError(t, err)
	_, err = blocksync.NewShardFilter(ring, "b")
	require.Error(t, err)
}

func TestBlocksInfoEmpty(t *testing.T) {
	info := blocksync.BlocksInfo(nil)
	require.Equal(t, int64(math.MaxInt64), info.MinTime)
	require.Equal(t, int64(math.MinInt64), info.MaxTime)
	require.Empty(t, info.LabelSets)
}
