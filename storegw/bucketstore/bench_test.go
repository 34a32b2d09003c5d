package bucketstore_test

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/tsdb"
	"github.com/stretchr/testify/require"

	"github.com/stratametrics/strata/block"
	"github.com/stratametrics/strata/objstore"
	"github.com/stratametrics/strata/storeapi/storeapitest"
	"github.com/stratametrics/strata/storeapi/storepb"
	"github.com/stratametrics/strata/storegw/bucketstore"
	"github.com/stratametrics/strata/storegw/cache"
)

var (
	benchSeries = flag.Int("bucketstore.bench-series", 100_000, "series per block in BenchmarkSeries")
	benchBlocks = flag.Int("bucketstore.bench-blocks", 2, "blocks in BenchmarkSeries")
	benchHours  = flag.Int("bucketstore.bench-block-hours", 2, "hours each block of BenchmarkSeries spans")
)

// BenchmarkSeries measures Series on a generated bucket of -bucketstore.bench-blocks
// consecutive blocks of -bucketstore.bench-block-hours hours and
// -bucketstore.bench-series series each (8 samples per series and block; 100
// instances of job "bench" share the series evenly): the
// latency of a selective query (one series) and of a broad one (one instance's
// series), the bytes fetched from the bucket per query, and the Go heap in use
// after the queries, with and without caches.
//
//	go test -run '^$' -bench BenchmarkSeries -benchtime 20x ./storegw/bucketstore/ \
//	  -bucketstore.bench-series=1000000 -bucketstore.bench-blocks=2 -bucketstore.bench-block-hours=24
func BenchmarkSeries(b *testing.B) {
	bkt, err := objstore.NewFilesystem(b.TempDir())
	require.NoError(b, err)
	blockMs := int64(time.Duration(*benchHours) * time.Hour / time.Millisecond)
	start := time.Now().Add(-time.Duration(*benchBlocks**benchHours)*time.Hour).UnixMilli() / blockMs * blockMs
	var metas []*block.Meta
	for i := range *benchBlocks {
		metas = append(metas, benchBlock(b, bkt, start+int64(i)*blockMs, start+int64(i+1)*blockMs, *benchSeries))
	}
	end := start + int64(*benchBlocks)*blockMs
	for _, withCaches := range []bool{false, true} {
		var opts []bucketstore.Option
		if withCaches {
			opts = append(opts, bucketstore.WithCaches(*cache.NewGateway(256<<20, 256<<20, 512<<20, prometheus.NewRegistry())))
		}
		s := bucketstore.NewStore(bkt, b.TempDir(), nil, nil, opts...)
		for _, m := range metas {
			require.NoError(b, s.Add(context.Background(), m))
		}
		client, _ := storeapitest.Serve(b, s, s)
		for _, q := range []struct {
			name string
			ms   []*storepb.LabelMatcher
		}{
			{"selective", []*storepb.LabelMatcher{{Type: storepb.LabelMatcher_EQ, Name: "series", Value: "42"}}},
			{"broad", []*storepb.LabelMatcher{{Type: storepb.LabelMatcher_EQ, Name: "instance", Value: "host-7"}}},
		} {
			b.Run(fmt.Sprintf("caches=%v/%s", withCaches, q.name), func(b *testing.B) {
				req := &storepb.SeriesRequest{MinTime: start, MaxTime: end, Matchers: q.ms}
				before := s.ReadStats()
				series := 0
				for b.Loop() {
					series = benchQuery(b, client, req)
				}
				after := s.ReadStats()
				runtime.GC()
				var ms runtime.MemStats
				runtime.ReadMemStats(&ms)
				b.ReportMetric(float64(after.Bytes-before.Bytes)/float64(b.N), "bucket-bytes/op")
				b.ReportMetric(float64(after.Requests-before.Requests)/float64(b.N), "bucket-reads/op")
				b.ReportMetric(float64(series), "series/op")
				b.ReportMetric(float64(ms.HeapInuse)/(1<<20), "heap-MiB")
			})
		}
	}
}

func benchQuery(b *testing.B, client storepb.StoreClient, req *storepb.SeriesRequest) int {
	stream, err := client.Series(context.Background(), req)
	require.NoError(b, err)
	n := 0
	for {
		resp, err := stream.Recv()
		if err == io.EOF {
			return n
		}
		require.NoError(b, err)
		if resp.GetSeries() != nil {
			n++
		}
	}
}

// benchBlock writes and uploads a block of n series over [mint, maxt).
func benchBlock(b *testing.B, bkt objstore.Bucket, mint, maxt int64, n int) *block.Meta {
	dir := b.TempDir()
	w, err := tsdb.NewBlockWriter(slog.New(slog.DiscardHandler), dir, maxt-mint)
	require.NoError(b, err)
	lsets := make([]labels.Labels, n)
	for i := range n {
		lsets[i] = labels.FromStrings(model.MetricNameLabel, "bench_metric", "instance", fmt.Sprintf("host-%d", i%100), "job", "bench", "series", fmt.Sprint(i))
	}
	// In time order, one commit per timestamp: the writer's head accepts samples
	// only within half a block of the newest one it has committed.
	for ts := mint; ts < maxt; ts += (maxt - mint) / 8 {
		app := w.Appender(context.Background())
		for i, lset := range lsets {
			_, err := app.Append(0, lset, ts, float64(i))
			require.NoError(b, err)
		}
		require.NoError(b, app.Commit())
	}
	id, err := w.Flush(context.Background())
	require.NoError(b, err)
	require.NoError(b, w.Close())
	blockDir := filepath.Join(dir, id.String())
	m, err := block.ReadMetaFromDir(blockDir)
	require.NoError(b, err)
	m.Thanos.Labels = map[string]string{"tenant_id": "bench"}
	m.Thanos.Source = block.SourceTest
	require.NoError(b, block.Upload(context.Background(), nil, bkt, blockDir, m))
	return m
}
