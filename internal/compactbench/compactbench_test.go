package compactbench

import (
	"context"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/oklog/ulid/v2"
	"github.com/stretchr/testify/require"

	"github.com/stratametrics/strata/block"
)

var (
	strataBin = flag.String("compactbench.strata", "", "strata binary to measure; empty skips TestCompactDataset")
	series    = flag.Int("compactbench.series", 100_000, "series per replica")
	days      = flag.Int("compactbench.days", 10, "days of data")
	replicas  = flag.Int("compactbench.replicas", 3, "receive replicas shipping identical blocks")
	step      = flag.Duration("compactbench.step", time.Minute, "sample interval")
	workDir   = flag.String("compactbench.dir", "", "directory for the bucket and scratch space; empty is a temporary directory")
)

// TestCompactDataset generates the dataset the flags describe and measures two
// runs of `strata compact` over it: compaction with replica dedup, then
// downsampling. It is skipped unless -compactbench.strata names a binary.
func TestCompactDataset(t *testing.T) {
	if *strataBin == "" {
		t.Skip("no -compactbench.strata binary given; run `make bench-compact`")
	}
	dir := *workDir
	if dir == "" {
		dir = t.TempDir()
	}
	bucketDir := filepath.Join(dir, "bucket")
	require.NoError(t, os.RemoveAll(bucketDir))
	require.NoError(t, os.MkdirAll(bucketDir, 0o755))
	config := filepath.Join(dir, "bucket.yaml")
	require.NoError(t, os.WriteFile(config, []byte("type: FILESYSTEM\nconfig:\n  directory: "+bucketDir+"\n"), 0o644))

	const day = int64(24 * time.Hour / time.Millisecond)
	d := Dataset{Series: *series, Days: *days, Replicas: *replicas, Step: step.Milliseconds(),
		Start: (time.Now().UnixMilli()/day - int64(*days) - 30) / 14 * 14 * day}
	start := time.Now()
	n, err := d.Write(context.Background(), bucketDir)
	require.NoError(t, err)
	input := bucketStats(t, bucketDir)
	fmt.Printf("generated %d blocks: %d series × %d days × %d replicas = %.2fM series-days, %.0fM samples per replica, in %s\n",
		n, d.Series, d.Days, d.Replicas, float64(d.Series*d.Days*d.Replicas)/1e6, float64(d.Samples())/1e6, time.Since(start).Round(time.Second))

	run := func(name string, extra ...string) (wall, cpu time.Duration) {
		args := append([]string{"compact", "--objstore.config-file=" + config, "--data-dir=" + filepath.Join(dir, "scratch"),
			"--http-address=127.0.0.1:0", "--consistency-delay=0s", "--delete-delay=0s",
			"--deduplication.replica-label=receive_replica", "--log.level=warn"}, extra...)
		cmd := exec.Command(*strataBin, args...)
		cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
		start := time.Now()
		require.NoError(t, cmd.Run(), name)
		wall = time.Since(start)
		ru := cmd.ProcessState.SysUsage().(*syscall.Rusage)
		cpu = time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
		fmt.Printf("%s: wall %s, CPU %s, max RSS %d MiB\n", name, wall.Round(time.Millisecond), cpu.Round(time.Millisecond), ru.Maxrss/1024)
		return wall, cpu
	}

	_, compactCPU := run("compaction and dedup", "--downsampling.disable")
	compacted := bucketStats(t, bucketDir)
	_, downCPU := run("downsampling")
	final := bucketStats(t, bucketDir)

	inputSamples := float64(d.Samples()) * float64(d.Replicas)
	var downIn float64
	for _, m := range final.metas {
		if m.Thanos.Downsample.Resolution == block.ResolutionRaw && final.downsampled(m) {
			downIn += float64(m.Stats.NumSamples)
		}
	}
	fmt.Printf("\n| step | input samples | CPU | samples per CPU-second |\n|---|---|---|---|\n")
	fmt.Printf("| compaction + replica dedup | %.0fM | %s | %.1fM |\n", inputSamples/1e6, compactCPU.Round(time.Millisecond), inputSamples/compactCPU.Seconds()/1e6)
	fmt.Printf("| downsampling (raw → 5m, then 5m → 1h; raw input counted) | %.0fM | %s | %.1fM |\n\n", downIn/1e6, downCPU.Round(time.Millisecond), downIn/downCPU.Seconds()/1e6)
	fmt.Printf("| bucket | blocks | bytes | bytes per input sample |\n|---|---|---|---|\n")
	for _, row := range []struct {
		name string
		s    stats
		res  int64
	}{
		{"input (raw, all replicas)", input, -1},
		{"after compaction and dedup (raw)", compacted, -1},
		{"after downsampling: raw", final, block.ResolutionRaw},
		{"after downsampling: 5m", final, block.Resolution5m},
		{"after downsampling: 1h", final, block.Resolution1h},
	} {
		blocks, bytes := row.s.blocks, row.s.bytes
		if row.res >= 0 {
			blocks, bytes = row.s.byRes[row.res].blocks, row.s.byRes[row.res].bytes
		}
		fmt.Printf("| %s | %d | %.1f MiB | %.3f |\n", row.name, blocks, float64(bytes)/(1<<20), float64(bytes)/inputSamples)
	}
	require.Less(t, compacted.bytes, input.bytes, "dedup shrinks the bucket")
	require.NotZero(t, final.byRes[block.Resolution5m].blocks, "downsampling wrote 5m blocks")
}

type resStats struct{ blocks, bytes int64 }

type stats struct {
	blocks, bytes int64
	byRes         map[int64]resStats
	metas         []*block.Meta
}

// downsampled reports whether a downsampled block covers the sources of raw.
func (s stats) downsampled(raw *block.Meta) bool {
	for _, m := range s.metas {
		if m.Thanos.Downsample.Resolution != block.ResolutionRaw && m.MinTime == raw.MinTime && m.MaxTime == raw.MaxTime {
			return true
		}
	}
	return false
}

// bucketStats sums the complete blocks of the filesystem bucket in dir, each
// file counted at its size even when hard-linked.
func bucketStats(t *testing.T, dir string) stats {
	s := stats{byRes: map[int64]resStats{}}
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	for _, e := range entries {
		if _, err := ulid.ParseStrict(e.Name()); err != nil || !e.IsDir() {
			continue
		}
		m, err := block.ReadMetaFromDir(filepath.Join(dir, e.Name()))
		if err != nil {
			continue
		}
		var size int64
		require.NoError(t, filepath.WalkDir(filepath.Join(dir, e.Name()), func(p string, de fs.DirEntry, err error) error {
			if err != nil || de.IsDir() || strings.HasSuffix(p, ".json") {
				return err
			}
			info, err := de.Info()
			if err != nil {
				return err
			}
			size += info.Size()
			return nil
		}))
		s.blocks++
		s.bytes += size
		r := s.byRes[m.Thanos.Downsample.Resolution]
		r.blocks++
		r.bytes += size
		s.byRes[m.Thanos.Downsample.Resolution] = r
		s.metas = append(s.metas, m)
	}
	return s
}
