package hashring

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"

	"github.com/stratametrics/strata/internal/syncbuf"
)

const (
	fileA = `[{"hashring": "a", "endpoints": ["a1:10901", "a2:10901"]}]`
	fileB = `[{"hashring": "b", "endpoints": ["b1:10901", "b2:10901", "b3:10901"]}]`
)

// writeFile replaces path atomically, as a config management tool would.
func writeFile(t *testing.T, path, content string) {
	t.Helper()
	tmp := path + ".tmp"
	require.NoError(t, os.WriteFile(tmp, []byte(content), 0o600))
	require.NoError(t, os.Rename(tmp, path))
}

// servedRing returns the name of the ring that serves any tenant.
func servedRing(t *testing.T, f *FileRinger) string {
	t.Helper()
	nr, err := f.Multi().Resolve("any")
	require.NoError(t, err)
	return nr.Name
}

func configHash(content string) float64 {
	sum := sha256.Sum256([]byte(content))
	return float64(binary.BigEndian.Uint64(sum[:8]) >> 16)
}

// runRinger runs f until the test ends, and waits for Run to return.
func runRinger(t *testing.T, f *FileRinger) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- f.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		require.NoError(t, <-done)
	})
}

func TestFileRingerReloads(t *testing.T) {
	path := filepath.Join(t.TempDir(), "hashrings.json")
	writeFile(t, path, fileA)
	reg := prometheus.NewRegistry()
	f, err := NewFileRinger(path, AlgorithmKetama, 2, 10*time.Millisecond, reg, nil)
	require.NoError(t, err)
	require.Equal(t, "a", servedRing(t, f))
	require.Equal(t, 1.0, testutil.ToFloat64(f.metrics.reloadSuccess))
	require.Equal(t, configHash(fileA), testutil.ToFloat64(f.metrics.configHash))
	require.Positive(t, testutil.ToFloat64(f.metrics.lastSuccess))

	// Readers keep resolving while the ring is swapped, for the race detector.
	stop := make(chan struct{})
	var readers sync.WaitGroup
	for range 4 {
		readers.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				r, err := f.Ring("tenant")
				if err == nil {
					_ = r.Owners(42, nil)
				}
			}
		})
	}
	defer func() { close(stop); readers.Wait() }()

	runRinger(t, f)
	writeFile(t, path, fileB)
	require.Eventually(t, func() bool { return servedRing(t, f) == "b" }, 10*time.Second, 5*time.Millisecond)
	require.Equal(t, 2.0, testutil.ToFloat64(f.metrics.reloadSuccess))
	require.Equal(t, 0.0, testutil.ToFloat64(f.metrics.reloadFailure))
	require.Equal(t, configHash(fileB), testutil.ToFloat64(f.metrics.configHash))
	r, err := f.Ring("anyone")
	require.NoError(t, err)
	require.Len(t, r.Endpoints(), 3)
	require.Equal(t, 2, r.ReplicationFactor())

	// The metrics are registered under their documented names.
	n, err := testutil.GatherAndCount(reg,
		"strata_hashring_file_reloads_total",
		"strata_hashring_file_config_hash",
		"strata_hashring_file_last_reload_success_timestamp_seconds")
	require.NoError(t, err)
	require.Equal(t, 4, n) // two results, one hash, one timestamp
}

func TestFileRingerKeepsOldRingOnBadFile(t *testing.T) {
	for _, tc := range []struct {
		name    string
		content string
		wantLog string
	}{
		{name: "not json", content: `[{"endpoints": [`, wantLog: "unexpected EOF"},
		{name: "invalid", content: `[{"endpoints": []}]`, wantLog: "no endpoints"},
		{name: "unknown field", content: `[{"endpoints": ["x:1"], "hashrings": "typo"}]`, wantLog: `unknown field \"hashrings\"`},
		{name: "too small for rf", content: `[{"endpoints": ["x:1"]}]`, wantLog: "1 endpoints for replication factor 2"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "hashrings.json")
			writeFile(t, path, fileA)
			var logs syncbuf.Buffer
			f, err := NewFileRinger(path, AlgorithmKetama, 2, 10*time.Millisecond, nil, slog.New(slog.NewTextHandler(&logs, nil)))
			require.NoError(t, err)
			runRinger(t, f)

			writeFile(t, path, tc.content)
			require.Eventually(t, func() bool { return testutil.ToFloat64(f.metrics.reloadFailure) == 1 }, 10*time.Second, 5*time.Millisecond)
			require.Equal(t, "a", servedRing(t, f))
			require.Equal(t, configHash(fileA), testutil.ToFloat64(f.metrics.configHash))
			require.Contains(t, logs.String(), "hashring file rejected; keeping the current hashrings")
			require.Contains(t, logs.String(), "file="+path)
			require.Contains(t, logs.String(), tc.wantLog)

			// A fixed file is picked up.
			writeFile(t, path, fileB)
			require.Eventually(t, func() bool { return servedRing(t, f) == "b" }, 10*time.Second, 5*time.Millisecond)
			require.Equal(t, 1.0, testutil.ToFloat64(f.metrics.reloadFailure))
		})
	}
}

// TestFileRingerCountsEachBadContentOnce drives reload directly, so that it can
// tell how often a bad or missing file is reported without waiting.
func TestFileRingerCountsEachBadContentOnce(t *testing.T) {
	path := filepath.Join(t.TempDir(), "hashrings.json")
	writeFile(t, path, fileA)
	f, err := NewFileRinger(path, AlgorithmKetama, 1, time.Hour, nil, nil)
	require.NoError(t, err)
	failures := func() float64 { return testutil.ToFloat64(f.metrics.reloadFailure) }
	successes := func() float64 { return testutil.ToFloat64(f.metrics.reloadSuccess) }

	f.reload()
	require.Equal(t, 1.0, successes(), "an unchanged file is not reloaded")

	writeFile(t, path, "garbage")
	f.reload()
	f.reload()
	require.Equal(t, 1.0, failures())
	writeFile(t, path, "other garbage")
	f.reload()
	require.Equal(t, 2.0, failures())

	require.NoError(t, os.Remove(path))
	f.reload()
	f.reload()
	require.Equal(t, 3.0, failures(), "a missing file is reported once")
	require.Equal(t, "a", servedRing(t, f))

	// Restoring the served content swaps in an equal ring.
	writeFile(t, path, fileA)
	f.reload()
	require.Equal(t, 2.0, successes())
	require.Equal(t, "a", servedRing(t, f))
}

// TestFileRingerConfigMapSwap updates the file the way the kubelet updates a
// mounted ConfigMap: the file is a symlink through "..data", and an update
// points "..data" at a new directory.
func TestFileRingerConfigMapSwap(t *testing.T) {
	dir := t.TempDir()
	mount := func(version, content string) {
		vdir := filepath.Join(dir, version)
		require.NoError(t, os.Mkdir(vdir, 0o700))
		require.NoError(t, os.WriteFile(filepath.Join(vdir, "hashrings.json"), []byte(content), 0o600))
		require.NoError(t, os.Symlink(version, filepath.Join(dir, "..data_tmp")))
		require.NoError(t, os.Rename(filepath.Join(dir, "..data_tmp"), filepath.Join(dir, "..data")))
	}
	mount("..v1", fileA)
	path := filepath.Join(dir, "hashrings.json")
	require.NoError(t, os.Symlink(filepath.Join("..data", "hashrings.json"), path))

	f, err := NewFileRinger(path, AlgorithmKetama, 1, 10*time.Millisecond, nil, nil)
	require.NoError(t, err)
	require.Equal(t, "a", servedRing(t, f))
	runRinger(t, f)

	mount("..v2", fileB)
	require.NoError(t, os.RemoveAll(filepath.Join(dir, "..v1")))
	require.Eventually(t, func() bool { return servedRing(t, f) == "b" }, 10*time.Second, 5*time.Millisecond)
}

func TestNewFileRingerErrors(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		require.NoError(t, os.WriteFile(p, []byte(content), 0o600))
		return p
	}
	for _, tc := range []struct {
		name    string
		path    string
		rf      int
		refresh time.Duration
		wantErr string
	}{
		{name: "missing", path: filepath.Join(dir, "nope.json"), rf: 1, refresh: time.Second, wantErr: "no such file"},
		{name: "bad json", path: write("bad.json", "{"), rf: 1, refresh: time.Second, wantErr: "parse hashring config"},
		{name: "empty array", path: write("empty.json", "[]"), rf: 1, refresh: time.Second, wantErr: "no hashrings in the file"},
		{name: "rf too large", path: write("small.json", fileA), rf: 3, refresh: time.Second, wantErr: "2 endpoints for replication factor 3"},
		{name: "zero refresh", path: write("ok.json", fileA), rf: 1, wantErr: "refresh interval 0s is not positive"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			reg := prometheus.NewRegistry()
			f, err := NewFileRinger(tc.path, AlgorithmKetama, tc.rf, tc.refresh, reg, nil)
			require.ErrorContains(t, err, tc.wantErr)
			require.ErrorContains(t, err, tc.path)
			require.Nil(t, f)
			mfs, err := reg.Gather()
			require.NoError(t, err)
			require.Empty(t, mfs, "a failed start registers no metrics")
		})
	}
}
