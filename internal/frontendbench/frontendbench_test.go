package frontendbench

import (
	"context"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/stratametrics/strata/internal/compactbench"
)

var (
	strataBin = flag.String("frontendbench.strata", "", "strata binary to measure; empty skips TestFrontendDashboard")
	hosts     = flag.Int("frontendbench.hosts", 20, "hosts in the dataset, 100 counters each")
	days      = flag.Int("frontendbench.days", 30, "days of data, and the dashboard's range")
	interval  = flag.Duration("frontendbench.scrape-interval", time.Minute, "sample interval of the dataset")
	compact   = flag.Bool("frontendbench.compact", true, "run `strata compact` (no downsampling) over the bucket before measuring")
	step      = flag.Duration("frontendbench.step", time.Hour, "the dashboard's step")
	coldLoads = flag.Int("frontendbench.cold", 10, "cold dashboard loads per configuration, each on freshly started processes")
	warmLoads = flag.Int("frontendbench.warm", 20, "warm dashboard loads per configuration, after the last cold one")
	shards    = flag.Int("frontendbench.shards", 2, "--query-range.shards of a third configuration; 1 or less leaves it out")
	workDir   = flag.String("frontendbench.dir", "", "directory for the bucket and the processes' data; empty is a temporary directory")
	outFile   = flag.String("frontendbench.out", "", "write the markdown report to this file; empty prints it only")
)

// config is one way of serving the dashboard.
type config struct {
	name     string
	frontend bool
	shards   int
}

// cluster is one start of the processes of a config.
type cluster struct {
	store, querier, frontend *process
	url                      string // where the dashboard is sent
}

func (c *cluster) procs() []*process {
	ps := []*process{c.store, c.querier}
	if c.frontend != nil {
		ps = append(ps, c.frontend)
	}
	return ps
}

func (c *cluster) stop(t *testing.T) {
	ps := c.procs()
	slices.Reverse(ps) // the frontend first, the store gateway last
	for _, p := range ps {
		p.stop(t)
	}
}

// TestFrontendDashboard loads a 30-day dashboard of ten panels from a store
// gateway over a generated bucket, through the querier alone and through the
// query frontend, cold and warm, checks every frontend answer equals the
// querier's, and reports latencies, bucket reads and cache outcomes. It is
// skipped unless -frontendbench.strata names a binary; see doc.go.
func TestFrontendDashboard(t *testing.T) {
	if *strataBin == "" {
		t.Skip("no -frontendbench.strata binary given; run `make bench-frontend`")
	}
	require.Positive(t, *coldLoads)
	require.GreaterOrEqual(t, *hosts, 2, "the single-series panel reads host-00001")
	dir := *workDir
	if dir == "" {
		dir = t.TempDir()
	}
	runStart := time.Now()
	ds := setupBucket(t, dir)

	// Grafana aligns a range query's start and end down to multiples of the
	// step; the range is fixed for the whole run so that every load asks
	// the same question.
	end := time.Now().Truncate(*step)
	start := end.Add(-time.Duration(*days) * 24 * time.Hour)

	configs := []config{{name: "querier", shards: 1}, {name: "frontend", frontend: true, shards: 1}}
	if *shards > 1 {
		configs = append(configs, config{name: fmt.Sprintf("frontend, %d shards", *shards), frontend: true, shards: *shards})
	}
	var reference []answer
	var results []phaseResult
	for _, cfg := range configs {
		cold := phaseResult{config: cfg.name, phase: "cold"}
		warm := phaseResult{config: cfg.name, phase: "warm"}
		for i := range *coldLoads {
			c := startCluster(t, dir, ds, cfg)
			answers := measure(t, c, &cold, start, end)
			if reference == nil {
				reference = answers
			}
			check(t, cfg, reference, answers, &cold)
			if i < *coldLoads-1 {
				c.stop(t)
				continue
			}
			for range *warmLoads {
				check(t, cfg, reference, measure(t, c, &warm, start, end), &warm)
			}
			c.stop(t)
		}
		fmt.Printf("%s\n%s\n", cold.summary(), warm.summary())
		results = append(results, cold)
		if *warmLoads > 0 {
			results = append(results, warm)
		}
	}
	ds.elapsed = time.Since(runStart)
	report := renderReport(ds, start, end, results)
	fmt.Print("\n" + report)
	if *outFile != "" {
		require.NoError(t, os.WriteFile(*outFile, []byte(report), 0o644))
	}
}

// dataset describes the bucket the dashboard reads.
type dataset struct {
	compactbench.Dataset
	bucketConfig string
	generate     time.Duration
	compact      time.Duration // 0 when not compacted
	blocks       int
	bytes        int64
	elapsed      time.Duration // the whole run
}

// setupBucket generates the dataset ending at the last 2h boundary before
// now, as if a receiver still held the last hours in its head, and
// compacts it when -frontendbench.compact is set.
func setupBucket(t *testing.T, dir string) *dataset {
	bucketDir := filepath.Join(dir, "bucket")
	require.NoError(t, os.RemoveAll(bucketDir))
	require.NoError(t, os.MkdirAll(bucketDir, 0o755))
	ds := &dataset{bucketConfig: filepath.Join(dir, "bucket.yaml")}
	require.NoError(t, os.WriteFile(ds.bucketConfig, []byte("type: FILESYSTEM\nconfig:\n  directory: "+bucketDir+"\n"), 0o644))

	const twoHours = int64(2 * time.Hour / time.Millisecond)
	dataEnd := time.Now().UnixMilli() / twoHours * twoHours
	ds.Dataset = compactbench.Dataset{Series: *hosts * 100, Days: *days, Replicas: 1, Step: interval.Milliseconds(),
		Start: dataEnd - int64(*days)*24*int64(time.Hour/time.Millisecond)}
	t0 := time.Now()
	_, err := ds.Write(context.Background(), bucketDir)
	require.NoError(t, err)
	ds.generate = time.Since(t0)
	fmt.Printf("generated %d series × %d days (%.0fM samples) in %s\n", ds.Series, ds.Days, float64(ds.Samples())/1e6, ds.generate.Round(time.Millisecond))
	if *compact {
		t0 = time.Now()
		cmd := exec.Command(*strataBin, "compact", "--objstore.config-file="+ds.bucketConfig,
			"--data-dir="+filepath.Join(dir, "compact"), "--http-address=127.0.0.1:0",
			"--consistency-delay=0s", "--delete-delay=0s", "--downsampling.disable", "--log.level=warn")
		cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
		require.NoError(t, cmd.Run(), "strata compact")
		ds.compact = time.Since(t0)
		fmt.Printf("compacted in %s\n", ds.compact.Round(time.Millisecond))
	}
	entries, err := os.ReadDir(bucketDir)
	require.NoError(t, err)
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		if _, err := os.Stat(filepath.Join(bucketDir, e.Name(), "meta.json")); err != nil {
			continue
		}
		if _, err := os.Stat(filepath.Join(bucketDir, e.Name(), "deletion-mark.json")); err == nil {
			continue
		}
		ds.blocks++
		require.NoError(t, filepath.WalkDir(filepath.Join(bucketDir, e.Name()), func(p string, de fs.DirEntry, err error) error {
			if err != nil || de.IsDir() || strings.HasSuffix(p, ".json") {
				return err
			}
			info, err := de.Info()
			if err != nil {
				return err
			}
			ds.bytes += info.Size()
			return nil
		}))
	}
	fmt.Printf("bucket: %d blocks, %.1f MiB\n", ds.blocks, float64(ds.bytes)/(1<<20))
	return ds
}

// startCluster starts a store gateway, a querier and, for a frontend
// config, a query frontend, each with its default caches, and waits until
// the querier sees the store gateway. The store gateway's data directory of
// index headers is kept from start to start, as a restarted gateway's
// would be.
func startCluster(t *testing.T, dir string, ds *dataset, cfg config) *cluster {
	t.Helper()
	c := &cluster{}
	grpcAddr := freeAddr(t)
	c.store = start(t, "strata store", freeAddr(t), "store", "--objstore.config-file="+ds.bucketConfig,
		"--data-dir="+filepath.Join(dir, "store"), "--grpc-address="+grpcAddr)
	c.querier = start(t, "strata query", freeAddr(t), "query", "--endpoint="+grpcAddr)
	c.querier.waitFor(t, "connected to the store gateway", func() bool {
		return c.querier.metric(t, "strata_querier_endpoints", `health="healthy"`) >= 1
	})
	c.url = c.querier.httpURL
	if cfg.frontend {
		c.frontend = start(t, "strata query-frontend", freeAddr(t), "query-frontend",
			"--query-frontend.downstream-url="+c.querier.httpURL, fmt.Sprintf("--query-range.shards=%d", cfg.shards))
		c.url = c.frontend.httpURL
	}
	return c
}

// measure loads the dashboard once from c and adds what it cost to r.
func measure(t *testing.T, c *cluster, r *phaseResult, start, end time.Time) []answer {
	t.Helper()
	before := snapshot(t, c)
	answers, total, err := load(context.Background(), c.url, start, end, *step)
	require.NoError(t, err)
	r.add(answers, total, snapshot(t, c).sub(before))
	return answers
}

// check requires every answer to equal the reference (the querier's first
// cold answers): exactly, or within a relative 1e-12 for a sharded
// frontend, whose shards add partial sums in another order.
func check(t *testing.T, cfg config, reference, answers []answer, r *phaseResult) {
	t.Helper()
	tol := 0.0
	if cfg.shards > 1 {
		tol = 1e-12
	}
	for i, p := range panels {
		require.NotEmpty(t, reference[i].series, "panel %q has data", p.title)
		require.NoError(t, diff(reference[i].series, answers[i].series, tol, &r.inexact), "%s: panel %q (%s)", cfg.name, p.title, p.expr)
	}
}
