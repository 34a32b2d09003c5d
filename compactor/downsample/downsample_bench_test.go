package downsample_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/oklog/ulid/v2"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/tsdb"
	"github.com/prometheus/prometheus/tsdb/chunkenc"
	"github.com/prometheus/prometheus/tsdb/chunks"
	"github.com/prometheus/prometheus/tsdb/index"
	"github.com/stretchr/testify/require"

	"github.com/stratametrics/strata/block"
	"github.com/stratametrics/strata/compactor/downsample"
)

// writeSyntheticBlock writes a raw block of numSeries counters with one sample
// every step from 0 to before maxt straight through Prometheus' index and chunk
// writers, which is much faster than going through a head. It returns the
// block's directory and its number of samples.
func writeSyntheticBlock(b *testing.B, dir string, numSeries int, maxt, step int64) (string, uint64) {
	id := ulid.Make()
	bdir := filepath.Join(dir, id.String())
	cw, err := chunks.NewWriter(filepath.Join(bdir, block.ChunksDirname))
	require.NoError(b, err)
	iw, err := index.NewWriter(context.Background(), filepath.Join(bdir, block.IndexFilename))
	require.NoError(b, err)

	inst := func(i int) string { return fmt.Sprintf("%06d", i) }
	// Symbols in sorted order: the instance numbers (digits) sort first.
	for i := range numSeries {
		require.NoError(b, iw.AddSymbol(inst(i)))
	}
	for _, s := range []string{"__name__", "bench_counter_total", "instance", "job", "node"} {
		require.NoError(b, iw.AddSymbol(s))
	}

	var samples, numChunks uint64
	for i := range numSeries {
		var metas []chunks.Meta
		var chk *chunkenc.XORChunk
		var app chunkenc.Appender
		v := 0.0
		n := 0
		for t := int64(0); t < maxt; t += step {
			if n%120 == 0 {
				if chk != nil {
					metas[len(metas)-1].MaxTime = t - step
				}
				chk = chunkenc.NewXORChunk()
				app, err = chk.Appender()
				require.NoError(b, err)
				metas = append(metas, chunks.Meta{Chunk: chk, MinTime: t})
			}
			if n%5000 == 4999 {
				v = 0 // a reset now and then
			}
			v += float64((n*7+i)%13) + 0.5
			app.Append(0, t, v)
			n++
		}
		metas[len(metas)-1].MaxTime = int64(n-1) * step
		require.NoError(b, cw.WriteChunks(metas...))
		for j := range metas {
			metas[j].Chunk = nil
		}
		lset := labels.FromStrings("__name__", "bench_counter_total", "instance", inst(i), "job", "node")
		require.NoError(b, iw.AddSeries(storage.SeriesRef(i), lset, metas...))
		samples += uint64(n)
		numChunks += uint64(len(metas))
	}
	require.NoError(b, iw.Close())
	require.NoError(b, cw.Close())

	m := &block.Meta{
		BlockMeta: tsdb.BlockMeta{
			ULID: id, MinTime: 0, MaxTime: maxt, Version: block.TSDBVersion1,
			Stats:      tsdb.BlockStats{NumSeries: uint64(numSeries), NumSamples: samples, NumChunks: numChunks},
			Compaction: tsdb.BlockMetaCompaction{Level: 3, Sources: []ulid.ULID{id}},
		},
		Thanos: block.ThanosMeta{Version: block.ThanosVersion1, Labels: map[string]string{"tenant_id": "b"}, Source: block.SourceTest},
	}
	require.NoError(b, m.WriteToDir(nil, bdir))
	return bdir, samples
}

// BenchmarkDownsample measures raw to 5m downsampling of 10k series over two
// days at a 15s interval (115M samples) and reports input samples per second.
func BenchmarkDownsample(b *testing.B) {
	for _, tc := range []struct {
		series int
		span   int64
	}{
		{1_000, 2 * 24 * hour},
		{10_000, 2 * 24 * hour},
	} {
		b.Run(fmt.Sprintf("series=%d/span=%dh", tc.series, tc.span/hour), func(b *testing.B) {
			srcDir, samples := writeSyntheticBlock(b, b.TempDir(), tc.series, tc.span, 15*second)
			dst := b.TempDir()
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				m, err := downsample.Downsample(context.Background(), nil, srcDir, block.Resolution5m, dst)
				if err != nil {
					b.Fatal(err)
				}
				b.StopTimer()
				if err := os.RemoveAll(filepath.Join(dst, m.ULID.String())); err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
			}
			b.ReportMetric(float64(samples)*float64(b.N)/b.Elapsed().Seconds(), "samples/s")
		})
	}
}
