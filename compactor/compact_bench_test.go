package compactor

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/stratametrics/strata/block"
	"github.com/stratametrics/strata/block/blocktest"
)

// BenchmarkCompact measures one compaction of four 2h blocks of 10k series
// (a sample every 15s) from a filesystem bucket: download, index verification,
// compaction, verification and upload of the result, and the deletion marks.
func BenchmarkCompact(b *testing.B) {
	const numSeries = 10_000
	ctx := context.Background()
	bkt := newBucket(b)
	var metas []*block.Meta
	var samples uint64
	for w := range int64(4) {
		dir := b.TempDir()
		id := blocktest.Create(b, dir, base+w*2*h, base+(w+1)*2*h, numSeries)
		m, err := block.ReadMetaFromDir(filepath.Join(dir, id.String()))
		require.NoError(b, err)
		m.MinTime, m.MaxTime = base+w*2*h, base+(w+1)*2*h
		m.Thanos = block.ThanosMeta{Labels: map[string]string{"tenant_id": "bench"}, Source: block.SourceReceive}
		require.NoError(b, block.Upload(ctx, nil, bkt, filepath.Join(dir, id.String()), m))
		metas = append(metas, m)
		samples += m.Stats.NumSamples
	}
	c := newCompactor(b, bkt, testConfig(b))
	p := Plan{Compact: metas}

	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		result, err := c.compact(ctx, metas[0].GroupKey(), p)
		require.NoError(b, err)
		require.Equal(b, samples, result.Stats.NumSamples)
	}
	b.ReportMetric(float64(samples)*float64(b.N)/b.Elapsed().Seconds(), "samples/s")
}
