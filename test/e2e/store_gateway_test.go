package e2e

import (
	"context"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/prometheus/tsdb/chunkenc"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/stratametrics/strata/block"
	"github.com/stratametrics/strata/block/blocktest"
	"github.com/stratametrics/strata/internal/miniotest"
	"github.com/stratametrics/strata/objstore"
	"github.com/stratametrics/strata/storeapi"
	"github.com/stratametrics/strata/storeapi/infopb"
	"github.com/stratametrics/strata/storeapi/storepb"
)

// TestStoreGateway runs `strata store` over a real MinIO bucket: it serves every
// sample of the blocks in the bucket over the Store API, advertises their time
// range and labels, reads little of a large block's index for a selective query
// (as the bucket's own metrics count it), and stops serving a block once its
// deletion mark is old enough.
func TestStoreGateway(t *testing.T) {
	ctx := context.Background()
	minio := miniotest.Start(t)
	bucketYAML := minio.NewBucketYAML(t, "store-gateway")
	bkt, err := objstore.NewBucket(ctx, bucketYAML, nil, nil)
	require.NoError(t, err)

	const hour = int64(time.Hour / time.Millisecond)
	base := time.Now().Add(-48*time.Hour).UnixMilli() / (2 * hour) * (2 * hour)
	want := map[string][]blocktest.Sample{}
	var metas []*block.Meta
	for i, tenant := range []string{"team-a", "team-b"} {
		dir := t.TempDir()
		id := blocktest.Create(t, dir, base+int64(i)*2*hour, base+int64(i+1)*2*hour, 50)
		blockDir := filepath.Join(dir, id.String())
		m, err := block.ReadMetaFromDir(blockDir)
		require.NoError(t, err)
		m.Thanos.Labels = map[string]string{"tenant_id": tenant}
		m.Thanos.Source = block.SourceTest
		require.NoError(t, block.Upload(ctx, nil, bkt, blockDir, m))
		metas = append(metas, m)
		for series, samples := range blocktest.Samples(t, blockDir) {
			key := strings.TrimSuffix(series, "}") + fmt.Sprintf(", tenant_id=%q}", tenant)
			want[key] = samples
		}
	}
	// A larger block, for a selective query: 20,000 series over ten minutes.
	bigDir := t.TempDir()
	bigID := blocktest.Create(t, bigDir, base+4*hour, base+4*hour+10*60*1000, 20000)
	bigMeta, err := block.ReadMetaFromDir(filepath.Join(bigDir, bigID.String()))
	require.NoError(t, err)
	bigMeta.Thanos.Labels = map[string]string{"tenant_id": "team-c"}
	bigMeta.Thanos.Source = block.SourceTest
	require.NoError(t, block.Upload(ctx, nil, bkt, filepath.Join(bigDir, bigID.String()), bigMeta))
	indexAttrs, err := bkt.Attributes(ctx, bigID.String()+"/index")
	require.NoError(t, err)

	// A partial upload (no meta.json) is ignored.
	require.NoError(t, bkt.Upload(ctx, "01J00000000000000000000000/index", strings.NewReader("partial")))

	grpcAddr, httpAddr := freeAddr(t), freeAddr(t)
	p := startProcess(t, "strata store", strataBin, "store",
		"--objstore.config="+string(bucketYAML),
		"--data-dir="+t.TempDir(),
		"--grpc-address="+grpcAddr,
		"--http-address="+httpAddr,
		"--sync-block-duration=1s",
		"--ignore-deletion-marks-delay=1h",
	)
	waitHTTP(t, p, "http://"+httpAddr+"/-/ready", time.Minute)

	conn, err := grpc.NewClient(grpcAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	require.NoError(t, err)
	t.Cleanup(func() { _ = conn.Close() })
	store, info := storepb.NewStoreClient(conn), infopb.NewInfoClient(conn)

	inf, err := info.Info(ctx, &infopb.InfoRequest{})
	require.NoError(t, err)
	require.Equal(t, base, inf.GetStore().GetMinTime())
	require.Len(t, inf.GetLabelSets(), 3, "one label set per tenant")

	// A selective query reads a small part of the large block's index, as the
	// bucket's own metrics count it (the index header was built at sync).
	metrics := "http://" + httpAddr + "/metrics"
	const readBytes = "strata_objstore_bucket_read_bytes_total"
	before, ok, err := metricValueWith(ctx, metrics, readBytes, `operation="get_range"`)
	require.NoError(t, err)
	require.True(t, ok, readBytes)
	one := seriesSamplesMatching(t, store, &storepb.LabelMatcher{Type: storepb.LabelMatcher_EQ, Name: "series", Value: "12345"},
		&storepb.LabelMatcher{Type: storepb.LabelMatcher_EQ, Name: "tenant_id", Value: "team-c"})
	require.Len(t, one, 1)
	after, _, err := metricValueWith(ctx, metrics, readBytes, `operation="get_range"`)
	require.NoError(t, err)
	read := after - before
	require.Positive(t, read)
	require.Less(t, read, 0.02*float64(indexAttrs.Size), "a one-series query read %.0f bytes; the index has %d", read, indexAttrs.Size)
	t.Logf("a one-series query read %.0f bytes from the bucket; the block's index is %d bytes", read, indexAttrs.Size)

	all := seriesSamples(t, store)
	require.Len(t, all, 100+20000)
	for series, samples := range want {
		require.Equal(t, samples, all[series], series)
	}

	// A deletion mark older than --ignore-deletion-marks-delay takes team-a's
	// block out of service at the next sync.
	require.NoError(t, block.WriteDeletionMark(ctx, bkt, metas[0].ULID, time.Now().Add(-2*time.Hour), "test"))
	require.Eventually(t, func() bool {
		got := seriesSamples(t, store)
		for series := range got {
			if strings.Contains(series, `tenant_id="team-a"`) {
				return false
			}
		}
		return len(got) == 50+20000
	}, 30*time.Second, 200*time.Millisecond)
	require.NoError(t, p.stop(t, syscall.SIGTERM, 30*time.Second))
}

// seriesSamples reads every series of the store with its float samples, keyed by
// the series' labels in their string form.
func seriesSamples(t *testing.T, store storepb.StoreClient) map[string][]blocktest.Sample {
	t.Helper()
	return seriesSamplesMatching(t, store, &storepb.LabelMatcher{Type: storepb.LabelMatcher_RE, Name: "__name__", Value: ".+"})
}

// seriesSamplesMatching is seriesSamples for the series that match ms.
func seriesSamplesMatching(t *testing.T, store storepb.StoreClient, ms ...*storepb.LabelMatcher) map[string][]blocktest.Sample {
	t.Helper()
	stream, err := store.Series(context.Background(), &storepb.SeriesRequest{
		MinTime:  0,
		MaxTime:  time.Now().UnixMilli(),
		Matchers: ms,
	})
	require.NoError(t, err)
	out := map[string][]blocktest.Sample{}
	for {
		resp, err := stream.Recv()
		if err == io.EOF {
			break
		}
		require.NoError(t, err)
		s := resp.GetSeries()
		if s == nil {
			continue
		}
		key := storeapi.LabelsFromProto(s.GetLabels()).String()
		for _, c := range s.GetChunks() {
			require.Equal(t, storepb.Chunk_XOR, c.GetRaw().GetType())
			xc, err := chunkenc.FromData(chunkenc.EncXOR, c.GetRaw().GetData())
			require.NoError(t, err)
			it := xc.Iterator(nil)
			for it.Next() == chunkenc.ValFloat {
				ts, v := it.At()
				out[key] = append(out[key], blocktest.Sample{T: ts, V: v})
			}
			require.NoError(t, it.Err())
		}
	}
	return out
}
