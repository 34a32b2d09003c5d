package objstore_test

import (
	"fmt"
	"log/slog"
	"path/filepath"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/stratametrics/strata/internal/miniotest"
	"github.com/stratametrics/strata/objstore"
	"github.com/stratametrics/strata/objstore/objstoretest"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug}))
}

func TestFilesystemAcceptance(t *testing.T) {
	t.Run("raw", func(t *testing.T) {
		bkt, err := objstore.NewFilesystem(t.TempDir())
		require.NoError(t, err)
		t.Cleanup(func() { require.NoError(t, bkt.Close()) })
		objstoretest.AcceptanceTest(t, bkt)
	})
	t.Run("from config", func(t *testing.T) {
		dir := filepath.Join(t.TempDir(), "created", "on", "demand")
		content := fmt.Appendf(nil, "type: filesystem\nconfig:\n  directory: %q\n", dir)
		bkt, err := objstore.NewBucket(t.Context(), content, prometheus.NewRegistry(), testLogger(t))
		require.NoError(t, err)
		t.Cleanup(func() { require.NoError(t, bkt.Close()) })
		objstoretest.AcceptanceTest(t, bkt)
	})
}

func TestS3Acceptance(t *testing.T) {
	t.Parallel()
	srv := miniotest.Start(t)
	t.Run("raw", func(t *testing.T) {
		bkt, err := objstore.NewS3(srv.NewBucket(t, "raw"), testLogger(t))
		require.NoError(t, err)
		t.Cleanup(func() { require.NoError(t, bkt.Close()) })
		objstoretest.AcceptanceTest(t, bkt)
	})
	t.Run("from config", func(t *testing.T) {
		bkt, err := objstore.NewBucket(t.Context(), srv.NewBucketYAML(t, "from-config"), prometheus.NewRegistry(), testLogger(t))
		require.NoError(t, err)
		t.Cleanup(func() { require.NoError(t, bkt.Close()) })
		objstoretest.AcceptanceTest(t, bkt)
	})
	t.Run("list objects v1", func(t *testing.T) {
		cfg := srv.NewBucket(t, "list-v1")
		cfg.ListObjectsVersion = "v1"
		bkt, err := objstore.NewBucket(t.Context(), miniotest.ConfigYAML(t, cfg), nil, nil)
		require.NoError(t, err)
		t.Cleanup(func() { require.NoError(t, bkt.Close()) })
		objstoretest.AcceptanceTest(t, bkt)
	})
	t.Run("shared bucket", func(t *testing.T) {
		// Two clients on one bucket, as two test runs would share a real one.
		cfg := srv.NewBucket(t, "shared")
		for i := range 2 {
			bkt, err := objstore.NewS3(cfg, nil)
			require.NoError(t, err)
			t.Cleanup(func() { require.NoError(t, bkt.Close()) })
			t.Run(fmt.Sprint(i), func(t *testing.T) { objstoretest.AcceptanceTest(t, bkt) })
		}
	})
}
