package e2e

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/oklog/ulid/v2"
	"github.com/prometheus/prometheus/prompb"
	"github.com/stretchr/testify/require"

	"github.com/stratametrics/strata/block"
	"github.com/stratametrics/strata/internal/miniotest"
	"github.com/stratametrics/strata/objstore"
)

// TestReceiveShipsOnShutdownToMinIO writes to strata backed by a real MinIO, stops
// it with SIGTERM, and proves the bucket then holds the tenant's block with a valid
// meta.json that Debian's promtool can analyze.
func TestReceiveShipsOnShutdownToMinIO(t *testing.T) {
	promtool := requireBinary(t, "promtool")
	minio := miniotest.Start(t)
	cfg := minio.NewBucketYAML(t, "shutdown")

	dir := t.TempDir()
	s := startReceive(t, dir, "--objstore.config="+string(cfg))

	const numSeries, numSamples = 100, 30
	start := time.Now().Add(-30 * time.Minute).Truncate(time.Minute).UnixMilli()
	client := &http.Client{Timeout: 10 * time.Second}
	for i := range numSamples {
		series := make([]prompb.TimeSeries, numSeries)
		for j := range series {
			series[j] = prompb.TimeSeries{
				Labels: []prompb.Label{
					{Name: "__name__", Value: "shutdown_test"},
					{Name: "instance", Value: fmt.Sprintf("host-%03d", j)},
				},
				Samples: []prompb.Sample{{Timestamp: start + int64(i)*60_000, Value: float64(i * j)}},
			}
		}
		code, body, err := pushRW1(context.Background(), client, s.rwURL, "team-a", series)
		require.NoError(t, err)
		require.Equal(t, http.StatusNoContent, code, body)
	}

	require.NoError(t, s.stop(t, syscall.SIGTERM, 2*time.Minute), "graceful exit")

	bkt, err := objstore.NewBucket(context.Background(), cfg, nil, nil)
	require.NoError(t, err)
	defer func() { require.NoError(t, bkt.Close()) }()
	var metas []*block.Meta
	require.NoError(t, bkt.Iter(context.Background(), "", func(name string) error {
		id, err := ulid.Parse(strings.TrimSuffix(name, "/"))
		require.NoError(t, err, "only blocks in the bucket, got %q", name)
		meta, err := block.ReadMetaFromBucket(context.Background(), bkt, id)
		require.NoError(t, err, "block %s has a meta.json", id)
		metas = append(metas, meta)
		return nil
	}))
	require.NotEmpty(t, metas)

	var total uint64
	for _, meta := range metas {
		require.NoError(t, meta.Validate())
		require.Equal(t, map[string]string{"tenant_id": "team-a", "receive_replica": "e2e"}, meta.Thanos.Labels)
		require.Equal(t, block.SourceReceive, meta.Thanos.Source)
		require.Equal(t, int64(0), meta.Thanos.Downsample.Resolution)
		require.EqualValues(t, numSeries, meta.Stats.NumSeries)
		total += meta.Stats.NumSamples

		dst := t.TempDir()
		require.NoError(t, block.Download(context.Background(), nil, bkt, meta.ULID, dst))
		out, err := exec.Command(promtool, "tsdb", "analyze", dst, meta.ULID.String()).CombinedOutput()
		require.NoError(t, err, "promtool tsdb analyze:\n%s", out)
		require.Contains(t, string(out), meta.ULID.String())
		require.Contains(t, string(out), fmt.Sprintf("Series: %d", numSeries), string(out))
		t.Logf("promtool tsdb analyze %s:\n%s", meta.ULID, firstLines(strings.TrimSpace(string(out)), 8))
	}
	require.EqualValues(t, numSeries*numSamples, total, "every sample is in the shipped blocks")

	// The shipper recorded what it shipped, so a restart will not upload again.
	state, err := os.ReadFile(filepath.Join(dir, "team-a", "strata.shipper.json"))
	require.NoError(t, err)
	for _, meta := range metas {
		require.Contains(t, string(state), meta.ULID.String())
	}
}

func firstLines(s string, n int) string {
	lines := strings.SplitN(s, "\n", n+1)
	if len(lines) > n {
		lines = lines[:n]
	}
	return strings.Join(lines, "\n")
}
