package tsdbshard

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/oklog/ulid/v2"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/prometheus/model/exemplar"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/tsdb/tsdbutil"
	"github.com/stretchr/testify/require"

	"github.com/stratametrics/strata/block"
	"github.com/stratametrics/strata/objstore"
)

var replicaLabels = labels.FromStrings("receive_replica", "r0")

// clock is a settable time source for the manager.
type clock struct{ ms atomic.Int64 }

func newClock(t time.Time) *clock { c := &clock{}; c.set(t); return c }
func (c *clock) set(t time.Time)  { c.ms.Store(t.UnixMilli()) }
func (c *clock) now() time.Time   { return time.UnixMilli(c.ms.Load()) }

func newTestManager(t *testing.T, dir string, bkt objstore.Bucket, mod func(*Options)) *Manager {
	t.Helper()
	opts := Options{Dir: dir, ExternalLabels: replicaLabels, Bucket: bkt, ShipInterval: time.Hour}
	if mod != nil {
		mod(&opts)
	}
	m, err := NewManager(opts, prometheus.NewRegistry(), nil)
	require.NoError(t, err)
	require.False(t, m.Ready())
	require.NoError(t, m.Open(context.Background()))
	require.True(t, m.Ready())
	return m
}

// appendSeries writes n samples, one minute apart from start, to series name of tenant.
func appendSeries(t *testing.T, m *Manager, tenant, name string, start time.Time, n int) {
	t.Helper()
	app, err := m.TenantAppender(context.Background(), tenant)
	require.NoError(t, err)
	ls := labels.FromStrings("__name__", name, "job", "test")
	for i := range n {
		ts := start.Add(time.Duration(i) * time.Minute).UnixMilli()
		_, err := app.Append(0, ls, 0, ts, float64(i), nil, nil, storage.AOptions{})
		require.NoError(t, err)
	}
	require.NoError(t, app.Commit())
}

// countSamples returns the number of float samples of series name in q.
func countSamples(t *testing.T, q storage.Querier, name string) int {
	t.Helper()
	defer func() { require.NoError(t, q.Close()) }()
	set := q.Select(context.Background(), false, nil, labels.MustNewMatcher(labels.MatchEqual, "__name__", name))
	n := 0
	for set.Next() {
		it := set.At().Iterator(nil)
		for it.Next() != 0 {
			n++
		}
		require.NoError(t, it.Err())
	}
	require.NoError(t, set.Err())
	return n
}

func tenantSamples(t *testing.T, m *Manager, tenant, name string) int {
	t.Helper()
	q, err := m.Querier(tenant, 0, 1<<62)
	require.NoError(t, err)
	return countSamples(t, q, name)
}

// crash closes every tenant's TSDB without flushing, as a killed process would leave it.
func crash(t *testing.T, m *Manager) {
	t.Helper()
	for _, tn := range m.tenants {
		require.NoError(t, tn.db.Close())
	}
}

// bucketBlocks returns the metas of the committed blocks in bkt.
func bucketBlocks(t *testing.T, bkt objstore.Bucket) []*block.Meta {
	t.Helper()
	var metas []*block.Meta
	require.NoError(t, bkt.Iter(context.Background(), "", func(name string) error {
		id, err := ulid.Parse(strings.TrimSuffix(name, "/"))
		if err != nil {
			return nil
		}
		meta, err := block.ReadMetaFromBucket(context.Background(), bkt, id)
		if errors.Is(err, objstore.ErrNotFound) {
			return nil
		}
		require.NoError(t, err)
		metas = append(metas, meta)
		return nil
	}))
	return metas
}

func localBlocks(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	var ids []string
	for _, e := range entries {
		if _, err := ulid.Parse(e.Name()); err == nil && e.IsDir() {
			ids = append(ids, e.Name())
		}
	}
	return ids
}

func TestManagerReplaysEveryTenantAfterCrash(t *testing.T) {
	dir := t.TempDir()
	m := newTestManager(t, dir, nil, nil)
	start := time.Now().Add(-time.Hour)
	tenants := []string{"a", "b", "c", "d", "e"}
	for i, tn := range tenants {
		appendSeries(t, m, tn, "up", start, 10+i)
	}
	crash(t, m)

	m2 := newTestManager(t, dir, nil, func(o *Options) { o.ReplayConcurrency = 2 })
	defer func() { require.NoError(t, m2.Close(context.Background())) }()
	require.ElementsMatch(t, tenants, m2.Tenants())
	for i, tn := range tenants {
		require.Equal(t, 10+i, tenantSamples(t, m2, tn, "up"), "tenant %s", tn)
	}
}

func TestManagerRejectsWritesUntilOpen(t *testing.T) {
	m, err := NewManager(Options{Dir: t.TempDir()}, nil, nil)
	require.NoError(t, err)
	_, err = m.TenantAppender(context.Background(), "a")
	require.ErrorIs(t, err, ErrNotReady)
	require.NoError(t, m.Open(context.Background()))
	app, err := m.TenantAppender(context.Background(), "a")
	require.NoError(t, err)
	require.NoError(t, app.Rollback())
	require.NoError(t, m.Close(context.Background()))
	_, err = m.TenantAppender(context.Background(), "a")
	require.ErrorIs(t, err, ErrNotReady)
}

func TestManagerRejectsUnsafeTenantNames(t *testing.T) {
	m := newTestManager(t, t.TempDir(), nil, nil)
	defer func() { require.NoError(t, m.Close(context.Background())) }()
	for _, name := range []string{"", ".", "..", "../x", "a/b", "/abs"} {
		_, err := m.TenantAppender(context.Background(), name)
		require.ErrorIs(t, err, ErrInvalidTenant, "tenant %q", name)
	}
}

func TestManagerConcurrentFirstWrites(t *testing.T) {
	m := newTestManager(t, t.TempDir(), nil, nil)
	defer func() { require.NoError(t, m.Close(context.Background())) }()
	start := time.Now().Add(-time.Hour)
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			app, err := m.TenantAppender(context.Background(), "shared")
			if err != nil {
				t.Error(err)
				return
			}
			ls := labels.FromStrings("__name__", "up", "worker", fmt.Sprint(i))
			if _, err := app.Append(0, ls, 0, start.UnixMilli(), 1, nil, nil, storage.AOptions{}); err != nil {
				t.Error(err)
			}
			if err := app.Commit(); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	require.Equal(t, []string{"shared"}, m.Tenants())
	require.Equal(t, 8, tenantSamples(t, m, "shared", "up"))
}

func TestManagerCloseFlushesAndShips(t *testing.T) {
	dir := t.TempDir()
	bkt, err := objstore.NewFilesystem(t.TempDir())
	require.NoError(t, err)
	m := newTestManager(t, dir, bkt, nil)

	// Five hours of data: the flush must cut block-aligned blocks, the last one
	// ending at the newest sample.
	start := time.Now().Add(-5 * time.Hour).Truncate(time.Minute)
	appendSeries(t, m, "team-a", "up", start, 300)
	appendSeries(t, m, "team-b", "up", start, 30)
	require.NoError(t, m.Close(context.Background()))

	metas := bucketBlocks(t, bkt)
	perTenant := map[string]uint64{}
	for _, meta := range metas {
		require.Equal(t, "r0", meta.Thanos.Labels["receive_replica"])
		require.Equal(t, block.SourceReceive, meta.Thanos.Source)
		tn := meta.Thanos.Labels["tenant_id"]
		perTenant[tn] += meta.Stats.NumSamples
		blockRange := DefaultBlockDuration.Milliseconds()
		require.Equal(t, floorTo(meta.MinTime, blockRange), floorTo(meta.MaxTime-1, blockRange),
			"block %s crosses a block boundary", meta.ULID)
	}
	require.Equal(t, map[string]uint64{"team-a": 300, "team-b": 30}, perTenant)
	require.GreaterOrEqual(t, len(metas), 4, "five hours of team-a data span at least three aligned blocks")

	// After a restart the data is served from the flushed blocks, and nothing is shipped twice.
	m2 := newTestManager(t, dir, bkt, nil)
	require.Equal(t, 300, tenantSamples(t, m2, "team-a", "up"))
	require.NoError(t, m2.Ship(context.Background()))
	require.Len(t, bucketBlocks(t, bkt), len(metas))

	// Samples right after the newest flushed one are still appendable.
	appendSeries(t, m2, "team-a", "up", start.Add(300*time.Minute), 1)
	require.NoError(t, m2.Close(context.Background()))
}

func TestManagerClosesIdleTenants(t *testing.T) {
	for _, withBucket := range []bool{true, false} {
		t.Run(fmt.Sprintf("bucket=%v", withBucket), func(t *testing.T) {
			dir := t.TempDir()
			var bkt objstore.Bucket
			if withBucket {
				fs, err := objstore.NewFilesystem(t.TempDir())
				require.NoError(t, err)
				bkt = fs
			}
			clk := newClock(time.Now())
			m := newTestManager(t, dir, bkt, func(o *Options) {
				o.IdleTenantTimeout = time.Hour
				o.Now = clk.now
			})
			defer func() { require.NoError(t, m.Close(context.Background())) }()
			start := time.Now().Add(-30 * time.Minute)
			appendSeries(t, m, "idle", "up", start, 20)
			appendSeries(t, m, "busy", "up", start, 20)
			idleSlot := cacheSlot(t, m, "idle")
			idleSlot.Store("the write path's cache of this open")
			require.Same(t, idleSlot, cacheSlot(t, m, "idle"), "one slot per open of a tenant")

			clk.set(clk.now().Add(50 * time.Minute))
			appendSeries(t, m, "busy", "up", start.Add(20*time.Minute), 1)
			require.NoError(t, m.CloseIdle(context.Background()))
			require.ElementsMatch(t, []string{"idle", "busy"}, m.Tenants(), "nobody is idle for an hour yet")

			clk.set(clk.now().Add(20 * time.Minute))
			require.NoError(t, m.CloseIdle(context.Background()))
			require.Equal(t, []string{"busy"}, m.Tenants())

			if withBucket {
				require.NoDirExists(t, filepath.Join(dir, "idle"), "a shipped idle tenant is removed locally")
				var n uint64
				for _, meta := range bucketBlocks(t, bkt) {
					require.Equal(t, "idle", meta.Thanos.Labels["tenant_id"])
					n += meta.Stats.NumSamples
				}
				require.Equal(t, uint64(20), n)
			} else {
				require.NotEmpty(t, localBlocks(t, filepath.Join(dir, "idle")), "without a bucket the flushed blocks stay")
			}

			// A new write opens the tenant again, with an empty series cache slot:
			// series references of the old open mean nothing to the new one.
			appendSeries(t, m, "idle", "other", time.Now(), 1)
			require.Nil(t, cacheSlot(t, m, "idle").Load())
			require.ElementsMatch(t, []string{"idle", "busy"}, m.Tenants())
			require.Equal(t, 1, tenantSamples(t, m, "idle", "other"))
			if !withBucket {
				require.Equal(t, 20, tenantSamples(t, m, "idle", "up"), "the blocks kept on disk are served again")
			}
		})
	}
}

// failingBucket is a real bucket whose uploads fail while broken is set.
type failingBucket struct {
	objstore.Bucket
	broken atomic.Bool
}

func (b *failingBucket) Upload(ctx context.Context, name string, r io.Reader) error {
	if b.broken.Load() {
		return errors.New("injected upload failure")
	}
	return b.Bucket.Upload(ctx, name, r)
}

func TestManagerRetentionDeletesOnlyShippedBlocks(t *testing.T) {
	dir := t.TempDir()
	fs, err := objstore.NewFilesystem(t.TempDir())
	require.NoError(t, err)
	bkt := &failingBucket{Bucket: fs}
	bkt.broken.Store(true)

	// Old data, flushed into blocks that cannot be shipped.
	m := newTestManager(t, dir, bkt, nil)
	appendSeries(t, m, "a", "up", time.Now().Add(-10*time.Hour), 60)
	require.Error(t, m.Close(context.Background()), "shipping fails on close")
	blocks := localBlocks(t, filepath.Join(dir, "a"))
	require.NotEmpty(t, blocks)

	m2 := newTestManager(t, dir, bkt, func(o *Options) {
		o.Retention = time.Hour
		o.BlockReloadInterval = time.Second
	})
	defer func() { require.NoError(t, m2.Close(context.Background())) }()
	require.Error(t, m2.Ship(context.Background()))
	waitReloads(t, m2, "a", 2)
	require.ElementsMatch(t, blocks, localBlocks(t, filepath.Join(dir, "a")), "unshipped blocks must survive retention")

	bkt.broken.Store(false)
	require.NoError(t, m2.Ship(context.Background()))
	require.Len(t, bucketBlocks(t, bkt), len(blocks))
	require.Eventually(t, func() bool {
		return len(localBlocks(t, filepath.Join(dir, "a"))) == 0
	}, 30*time.Second, 100*time.Millisecond, "shipped blocks past retention are deleted")
}

// waitReloads waits until tenant's TSDB has reloaded its blocks n more times.
func waitReloads(t *testing.T, m *Manager, tenant string, n int) {
	t.Helper()
	start := time.Now()
	// Reloads are not observable from outside the TSDB; BlockReloadInterval is one
	// second, so wait out n intervals plus slack, polling the tenant stays open.
	require.Eventually(t, func() bool {
		return time.Since(start) > time.Duration(n)*time.Second+500*time.Millisecond
	}, 30*time.Second, 50*time.Millisecond)
	require.Contains(t, m.Tenants(), tenant)
}

func TestManagerOutOfOrderWindow(t *testing.T) {
	m := newTestManager(t, t.TempDir(), nil, func(o *Options) { o.OutOfOrderTimeWindow = 30 * time.Minute })
	defer func() { require.NoError(t, m.Close(context.Background())) }()
	now := time.Now()
	appendSeries(t, m, "a", "up", now, 1)

	app, err := m.TenantAppender(context.Background(), "a")
	require.NoError(t, err)
	ls := labels.FromStrings("__name__", "up", "job", "test")
	_, err = app.Append(0, ls, 0, now.Add(-10*time.Minute).UnixMilli(), 1, nil, nil, storage.AOptions{})
	require.NoError(t, err, "inside the window")
	_, err = app.Append(0, ls, 0, now.Add(-2*time.Hour).UnixMilli(), 1, nil, nil, storage.AOptions{})
	require.ErrorIs(t, err, storage.ErrTooOldSample, "outside the window")
	require.NoError(t, app.Commit())
	require.Equal(t, 2, tenantSamples(t, m, "a", "up"))
}

func TestManagerStoresHistogramsAndExemplars(t *testing.T) {
	m := newTestManager(t, t.TempDir(), nil, func(o *Options) { o.MaxExemplars = 100 })
	defer func() { require.NoError(t, m.Close(context.Background())) }()
	ts := time.Now().UnixMilli()

	app, err := m.TenantAppender(context.Background(), "a")
	require.NoError(t, err)
	h := tsdbutil.GenerateTestHistogram(3)
	_, err = app.Append(0, labels.FromStrings("__name__", "latency"), 0, ts, 0, h, nil, storage.AOptions{})
	require.NoError(t, err)
	ex := exemplar.Exemplar{Labels: labels.FromStrings("trace_id", "abc"), Value: 1.5, Ts: ts, HasTs: true}
	_, err = app.Append(0, labels.FromStrings("__name__", "requests_total"), 0, ts, 7, nil, nil,
		storage.AOptions{Exemplars: []exemplar.Exemplar{ex}})
	require.NoError(t, err)
	require.NoError(t, app.Commit())

	q, err := m.Querier("a", 0, 1<<62)
	require.NoError(t, err)
	set := q.Select(context.Background(), false, nil, labels.MustNewMatcher(labels.MatchEqual, "__name__", "latency"))
	require.True(t, set.Next())
	it := set.At().Iterator(nil)
	require.NotZero(t, it.Next())
	_, got := it.AtHistogram(nil)
	require.Equal(t, h.Count, got.Count)
	require.NoError(t, q.Close())

	m.mtx.RLock()
	db := m.tenants["a"].db
	m.mtx.RUnlock()
	eq, err := db.ExemplarQuerier(context.Background())
	require.NoError(t, err)
	res, err := eq.Select(0, 1<<62, []*labels.Matcher{labels.MustNewMatcher(labels.MatchEqual, "__name__", "requests_total")})
	require.NoError(t, err)
	require.Len(t, res, 1)
	require.Equal(t, []exemplar.Exemplar{ex}, res[0].Exemplars)
}

func TestManagerUnregistersTenantMetricsOnClose(t *testing.T) {
	reg := prometheus.NewRegistry()
	clk := newClock(time.Now())
	m, err := NewManager(Options{Dir: t.TempDir(), IdleTenantTimeout: time.Minute, Now: clk.now}, reg, nil)
	require.NoError(t, err)
	require.NoError(t, m.Open(context.Background()))
	defer func() { require.NoError(t, m.Close(context.Background())) }()

	appendSeries(t, m, "a", "up", time.Now(), 1)
	require.True(t, hasTenantMetric(t, reg, "a"))
	clk.set(clk.now().Add(time.Hour))
	require.NoError(t, m.CloseIdle(context.Background()))
	require.False(t, hasTenantMetric(t, reg, "a"))

	// Opening it again registers afresh instead of panicking on duplicates.
	appendSeries(t, m, "a", "up", time.Now().Add(time.Minute), 1)
	require.True(t, hasTenantMetric(t, reg, "a"))
}

func hasTenantMetric(t *testing.T, reg *prometheus.Registry, tenant string) bool {
	t.Helper()
	mfs, err := reg.Gather()
	require.NoError(t, err)
	for _, mf := range mfs {
		for _, metric := range mf.GetMetric() {
			for _, l := range metric.GetLabel() {
				if l.GetName() == "tenant" && l.GetValue() == tenant {
					return true
				}
			}
		}
	}
	return false
}

func TestManagerClosingTenantRejectsWrites(t *testing.T) {
	m := newTestManager(t, t.TempDir(), nil, nil)
	appendSeries(t, m, "a", "up", time.Now(), 1)
	m.mtx.Lock()
	tn := m.tenants["a"]
	tn.state = tenantClosing
	m.mtx.Unlock()
	_, err := m.TenantAppender(context.Background(), "a")
	require.ErrorIs(t, err, ErrNotReady)
	require.NoError(t, m.closeTenant(context.Background(), tn, "test", false))
	require.NoError(t, m.Close(context.Background()))
}

func TestFloorTo(t *testing.T) {
	for _, tc := range []struct{ t, step, want int64 }{
		{0, 10, 0}, {9, 10, 0}, {10, 10, 10}, {-1, 10, -10}, {-10, 10, -10}, {-11, 10, -20},
	} {
		require.Equal(t, tc.want, floorTo(tc.t, tc.step), "floorTo(%d, %d)", tc.t, tc.step)
	}
}

// cacheSlot returns the series cache slot of tenant's current open.
func cacheSlot(t *testing.T, m *Manager, tenant string) *atomic.Value {
	t.Helper()
	app, err := m.TenantAppender(context.Background(), tenant)
	require.NoError(t, err)
	defer func() { require.NoError(t, app.Rollback()) }()
	h, ok := app.(interface{ SeriesCacheSlot() *atomic.Value })
	require.True(t, ok, "tsdbshard appenders hold the write path's series cache")
	return h.SeriesCacheSlot()
}
