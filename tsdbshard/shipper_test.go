package tsdbshard_test

import (
	"context"
	"encoding/json"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/common/model"

	"github.com/oklog/ulid/v2"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/tsdb"
	"github.com/stretchr/testify/require"

	"github.com/stratametrics/strata/block"
	"github.com/stratametrics/strata/block/blocktest"
	"github.com/stratametrics/strata/objstore"
	"github.com/stratametrics/strata/tsdbshard"
)

const hour = int64(time.Hour / time.Millisecond)

var shipperLabels = labels.FromStrings("tenant_id", "team-a", "receive_replica", "r0")

// shipperEnv is one tenant directory and a real filesystem bucket, seen through a
// recording wrapper.
type shipperEnv struct {
	dir string
	fs  *objstore.Filesystem
	bkt *blocktest.RecordingBucket
	// reg holds metrics, shared by every Shipper of the environment as a Manager
	// shares them between tenants and across their restarts.
	reg     *prometheus.Registry
	metrics *tsdbshard.ShipperMetrics
}

func newShipperEnv(t *testing.T) *shipperEnv {
	t.Helper()
	fs, err := objstore.NewFilesystem(t.TempDir())
	require.NoError(t, err)
	reg := prometheus.NewRegistry()
	return &shipperEnv{
		dir:     filepath.Join(t.TempDir(), "team-a"),
		fs:      fs,
		bkt:     blocktest.NewRecordingBucket(fs),
		reg:     reg,
		metrics: tsdbshard.NewShipperMetrics(reg),
	}
}

// shipper returns a new Shipper over the environment, as a receiver (re)start does.
func (e *shipperEnv) shipper(t *testing.T) *tsdbshard.Shipper {
	t.Helper()
	return e.shipperWithLabels(t, func() labels.Labels { return shipperLabels })
}

func (e *shipperEnv) shipperWithLabels(t *testing.T, lbls func() labels.Labels) *tsdbshard.Shipper {
	t.Helper()
	return tsdbshard.NewShipper(nil, e.metrics, e.bkt, e.dir, lbls, block.SourceReceive)
}

// block writes a real block covering [mint, maxt) into the tenant directory.
func (e *shipperEnv) block(t *testing.T, mint, maxt int64) ulid.ULID {
	t.Helper()
	require.NoError(t, os.MkdirAll(e.dir, 0o755))
	return blocktest.Create(t, e.dir, mint, maxt, 2)
}

// metaUploads returns the blocks whose meta.json upload was attempted, in order.
func (e *shipperEnv) metaUploads() []string {
	var ids []string
	for _, name := range e.bkt.Uploads() {
		if path.Base(name) == block.MetaFilename {
			ids = append(ids, path.Dir(name))
		}
	}
	return ids
}

func (e *shipperEnv) state(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(e.dir, tsdbshard.ShipperStateFilename))
	require.NoError(t, err)
	return string(b)
}

// stateJSON is the expected content of the state file: ULIDs sorted.
func stateJSON(ids ...ulid.ULID) string {
	ids = slices.SortedFunc(slices.Values(ids), ulid.ULID.Compare)
	b, err := json.Marshal(map[string]any{"version": 1, "shipped": ids})
	if err != nil {
		panic(err)
	}
	return string(b)
}

func strs(ids ...ulid.ULID) []string {
	out := make([]string, 0, len(ids))
	for _, id := range ids {
		out = append(out, id.String())
	}
	return out
}

func counterValue(t *testing.T, g prometheus.Gatherer, name string) float64 {
	t.Helper()
	mfs, err := g.Gather()
	require.NoError(t, err)
	for _, mf := range mfs {
		if mf.GetName() == name {
			m := mf.GetMetric()[0]
			if m.GetCounter() != nil {
				return m.GetCounter().GetValue()
			}
			return m.GetGauge().GetValue()
		}
	}
	t.Fatalf("metric %s not found", name)
	return 0
}

func TestShipperUploadsNewBlocks(t *testing.T) {
	ctx := context.Background()
	env := newShipperEnv(t)
	// Created out of time order, so that ULID order differs from minTime order.
	b3 := env.block(t, 4*hour, 6*hour)
	b1 := env.block(t, 0, 2*hour)
	b2 := env.block(t, 2*hour, 4*hour)

	// Things in a TSDB directory that are not blocks to ship.
	for _, d := range []string{"wal", "chunks_head", "wbl", ulid.Make().String() + ".tmp-for-creation", ulid.Make().String() + ".tmp-for-deletion"} {
		require.NoError(t, os.MkdirAll(filepath.Join(env.dir, d), 0o755))
	}
	// A temporary block directory holding a complete block is still not shipped.
	tmpBlock := filepath.Join(env.dir, b1.String()+".tmp-for-creation")
	require.NoError(t, os.CopyFS(tmpBlock, os.DirFS(filepath.Join(env.dir, b1.String()))))
	// A block directory without meta.json is not finished.
	unfinished := ulid.Make()
	require.NoError(t, os.MkdirAll(filepath.Join(env.dir, unfinished.String(), block.ChunksDirname), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(env.dir, unfinished.String(), block.IndexFilename), []byte("x"), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(env.dir, "lock"), nil, 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(env.dir, ulid.Make().String()), nil, 0o644))

	s := env.shipper(t)
	for _, id := range []ulid.ULID{b1, b2, b3} {
		require.False(t, s.Shipped(id))
	}
	n, err := s.Sync(ctx)
	require.NoError(t, err)
	require.Equal(t, 3, n)
	require.Equal(t, strs(b1, b2, b3), env.metaUploads(), "oldest block first")
	for _, name := range env.bkt.Uploads() {
		require.NotContains(t, name, unfinished.String())
		require.NotContains(t, name, ".tmp-for-")
	}

	for _, id := range []ulid.ULID{b1, b2, b3} {
		require.True(t, s.Shipped(id))
		local, err := block.ReadMetaFromDir(filepath.Join(env.dir, id.String()))
		require.NoError(t, err)
		got, err := block.ReadMetaFromBucket(ctx, env.fs, id)
		require.NoError(t, err)
		require.Equal(t, local.BlockMeta, got.BlockMeta)
		require.Equal(t, map[string]string{"tenant_id": "team-a", "receive_replica": "r0"}, got.Thanos.Labels)
		require.Equal(t, block.SourceReceive, got.Thanos.Source)
		require.Equal(t, block.ThanosVersion1, got.Thanos.Version)
		require.Equal(t, int64(0), got.Thanos.Downsample.Resolution)
		require.NotEmpty(t, got.Thanos.Files)
		require.False(t, got.Thanos.UploadTime.IsZero())
	}
	require.False(t, s.Shipped(unfinished))
	require.JSONEq(t, stateJSON(b1, b2, b3), env.state(t))

	require.Equal(t, 3.0, counterValue(t, env.reg, "strata_shipper_uploads_total"))
	require.Equal(t, 0.0, counterValue(t, env.reg, "strata_shipper_upload_failures_total"))
	require.Positive(t, counterValue(t, env.reg, "strata_shipper_uploaded_bytes_total"))
	require.Positive(t, counterValue(t, env.reg, "strata_shipper_last_successful_upload_timestamp_seconds"))

	// A second Sync has nothing to do.
	env.bkt.Reset()
	n, err = s.Sync(ctx)
	require.NoError(t, err)
	require.Zero(t, n)
	require.Empty(t, env.bkt.Uploads())

	// A new block is picked up by the next Sync, alone.
	b4 := env.block(t, 6*hour, 8*hour)
	n, err = s.Sync(ctx)
	require.NoError(t, err)
	require.Equal(t, 1, n)
	require.Equal(t, strs(b4), env.metaUploads())
	require.JSONEq(t, stateJSON(b1, b2, b3, b4), env.state(t))
}

func TestShipperRestart(t *testing.T) {
	for _, tc := range []struct {
		name string
		// damage changes the state file between the two shippers.
		damage func(t *testing.T, stateFile string)
		// knownBeforeSync is whether the restarted shipper knows the old blocks
		// before its first Sync.
		knownBeforeSync bool
	}{
		{name: "state file kept", damage: func(*testing.T, string) {}, knownBeforeSync: true},
		{name: "state file deleted", damage: func(t *testing.T, p string) { require.NoError(t, os.Remove(p)) }},
		{name: "state file corrupt", damage: func(t *testing.T, p string) {
			require.NoError(t, os.WriteFile(p, []byte(`{"version":1,"shipped":["nope`), 0o644))
		}},
		{name: "state file of unknown version", damage: func(t *testing.T, p string) {
			require.NoError(t, os.WriteFile(p, []byte(`{"version":2,"shipped":[]}`), 0o644))
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			env := newShipperEnv(t)
			b1 := env.block(t, 0, 2*hour)
			b2 := env.block(t, 2*hour, 4*hour)
			n, err := env.shipper(t).Sync(ctx)
			require.NoError(t, err)
			require.Equal(t, 2, n)

			tc.damage(t, filepath.Join(env.dir, tsdbshard.ShipperStateFilename))
			env.bkt.Reset()
			s := env.shipper(t)
			require.Equal(t, tc.knownBeforeSync, s.Shipped(b1))
			require.Equal(t, tc.knownBeforeSync, s.Shipped(b2))

			n, err = s.Sync(ctx)
			require.NoError(t, err)
			require.Zero(t, n)
			require.Empty(t, env.bkt.Uploads(), "nothing is uploaded again")
			require.True(t, s.Shipped(b1))
			require.True(t, s.Shipped(b2))
			require.JSONEq(t, stateJSON(b1, b2), env.state(t))

			b3 := env.block(t, 4*hour, 6*hour)
			n, err = s.Sync(ctx)
			require.NoError(t, err)
			require.Equal(t, 1, n)
			require.Equal(t, strs(b3), env.metaUploads())
		})
	}
}

func TestShipperStopsAtFirstFailure(t *testing.T) {
	ctx := context.Background()
	env := newShipperEnv(t)
	b1 := env.block(t, 0, 2*hour)
	b2 := env.block(t, 2*hour, 4*hour)
	b3 := env.block(t, 4*hour, 6*hour)
	s := env.shipper(t)

	env.bkt.FailUploadsOf(func(name string) bool { return strings.HasPrefix(name, b2.String()+"/") })
	n, err := s.Sync(ctx)
	require.ErrorIs(t, err, blocktest.ErrInjected)
	require.ErrorContains(t, err, b2.String())
	require.Equal(t, 1, n)
	require.True(t, s.Shipped(b1))
	require.False(t, s.Shipped(b2))
	require.False(t, s.Shipped(b3), "a newer block is not shipped before an older one")
	require.Equal(t, strs(b1), env.metaUploads())
	for _, id := range []ulid.ULID{b2, b3} {
		ok, err := env.fs.Exists(ctx, path.Join(id.String(), block.MetaFilename))
		require.NoError(t, err)
		require.False(t, ok)
	}
	require.JSONEq(t, stateJSON(b1), env.state(t))
	require.Equal(t, 1.0, counterValue(t, env.reg, "strata_shipper_upload_failures_total"))

	env.bkt.FailUploads(nil)
	env.bkt.Reset()
	n, err = s.Sync(ctx)
	require.NoError(t, err)
	require.Equal(t, 2, n)
	require.Equal(t, strs(b2, b3), env.metaUploads())
	require.JSONEq(t, stateJSON(b1, b2, b3), env.state(t))
	require.Equal(t, 3.0, counterValue(t, env.reg, "strata_shipper_uploads_total"))
}

func TestShipperCompletesPartialUpload(t *testing.T) {
	ctx := context.Background()
	env := newShipperEnv(t)
	id := env.block(t, 0, 2*hour)

	// The receiver dies after uploading chunks and index, before meta.json.
	env.bkt.FailUploadsOf(func(name string) bool { return path.Base(name) == block.MetaFilename })
	n, err := env.shipper(t).Sync(ctx)
	require.ErrorIs(t, err, blocktest.ErrInjected)
	require.Zero(t, n)
	ok, err := env.fs.Exists(ctx, path.Join(id.String(), block.IndexFilename))
	require.NoError(t, err)
	require.True(t, ok, "the partial upload is in the bucket")

	env.bkt.FailUploads(nil)
	env.bkt.Reset()
	s := env.shipper(t)
	require.False(t, s.Shipped(id))
	n, err = s.Sync(ctx)
	require.NoError(t, err)
	require.Equal(t, 1, n)
	require.Equal(t, []string{
		id.String() + "/chunks/000001",
		id.String() + "/index",
		id.String() + "/meta.json",
	}, env.bkt.Uploads(), "the whole block is uploaded again")

	dst := t.TempDir()
	require.NoError(t, block.Download(ctx, nil, env.fs, id, dst))
	require.Equal(t, blocktest.Samples(t, filepath.Join(env.dir, id.String())), blocktest.Samples(t, filepath.Join(dst, id.String())))
}

func TestShipperSkipsBlocks(t *testing.T) {
	ctx := context.Background()
	env := newShipperEnv(t)
	b1 := env.block(t, 0, 2*hour)
	empty := env.block(t, 2*hour, 4*hour)
	compacted := env.block(t, 4*hour, 6*hour)
	b4 := env.block(t, 6*hour, 8*hour)
	rewriteMeta(t, filepath.Join(env.dir, empty.String()), func(m *block.Meta) { m.Stats.NumSamples = 0 })
	rewriteMeta(t, filepath.Join(env.dir, compacted.String()), func(m *block.Meta) { m.Compaction.Level = 2 })

	s := env.shipper(t)
	for range 2 {
		env.bkt.Reset()
		n, err := s.Sync(ctx)
		require.NoError(t, err)
		if n == 0 {
			require.Empty(t, env.bkt.Uploads(), "the second Sync has nothing to do")
			continue
		}
		require.Equal(t, 2, n)
		require.Equal(t, strs(b1, b4), env.metaUploads())
	}
	require.True(t, s.Shipped(b1))
	require.True(t, s.Shipped(empty), "an empty block needs no shipping")
	require.False(t, s.Shipped(compacted), "a compacted block is never shipped")
	require.True(t, s.Shipped(b4))
	require.JSONEq(t, stateJSON(b1, empty, b4), env.state(t))
}

func rewriteMeta(t *testing.T, dir string, mutate func(*block.Meta)) {
	t.Helper()
	m, err := block.ReadMetaFromDir(dir)
	require.NoError(t, err)
	mutate(m)
	require.NoError(t, m.WriteToDir(nil, dir))
}

func TestShipperPrunesDeletedBlocks(t *testing.T) {
	ctx := context.Background()
	env := newShipperEnv(t)
	b1 := env.block(t, 0, 2*hour)
	b2 := env.block(t, 2*hour, 4*hour)
	s := env.shipper(t)
	_, err := s.Sync(ctx)
	require.NoError(t, err)
	require.JSONEq(t, stateJSON(b1, b2), env.state(t))

	// Retention removed the oldest block.
	require.NoError(t, os.RemoveAll(filepath.Join(env.dir, b1.String())))
	n, err := s.Sync(ctx)
	require.NoError(t, err)
	require.Zero(t, n)
	require.JSONEq(t, stateJSON(b2), env.state(t))
	require.False(t, s.Shipped(b1))
	require.True(t, s.Shipped(b2))
}

func TestShipperRefusesEmptyLabels(t *testing.T) {
	ctx := context.Background()
	env := newShipperEnv(t)
	id := env.block(t, 0, 2*hour)
	s := env.shipperWithLabels(t, labels.EmptyLabels)

	n, err := s.Sync(ctx)
	require.ErrorIs(t, err, block.ErrNoExternalLabels)
	require.Zero(t, n)
	require.Empty(t, env.bkt.Uploads())
	require.False(t, s.Shipped(id))
	require.Equal(t, 1.0, counterValue(t, env.reg, "strata_shipper_upload_failures_total"))
}

func TestShipperEdgeCases(t *testing.T) {
	t.Run("directory does not exist yet", func(t *testing.T) {
		env := newShipperEnv(t)
		s := env.shipper(t)
		n, err := s.Sync(context.Background())
		require.NoError(t, err)
		require.Zero(t, n)
		_, err = os.Stat(env.dir)
		require.ErrorIs(t, err, os.ErrNotExist, "Sync does not create the tenant directory")
	})
	t.Run("canceled context", func(t *testing.T) {
		env := newShipperEnv(t)
		id := env.block(t, 0, 2*hour)
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		s := env.shipper(t)
		n, err := s.Sync(ctx)
		require.ErrorIs(t, err, context.Canceled)
		require.Zero(t, n)
		require.False(t, s.Shipped(id))
	})
	t.Run("corrupt local meta", func(t *testing.T) {
		env := newShipperEnv(t)
		id := env.block(t, 0, 2*hour)
		require.NoError(t, os.WriteFile(filepath.Join(env.dir, id.String(), block.MetaFilename), []byte("{"), 0o644))
		n, err := env.shipper(t).Sync(context.Background())
		require.ErrorIs(t, err, block.ErrInvalidMeta)
		require.Zero(t, n)
	})
	t.Run("nil labels function", func(t *testing.T) {
		env := newShipperEnv(t)
		env.block(t, 0, 2*hour)
		_, err := env.shipperWithLabels(t, nil).Sync(context.Background())
		require.ErrorIs(t, err, block.ErrNoExternalLabels)
	})
}

func TestShipperShippedDuringSync(t *testing.T) {
	// Shipped is read by TSDB retention while Sync runs; the race detector checks it.
	env := newShipperEnv(t)
	var ids []ulid.ULID
	for i := range int64(4) {
		ids = append(ids, env.block(t, i*2*hour, (i+1)*2*hour))
	}
	s := env.shipper(t)

	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-done:
				return
			default:
				for _, id := range ids {
					s.Shipped(id)
				}
			}
		}
	}()
	n, err := s.Sync(context.Background())
	close(done)
	wg.Wait()
	require.NoError(t, err)
	require.Equal(t, 4, n)
}

func TestShipperWithTSDB(t *testing.T) {
	// Blocks cut by a real, open TSDB, next to its WAL, head chunks and lock file.
	ctx := context.Background()
	env := newShipperEnv(t)
	opts := tsdb.DefaultOptions()
	opts.MinBlockDuration, opts.MaxBlockDuration = 2*hour, 2*hour
	db, err := tsdb.Open(env.dir, nil, nil, opts, nil)
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, db.Close()) })
	// Blocks are cut below by an explicit Compact, not by the background loop.
	db.DisableCompactions()

	app := db.Appender(ctx)
	for ts := int64(0); ts < 7*hour; ts += blocktest.Step {
		_, err := app.Append(0, labels.FromStrings(model.MetricNameLabel, "up", "job", "a"), ts, 1)
		require.NoError(t, err)
	}
	require.NoError(t, app.Commit())
	require.NoError(t, db.Compact(ctx))
	blocks := db.Blocks()
	require.Len(t, blocks, 2, "the head keeps the last 3h")

	s := env.shipper(t)
	n, err := s.Sync(ctx)
	require.NoError(t, err)
	require.Equal(t, len(blocks), n)
	for _, b := range blocks {
		require.True(t, s.Shipped(b.Meta().ULID))
		dst := t.TempDir()
		require.NoError(t, block.Download(ctx, nil, env.fs, b.Meta().ULID, dst))
		require.Equal(t, blocktest.Samples(t, b.Dir()), blocktest.Samples(t, filepath.Join(dst, b.Meta().ULID.String())))
	}
}
