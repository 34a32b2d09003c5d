package compactor

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/oklog/ulid/v2"
	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/tsdb"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/stratametrics/strata/block"
	"github.com/stratametrics/strata/block/blocktest"
	"github.com/stratametrics/strata/objstore"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// base is a test time origin aligned to every planner range (14d), in 2025.
const base = int64(1450) * 336 * h

// step is the distance between generated samples.
const step = int64(60_000)

// data is the samples of a set of series, keyed by the series' label string.
type data map[string][]blocktest.Sample

// seriesKey returns the key of test series n in data.
func seriesKey(n int) string {
	return labels.FromStrings(model.MetricNameLabel, "test_metric", "series", fmt.Sprint(n)).String()
}

// generate returns nSeries series with a sample every step in [mint, maxt);
// value depends on the series and timestamp only, so replicas agree. skip, if
// not nil, leaves chosen samples out.
func generate(nSeries int, mint, maxt int64, skip func(series int, ts int64) bool) data {
	d := data{}
	for i := range nSeries {
		var ss []blocktest.Sample
		for ts := mint; ts < maxt; ts += step {
			if skip != nil && skip(i, ts) {
				continue
			}
			ss = append(ss, blocktest.Sample{T: ts, V: float64(ts/1000) + float64(i)/10})
		}
		d[seriesKey(i)] = ss
	}
	return d
}

// merge adds the samples of b to a.
func (d data) merge(b data) {
	for k, ss := range b {
		d[k] = append(d[k], ss...)
	}
}

// normalized sorts every series by timestamp.
func (d data) normalized() data {
	out := data{}
	for k, ss := range d {
		if len(ss) == 0 {
			continue
		}
		c := slices.Clone(ss)
		slices.SortStableFunc(c, func(a, b blocktest.Sample) int { return cmp.Compare(a.T, b.T) })
		out[k] = c
	}
	return out
}

// uploadBlock writes a real block holding d, with meta.json covering
// [mint, maxt) and external labels ext, and uploads it to bkt.
func uploadBlock(t testing.TB, bkt objstore.Bucket, ext map[string]string, mint, maxt int64, d data) *block.Meta {
	t.Helper()
	dir := t.TempDir()
	w, err := tsdb.NewBlockWriter(slog.New(slog.DiscardHandler), dir, max(maxt-mint, 2*h))
	require.NoError(t, err)
	app := w.Appender(context.Background())
	for _, k := range slices.Sorted(maps.Keys(d)) {
		lset, err := parseSeriesKey(k)
		require.NoError(t, err)
		for _, s := range d[k] {
			require.True(t, s.T >= mint && s.T < maxt, "sample outside the block")
			_, err := app.Append(0, lset, s.T, s.V)
			require.NoError(t, err)
		}
	}
	require.NoError(t, app.Commit())
	id, err := w.Flush(context.Background())
	require.NoError(t, err)
	require.NoError(t, w.Close())
	blockDir := filepath.Join(dir, id.String())
	m, err := block.ReadMetaFromDir(blockDir)
	require.NoError(t, err)
	m.MinTime, m.MaxTime = mint, maxt
	m.Thanos = block.ThanosMeta{Labels: ext, Source: block.SourceReceive}
	require.NoError(t, block.Upload(context.Background(), nil, bkt, blockDir, m))
	return m
}

// parseSeriesKey parses the keys seriesKey makes.
func parseSeriesKey(k string) (labels.Labels, error) {
	inner := strings.TrimSuffix(strings.TrimPrefix(k, "{"), "}")
	b := labels.NewScratchBuilder(2)
	for part := range strings.SplitSeq(inner, ", ") {
		name, val, ok := strings.Cut(part, "=")
		if !ok {
			return labels.EmptyLabels(), fmt.Errorf("bad series key %q", k)
		}
		b.Add(name, strings.Trim(val, `"`))
	}
	b.Sort()
	return b.Labels(), nil
}

func newBucket(t testing.TB) *objstore.Filesystem {
	t.Helper()
	bkt, err := objstore.NewFilesystem(t.TempDir())
	require.NoError(t, err)
	return bkt
}

// testConfig is a configuration for tests: no consistency delay, no
// downsampling, a fresh data directory.
func testConfig(t testing.TB) Config {
	return Config{
		DataDir:             filepath.Join(t.TempDir(), "compact"),
		DeleteDelay:         48 * time.Hour,
		PartialUploadAge:    48 * time.Hour,
		DisableDownsampling: true,
	}
}

func newCompactor(t testing.TB, bkt objstore.Bucket, cfg Config) *Compactor {
	t.Helper()
	c, err := New(bkt, cfg, nil, nil)
	require.NoError(t, err)
	return c
}

// bucketBlock is a block found in the bucket by a test.
type bucketBlock struct {
	meta         *block.Meta
	deletionMark bool
	noCompact    bool
}

// listBlocks returns every complete block of bkt.
func listBlocks(t testing.TB, bkt objstore.Bucket) []bucketBlock {
	t.Helper()
	ctx := context.Background()
	var out []bucketBlock
	require.NoError(t, bkt.Iter(ctx, "", func(name string) error {
		id, err := ulid.ParseStrict(strings.TrimSuffix(name, "/"))
		if err != nil {
			return nil
		}
		m, err := block.ReadMetaFromBucket(ctx, bkt, id)
		if errors.Is(err, objstore.ErrNotFound) {
			return nil
		}
		require.NoError(t, err)
		b := bucketBlock{meta: m}
		_, err = block.ReadDeletionMark(ctx, bkt, id)
		b.deletionMark = err == nil
		_, err = block.ReadNoCompactMark(ctx, bkt, id)
		b.noCompact = err == nil
		out = append(out, b)
		return nil
	}))
	slices.SortFunc(out, func(a, b bucketBlock) int {
		if a.meta.MinTime != b.meta.MinTime {
			return cmp.Compare(a.meta.MinTime, b.meta.MinTime)
		}
		return a.meta.ULID.Compare(b.meta.ULID)
	})
	return out
}

// live returns the blocks without a deletion mark whose labels include sel and
// whose resolution is res.
func live(blocks []bucketBlock, sel map[string]string, res int64) []*block.Meta {
	var out []*block.Meta
	for _, b := range blocks {
		if b.deletionMark || b.meta.Thanos.Downsample.Resolution != res {
			continue
		}
		match := true
		for k, v := range sel {
			if b.meta.Thanos.Labels[k] != v {
				match = false
			}
		}
		if match {
			out = append(out, b.meta)
		}
	}
	return out
}

// readAll downloads the given blocks and returns all their samples together,
// duplicates included.
func readAll(t testing.TB, bkt objstore.Bucket, metas []*block.Meta) data {
	t.Helper()
	dir := t.TempDir()
	all := data{}
	for _, m := range metas {
		require.NoError(t, block.Download(context.Background(), nil, bkt, m.ULID, dir))
		all.merge(blocktest.Samples(t, filepath.Join(dir, m.ULID.String())))
	}
	return all.normalized()
}

// ranges renders the time ranges of metas in hours since base.
func ranges(metas []*block.Meta) []string {
	var out []string
	for _, m := range sortedByMinTime(metas) {
		out = append(out, fmt.Sprintf("%d-%d", (m.MinTime-base)/h, (m.MaxTime-base)/h))
	}
	return out
}

// requireNoOverlap fails if any two of metas overlap in time.
func requireNoOverlap(t testing.TB, metas []*block.Meta) {
	t.Helper()
	s := sortedByMinTime(metas)
	for i := 1; i < len(s); i++ {
		require.LessOrEqual(t, s[i-1].MaxTime, s[i].MinTime, "blocks %s and %s overlap", s[i-1].ULID, s[i].ULID)
	}
}
