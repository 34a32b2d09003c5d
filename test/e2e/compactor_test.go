package e2e

import (
	"context"
	"fmt"
	"log/slog"
	"math"
	"math/rand/v2"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/oklog/ulid/v2"
	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql/parser"
	"github.com/prometheus/prometheus/tsdb"
	"github.com/stretchr/testify/require"

	"github.com/stratametrics/strata/block"
	"github.com/stratametrics/strata/block/blocktest"
	"github.com/stratametrics/strata/internal/miniotest"
	"github.com/stratametrics/strata/objstore"
)

const (
	hourMs = int64(time.Hour / time.Millisecond)
	dayMs  = 24 * hourMs
)

// genData describes generated series: a counter and a gauge per index, one
// sample per step, each at offset past a multiple of step.
type genData struct {
	series int
	step   int64
	offset int64
}

// counterValue is a counter that climbs by i+1 per step and resets to zero every
// 2,000 steps, so resets fall inside blocks and, now and then, on a boundary.
func (g genData) counterValue(i int, ts int64) float64 {
	return float64((ts/g.step)%2000) * float64(i+1)
}

// gaugeValue wanders up and down smoothly.
func (g genData) gaugeValue(i int, ts int64) float64 {
	return 100 + 50*math.Sin(float64(ts)/3.6e6+float64(i))
}

func (g genData) labels(metric string, i int) labels.Labels {
	return labels.FromStrings(model.MetricNameLabel, metric, "instance", fmt.Sprintf("host-%03d", i))
}

// samples returns every sample g generates in [mint, maxt), keyed by the series'
// labels plus ext in their string form.
func (g genData) samples(mint, maxt int64, ext map[string]string) map[string][]blocktest.Sample {
	out := map[string][]blocktest.Sample{}
	for i := range g.series {
		c, v := withExt(g.labels("gen_counter_total", i), ext), withExt(g.labels("gen_gauge", i), ext)
		for ts := g.first(mint); ts < maxt; ts += g.step {
			out[c] = append(out[c], blocktest.Sample{T: ts, V: g.counterValue(i, ts)})
			out[v] = append(out[v], blocktest.Sample{T: ts, V: g.gaugeValue(i, ts)})
		}
	}
	return out
}

func (g genData) first(mint int64) int64 {
	ts := mint - mint%g.step + g.offset
	if ts < mint {
		ts += g.step
	}
	return ts
}

func withExt(lset labels.Labels, ext map[string]string) string {
	b := labels.NewBuilder(lset)
	for k, v := range ext {
		b.Set(k, v)
	}
	return b.Labels().String()
}

// uploadGenBlocks writes the samples of g in [mint, maxt) as blocks of blockRange
// with external labels ext, as a receiver would ship them, and uploads them.
func uploadGenBlocks(t *testing.T, bkt objstore.Bucket, g genData, ext map[string]string, mint, maxt, blockRange int64) []ulid.ULID {
	t.Helper()
	ctx := context.Background()
	var ids []ulid.ULID
	for lo := mint; lo < maxt; lo += blockRange {
		hi := min(lo+blockRange, maxt)
		dir := t.TempDir()
		w, err := tsdb.NewBlockWriter(slog.New(slog.DiscardHandler), dir, blockRange)
		require.NoError(t, err)
		app := w.Appender(ctx)
		for i := range g.series {
			c, v := g.labels("gen_counter_total", i), g.labels("gen_gauge", i)
			for ts := g.first(lo); ts < hi; ts += g.step {
				_, err := app.Append(0, c, ts, g.counterValue(i, ts))
				require.NoError(t, err)
				_, err = app.Append(0, v, ts, g.gaugeValue(i, ts))
				require.NoError(t, err)
			}
		}
		require.NoError(t, app.Commit())
		id, err := w.Flush(ctx)
		require.NoError(t, err)
		require.NoError(t, w.Close())
		blockDir := filepath.Join(dir, id.String())
		m, err := block.ReadMetaFromDir(blockDir)
		require.NoError(t, err)
		// A receiver's block spans its whole range, whatever its samples' times.
		m.MinTime, m.MaxTime = lo, hi
		m.Thanos.Version = block.ThanosVersion1
		m.Thanos.Labels = ext
		m.Thanos.Source = block.SourceReceive
		require.NoError(t, m.WriteToDir(nil, blockDir))
		require.NoError(t, block.Upload(ctx, nil, bkt, blockDir, m))
		ids = append(ids, id)
	}
	return ids
}

// bucketBlocks returns the metas of the complete blocks in bkt.
func bucketBlocks(t *testing.T, bkt objstore.Bucket) []*block.Meta {
	t.Helper()
	ctx := context.Background()
	var metas []*block.Meta
	require.NoError(t, bkt.Iter(ctx, "", func(name string) error {
		id, err := ulid.ParseStrict(strings.TrimSuffix(name, "/"))
		if err != nil {
			return nil
		}
		m, err := block.ReadMetaFromBucket(ctx, bkt, id)
		if err != nil {
			return nil // a partial upload
		}
		metas = append(metas, m)
		return nil
	}))
	slices.SortFunc(metas, func(a, b *block.Meta) int { return int(a.MinTime - b.MinTime) })
	return metas
}

// rawSamplesOf downloads every raw block in metas and returns its samples keyed
// by series labels plus external labels. It fails if one series has a timestamp
// twice, in one block or across blocks.
func rawSamplesOf(t *testing.T, bkt objstore.Bucket, metas []*block.Meta) map[string][]blocktest.Sample {
	t.Helper()
	out := map[string][]blocktest.Sample{}
	for _, m := range metas {
		if m.Thanos.Downsample.Resolution != block.ResolutionRaw {
			continue
		}
		dir := t.TempDir()
		require.NoError(t, block.Download(context.Background(), nil, bkt, m.ULID, dir))
		for series, ss := range blocktest.Samples(t, filepath.Join(dir, m.ULID.String())) {
			lset, err := parser.NewParser(parser.Options{}).ParseMetric(series)
			require.NoError(t, err)
			key := withExt(lset, m.Thanos.Labels)
			out[key] = append(out[key], ss...)
		}
	}
	for key, ss := range out {
		slices.SortStableFunc(ss, func(a, b blocktest.Sample) int { return int(a.T - b.T) })
		for i := 1; i < len(ss); i++ {
			require.NotEqual(t, ss[i-1].T, ss[i].T, "series %s has the sample at %d twice", key, ss[i].T)
		}
	}
	return out
}

// requireNoOverlaps fails if two blocks of one compaction group overlap in time.
func requireNoOverlaps(t *testing.T, metas []*block.Meta) {
	t.Helper()
	last := map[string]*block.Meta{}
	for _, m := range metas { // sorted by MinTime
		k := m.GroupKey()
		if p, ok := last[k]; ok {
			require.LessOrEqual(t, p.MaxTime, m.MinTime, "blocks %s [%d,%d) and %s [%d,%d) of group %v overlap",
				p.ULID, p.MinTime, p.MaxTime, m.ULID, m.MinTime, m.MaxTime, m.Thanos.Labels)
		}
		if p, ok := last[k]; !ok || m.MaxTime > p.MaxTime {
			last[k] = m
		}
	}
}

func requireSameSamples(t *testing.T, want, got map[string][]blocktest.Sample) {
	t.Helper()
	require.Len(t, got, len(want), "series count")
	for key, ws := range want {
		gs, ok := got[key]
		require.True(t, ok, "series %s is missing", key)
		require.Len(t, gs, len(ws), "samples of %s", key)
		for i := range ws {
			if ws[i] != gs[i] {
				t.Fatalf("series %s: sample %d is %+v, want %+v", key, i, gs[i], ws[i])
			}
		}
	}
}

// runCompact runs one pass of `strata compact` and fails unless it succeeds.
func runCompact(t *testing.T, bucketYAML []byte, extra ...string) string {
	t.Helper()
	args := append([]string{"compact", "--objstore.config=" + string(bucketYAML), "--data-dir=" + t.TempDir(),
		"--http-address=" + freeAddr(t), "--consistency-delay=0s", "--delete-delay=0s"}, extra...)
	out, err := exec.Command(strataBin, args...).CombinedOutput()
	require.NoError(t, err, "strata compact: %s", tail(string(out), 40))
	return string(out)
}

// runBucketVerify runs `strata tools bucket verify` and fails unless the bucket is clean.
func runBucketVerify(t *testing.T, bucketYAML []byte, extra ...string) {
	t.Helper()
	args := append([]string{"tools", "bucket", "verify", "--objstore.config=" + string(bucketYAML)}, extra...)
	out, err := exec.Command(strataBin, args...).CombinedOutput()
	require.NoError(t, err, "strata tools bucket verify found issues:\n%s", tail(string(out), 40))
}

// TestCompactorDedupLevelsAndRetention generates four days of 2h blocks for two
// tenants, each shipped by three receive replicas, plus an out-of-order block
// that overlaps two others, into a real MinIO bucket. One pass of `strata
// compact` with replica dedup must leave every input sample exactly once per
// tenant, no overlapping blocks, the first two days as one 2d block with a 5m
// downsampled copy, and a bucket that `tools bucket verify` finds clean. Raw
// retention then removes the old raw blocks and keeps the downsampled ones.
func TestCompactorDedupLevelsAndRetention(t *testing.T) {
	minio := miniotest.Start(t)
	bucketYAML := minio.NewBucketYAML(t, "compactor")
	bkt, err := objstore.NewBucket(context.Background(), bucketYAML, nil, nil)
	require.NoError(t, err)

	g := genData{series: 10, step: 60_000, offset: 30_000}
	base := time.Now().Add(-10*24*time.Hour).UnixMilli() / (2 * dayMs) * (2 * dayMs)
	end := base + 4*dayMs
	want := map[string][]blocktest.Sample{}
	inputSamples := 0
	for _, tenant := range []string{"team-a", "team-b"} {
		for r := range 3 {
			ext := map[string]string{"tenant_id": tenant, "receive_replica": fmt.Sprint(r)}
			uploadGenBlocks(t, bkt, g, ext, base, end, 2*hourMs)
		}
		for k, v := range g.samples(base, end, map[string]string{"tenant_id": tenant}) {
			want[k] = v
			inputSamples += 3 * len(v)
		}
	}
	// Out-of-order data for team-a, replica 0: a block over [base+1h, base+5h)
	// that overlaps two 2h blocks, with samples between the regular ones.
	ooo := genData{series: g.series, step: g.step, offset: 15_000}
	uploadGenBlocks(t, bkt, ooo, map[string]string{"tenant_id": "team-a", "receive_replica": "0"}, base+hourMs, base+5*hourMs, 4*hourMs)
	for k, v := range ooo.samples(base+hourMs, base+5*hourMs, map[string]string{"tenant_id": "team-a"}) {
		merged := append(want[k], v...)
		slices.SortFunc(merged, func(a, b blocktest.Sample) int { return int(a.T - b.T) })
		want[k] = merged
	}
	inputBlocks := len(bucketBlocks(t, bkt))
	require.Equal(t, 2*3*48+1, inputBlocks)

	runCompact(t, bucketYAML, "--deduplication.replica-label=receive_replica")

	metas := bucketBlocks(t, bkt)
	requireNoOverlaps(t, metas)
	got := rawSamplesOf(t, bkt, metas)
	requireSameSamples(t, want, got)
	outSamples := 0
	for _, m := range metas {
		require.NotContains(t, m.Thanos.Labels, "receive_replica", "block %s keeps the replica label", m.ULID)
		if m.Thanos.Downsample.Resolution == block.ResolutionRaw {
			outSamples += int(m.Stats.NumSamples)
		}
	}
	t.Logf("%d input blocks with %d samples became %d blocks with %d raw samples", inputBlocks, inputSamples, len(metas), outSamples)

	// The first two days of each tenant are one 2d block of level 4 (2h → 8h →
	// 2d, with the replicas merged on the way) and have a 5m copy.
	for _, tenant := range []string{"team-a", "team-b"} {
		var raw2d, down5m *block.Meta
		for _, m := range metas {
			if m.Thanos.Labels["tenant_id"] != tenant || m.MinTime != base || m.MaxTime != base+2*dayMs {
				continue
			}
			switch m.Thanos.Downsample.Resolution {
			case block.ResolutionRaw:
				raw2d = m
			case block.Resolution5m:
				down5m = m
			}
		}
		require.NotNil(t, raw2d, "tenant %s has no raw 2d block over the first two days", tenant)
		require.GreaterOrEqual(t, raw2d.Compaction.Level, 3, "level of %s", raw2d.ULID)
		require.NotNil(t, down5m, "tenant %s has no 5m block over the first two days", tenant)
		require.Equal(t, raw2d.Compaction.Sources, down5m.Compaction.Sources)
	}
	runBucketVerify(t, bucketYAML)

	// Raw retention of one day marks and, with no delete delay, deletes every
	// raw block that ended more than a day ago; the 5m blocks stay.
	runCompact(t, bucketYAML, "--deduplication.replica-label=receive_replica", "--retention.resolution-raw=1d")
	after := bucketBlocks(t, bkt)
	var fiveMinute int
	for _, m := range after {
		require.NotEqual(t, block.ResolutionRaw, m.Thanos.Downsample.Resolution, "raw block %s outlived its retention", m.ULID)
		if m.Thanos.Downsample.Resolution == block.Resolution5m {
			fiveMinute++
		}
	}
	require.Equal(t, 2, fiveMinute)
	runBucketVerify(t, bucketYAML)
}

// TestCompactorSurvivesKills kills `strata compact --wait` with SIGKILL at
// random points of its work, several times, then lets a last pass finish. The
// bucket must end consistent: every input sample exactly once, no overlaps, no
// leftovers, and `tools bucket verify` clean.
func TestCompactorSurvivesKills(t *testing.T) {
	minio := miniotest.Start(t)
	bucketYAML := minio.NewBucketYAML(t, "compactor-kills")
	bkt, err := objstore.NewBucket(context.Background(), bucketYAML, nil, nil)
	require.NoError(t, err)

	g := genData{series: 10, step: 60_000, offset: 30_000}
	base := time.Now().Add(-12*24*time.Hour).UnixMilli() / (2 * dayMs) * (2 * dayMs)
	end := base + 6*dayMs
	want := g.samples(base, end, map[string]string{"tenant_id": "team-a"})
	for r := range 3 {
		uploadGenBlocks(t, bkt, g, map[string]string{"tenant_id": "team-a", "receive_replica": fmt.Sprint(r)}, base, end, 2*hourMs)
	}

	seed := time.Now().UnixNano()
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(uint64(seed), 0))
	dataDir := t.TempDir()
	prev, busy := len(bucketBlocks(t, bkt)), 0
	for i := range 10 {
		p := startProcess(t, fmt.Sprintf("strata compact #%d", i), strataBin, "compact", "--wait", "--wait-interval=1s",
			"--objstore.config="+string(bucketYAML), "--data-dir="+dataDir, "--http-address="+freeAddr(t),
			"--consistency-delay=0s", "--delete-delay=0s", "--compact.partial-upload-age=1s",
			"--deduplication.replica-label=receive_replica")
		time.Sleep(time.Duration(100+rng.IntN(1500)) * time.Millisecond)
		_ = p.stop(t, syscall.SIGKILL, 30*time.Second)
		n := len(bucketBlocks(t, bkt))
		if n != prev {
			busy++
		}
		prev = n
		t.Logf("killed after round %d: %d blocks in the bucket", i, n)
	}
	require.GreaterOrEqual(t, busy, 3, "too few kills landed while the compactor was changing the bucket")
	// Two clean passes: the first repairs and finishes, the second must find
	// nothing left to clean.
	runCompact(t, bucketYAML, "--deduplication.replica-label=receive_replica", "--compact.partial-upload-age=1s")
	runCompact(t, bucketYAML, "--deduplication.replica-label=receive_replica", "--compact.partial-upload-age=1s")

	metas := bucketBlocks(t, bkt)
	requireNoOverlaps(t, metas)
	requireSameSamples(t, want, rawSamplesOf(t, bkt, metas))
	var leftovers []string
	require.NoError(t, bkt.Iter(context.Background(), "", func(name string) error {
		id, err := ulid.ParseStrict(strings.TrimSuffix(name, "/"))
		if err != nil {
			return nil
		}
		if !slices.ContainsFunc(metas, func(m *block.Meta) bool { return m.ULID == id }) {
			leftovers = append(leftovers, name)
		}
		return nil
	}))
	require.Empty(t, leftovers, "directories without meta.json remain")
	for _, m := range metas {
		_, err := block.ReadDeletionMark(context.Background(), bkt, m.ULID)
		require.ErrorIs(t, err, objstore.ErrNotFound, "block %s is still marked for deletion", m.ULID)
	}
	runBucketVerify(t, bucketYAML)
}
