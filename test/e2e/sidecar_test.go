package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/oklog/ulid/v2"
	"github.com/stretchr/testify/require"

	"github.com/stratametrics/strata/block"
	"github.com/stratametrics/strata/internal/miniotest"
	"github.com/stratametrics/strata/objstore"
)

// The sidecar tests run in parallel with each other (sidecarParallel): the
// parity test spends most of its 40-odd seconds waiting for Prometheus to
// scrape itself, which is time enough for the others, and they use little
// CPU. Every process they start listens on its own free loopback ports.

// sidecarProm is a Prometheus 2.42 started for the sidecar tests, with local
// compaction off as the sidecar requires.
type sidecarProm struct {
	*process
	url, addr, cfgFile, dataDir string
}

// writeSidecarPromConfig writes a Prometheus configuration with the given
// external labels (YAML flow mapping) that scrapes targets every second.
func writeSidecarPromConfig(t *testing.T, file, externalLabels string, targets ...string) {
	t.Helper()
	cfg := fmt.Sprintf("global:\n  scrape_interval: 1s\n  external_labels: %s\n", externalLabels)
	if len(targets) > 0 {
		quoted := make([]string, 0, len(targets))
		for _, tg := range targets {
			quoted = append(quoted, fmt.Sprintf("%q", tg))
		}
		cfg += fmt.Sprintf("scrape_configs:\n  - job_name: prometheus\n    static_configs: [{targets: [%s]}]\n", strings.Join(quoted, ", "))
	}
	require.NoError(t, os.WriteFile(file, []byte(cfg), 0o644))
}

// startSidecarProm starts Prometheus on addr with cfgFile over dataDir, with
// 2h blocks, plus extra flags, and waits until it is ready.
func startSidecarProm(t *testing.T, addr, cfgFile, dataDir string, extra ...string) *sidecarProm {
	t.Helper()
	args := append([]string{
		"--config.file=" + cfgFile,
		"--storage.tsdb.path=" + dataDir,
		"--web.listen-address=" + addr,
		"--web.enable-lifecycle",
		"--storage.tsdb.min-block-duration=2h",
		"--storage.tsdb.max-block-duration=2h",
	}, extra...)
	p := &sidecarProm{
		process: startProcess(t, "prometheus "+addr, requireBinary(t, "prometheus"), args...),
		url:     "http://" + addr, addr: addr, cfgFile: cfgFile, dataDir: dataDir,
	}
	waitHTTP(t, p.process, p.url+"/-/ready", time.Minute)
	return p
}

// startSidecar starts `strata sidecar` next to prom, uploading to the bucket
// of bucketYAML if it is not empty, waits until it is ready and returns its
// gRPC address.
func startSidecar(t *testing.T, prom *sidecarProm, bucketYAML string) (grpcAddr string, sc *process) {
	t.Helper()
	grpcAddr, httpAddr := freeAddr(t), freeAddr(t)
	args := []string{"sidecar",
		"--prometheus.url=" + prom.url,
		"--tsdb.path=" + prom.dataDir,
		"--grpc-address=" + grpcAddr,
		"--http-address=" + httpAddr,
		"--prometheus.refresh-interval=1s",
		"--shipper.interval=500ms",
	}
	if bucketYAML != "" {
		args = append(args, "--objstore.config="+bucketYAML)
	}
	sc = startProcess(t, "strata sidecar "+prom.addr, strataBin, args...)
	waitHTTP(t, sc, "http://"+httpAddr+"/-/ready", time.Minute)
	return grpcAddr, sc
}

// TestSidecarPromQLParity has a real Prometheus 2.42 scrape itself, with a
// sidecar next to it and a querier over the sidecar alone, and checks that
// the querier answers the parity expressions (see TestPromQLParity), and the
// series, labels and label values endpoints, exactly as Prometheus does. The
// only external label is the replica label, which the querier deduplicates
// away, so the answers must be identical.
func TestSidecarPromQLParity(t *testing.T) {
	t.Parallel() // see the note on the sidecar tests above sidecarProm
	ctx := context.Background()
	promAddr := freeAddr(t)
	cfgFile := filepath.Join(t.TempDir(), "prometheus.yml")
	writeSidecarPromConfig(t, cfgFile, `{prometheus_replica: "a"}`, promAddr)
	prom := startSidecarProm(t, promAddr, cfgFile, t.TempDir(),
		// To push the native histogram series, as TestPromQLParity does.
		"--web.enable-remote-write-receiver", "--enable-feature=native-histograms")
	scGRPC, _ := startSidecar(t, prom, "")
	queryURL := startQuerier(t, scGRPC)

	// The same windows, scrape counts and evaluation times as TestPromQLParity,
	// for the same reasons.
	const (
		window      = 20 * time.Second
		maxLookback = 15 * time.Second
	)
	wantScrapes := int((window+maxLookback)/time.Second) + 4
	require.Eventually(t, func() bool {
		res, err := fetchQuery(ctx, prom.url, "/api/v1/query", url.Values{"query": {`count_over_time(up{job="prometheus"}[1m])`}})
		return err == nil && len(res.series) == 1 && res.series[0].points[0].f >= float64(wantScrapes)
	}, 2*time.Minute, 500*time.Millisecond, "Prometheus scrapes itself %d times", wantScrapes)
	writeSidecarPromConfig(t, cfgFile, `{prometheus_replica: "a"}`)
	resp, err := http.Post(prom.url+"/-/reload", "", nil)
	require.NoError(t, err)
	_, _ = io.Copy(io.Discard, resp.Body)
	require.NoError(t, resp.Body.Close())
	require.Equal(t, http.StatusOK, resp.StatusCode)

	lastScrape := queryResult(t, prom.url, "/api/v1/query", url.Values{"query": {`up{job="prometheus"}[1m]`}})
	require.Len(t, lastScrape.series, 1)
	scrapes := lastScrape.series[0].points
	last := scrapes[len(scrapes)-1].t
	evalT := last - 500
	innerOffset := ((500-last%1000)%1000 + 1000) % 1000
	code, body, err := pushRW1(ctx, http.DefaultClient, prom.url+"/api/v1/write", "", parityNativeSeries(evalT-250, 40))
	require.NoError(t, err)
	require.True(t, code/100 == 2, "push native histograms: %d %s", code, body)

	evalTime := formatMillis(evalT)
	startTime := formatMillis(evalT - window.Milliseconds())
	for _, c := range parityCases(innerOffset) {
		t.Run(c.name, func(t *testing.T) {
			instant := url.Values{"query": {c.expr}, "time": {evalTime}}
			want := queryResult(t, prom.url, "/api/v1/query", instant)
			got := queryResult(t, queryURL, "/api/v1/query", instant)
			if c.empty {
				require.Empty(t, want.series, "Prometheus' answer to %s", c.expr)
			} else {
				require.True(t, want.resultType == "scalar" || len(want.series) > 0, "Prometheus answers %s with data", c.expr)
			}
			var fc floatComparer
			require.NoError(t, diffQueryResults(want, got, c.ordered, &fc), "instant query %s at %s\nPrometheus: %s\nsidecar:    %s", c.expr, evalTime, want.raw, got.raw)
			if c.instantOnly {
				return
			}
			rng := url.Values{"query": {c.expr}, "start": {startTime}, "end": {evalTime}, "step": {"1s"}}
			wantRange := queryResult(t, prom.url, "/api/v1/query_range", rng)
			gotRange := queryResult(t, queryURL, "/api/v1/query_range", rng)
			require.NoError(t, diffQueryResults(wantRange, gotRange, false, &fc), "range query %s over [%s, %s]\nPrometheus: %s\nsidecar:    %s", c.expr, startTime, evalTime, wantRange.raw, gotRange.raw)
		})
	}

	span := url.Values{"start": {startTime}, "end": {evalTime}}
	with := func(k, v string) url.Values {
		out := url.Values{"start": span["start"], "end": span["end"]}
		if k != "" {
			out.Set(k, v)
		}
		return out
	}
	t.Run("series", func(t *testing.T) {
		for _, m := range []string{`{job="prometheus"}`, `{__name__="parity_native_seconds"}`, `{__name__=~"prometheus_http_.+", handler="/metrics"}`} {
			want, _ := seriesResult(t, prom.url, with("match[]", m))
			got, _ := seriesResult(t, queryURL, with("match[]", m))
			require.NotEmpty(t, want, m)
			require.Equal(t, want, got, "series %s", m)
		}
	})
	t.Run("labels", func(t *testing.T) {
		for _, params := range []url.Values{with("", ""), with("match[]", `{job="prometheus"}`)} {
			want := stringsResult(t, prom.url, "/api/v1/labels", params)
			got := stringsResult(t, queryURL, "/api/v1/labels", params)
			require.NotEmpty(t, want)
			require.Equal(t, want, got, "labels %v", params)
		}
	})
	t.Run("label values", func(t *testing.T) {
		for _, name := range []string{"__name__", "job", "instance", "handler", "le", "quantile"} {
			for _, params := range []url.Values{with("", ""), with("match[]", `{job="prometheus"}`)} {
				p := "/api/v1/label/" + name + "/values"
				want := stringsResult(t, prom.url, p, params)
				got := stringsResult(t, queryURL, p, params)
				require.NotEmpty(t, want)
				require.Equal(t, want, got, "label values of %s %v", name, params)
			}
		}
	})
}

// TestSidecarHAPair runs two Prometheus servers that scrape the same targets
// (each other), told apart by prometheus_replica, each with a sidecar, and a
// querier over both sidecars: it must deduplicate the pair into one series
// per target, and keep the other external label.
func TestSidecarHAPair(t *testing.T) {
	t.Parallel() // see the note on the sidecar tests above sidecarProm
	ctx := context.Background()
	addrs := []string{freeAddr(t), freeAddr(t)}
	var endpoints []string
	for i, replica := range []string{"a", "b"} {
		cfgFile := filepath.Join(t.TempDir(), "prometheus.yml")
		writeSidecarPromConfig(t, cfgFile, fmt.Sprintf(`{cluster: "e2e", prometheus_replica: %q}`, replica), addrs...)
		prom := startSidecarProm(t, addrs[i], cfgFile, t.TempDir())
		grpcAddr, _ := startSidecar(t, prom, "")
		endpoints = append(endpoints, grpcAddr)
	}
	queryURL := startQuerier(t, endpoints...)

	up := func(dedup string) (parityResult, error) {
		return fetchQuery(ctx, queryURL, "/api/v1/query", url.Values{"query": {`up`}, "dedup": {dedup}})
	}
	// Both replicas have scraped both targets.
	require.Eventually(t, func() bool {
		res, err := up("false")
		return err == nil && len(res.series) == 4
	}, time.Minute, 200*time.Millisecond, "both replicas scraped both targets")

	res, err := up("true")
	require.NoError(t, err)
	var got []string
	for _, s := range res.series {
		got = append(got, s.labels)
	}
	slices.Sort(got)
	var want []string
	for _, a := range addrs {
		want = append(want, fmt.Sprintf(`{__name__="up", cluster="e2e", instance=%q, job="prometheus"}`, a))
	}
	slices.Sort(want)
	require.Equal(t, want, got, "one series per target, without the replica label")

	// Over a range, deduplication keeps one replica's samples at a time: never
	// more points than one replica scraped (one per second, here at a 1s step).
	rng, err := fetchQuery(ctx, queryURL, "/api/v1/query_range", url.Values{
		"query": {`count_over_time(up[5s])`}, "start": {formatMillis(time.Now().Add(-3 * time.Second).UnixMilli())},
		"end": {formatMillis(time.Now().UnixMilli())}, "step": {"1s"},
	})
	require.NoError(t, err)
	require.Len(t, rng.series, 2)
	for _, s := range rng.series {
		for _, p := range s.points {
			require.LessOrEqual(t, p.f, 6.0, "%s counts both replicas' samples", s.labels)
		}
	}
}

// TestSidecarUploadsBlocks gives a real Prometheus two finished 2h blocks
// (made with promtool from OpenMetrics, before it starts), runs a sidecar with
// a real MinIO bucket, and checks that both blocks arrive with a correct
// meta.json, and that a store gateway over the bucket serves exactly the
// samples Prometheus holds.
func TestSidecarUploadsBlocks(t *testing.T) {
	t.Parallel() // see the note on the sidecar tests above sidecarProm
	ctx := context.Background()
	promtool := requireBinary(t, "promtool")

	// Two 2h blocks well inside Prometheus' retention, one sample every 15s
	// for two series.
	const hour = int64(time.Hour / time.Millisecond)
	base := (time.Now().Add(-12*time.Hour).UnixMilli() / (2 * hour)) * (2 * hour)
	var om strings.Builder
	om.WriteString("# TYPE e2e_sidecar_metric gauge\n")
	for ts := base; ts < base+4*hour; ts += 15_000 {
		for _, s := range []string{"x", "y"} {
			fmt.Fprintf(&om, "e2e_sidecar_metric{series=%q} %d %d.%03d\n", s, ts/15_000%1000, ts/1000, ts%1000)
		}
	}
	om.WriteString("# EOF\n")
	omFile := filepath.Join(t.TempDir(), "data.om")
	require.NoError(t, os.WriteFile(omFile, []byte(om.String()), 0o644))
	dataDir := t.TempDir()
	out, err := exec.Command(promtool, "tsdb", "create-blocks-from", "openmetrics", omFile, dataDir).CombinedOutput()
	require.NoError(t, err, "promtool: %s", out)
	var blocks []ulid.ULID
	entries, err := os.ReadDir(dataDir)
	require.NoError(t, err)
	for _, e := range entries {
		if id, err := ulid.ParseStrict(e.Name()); err == nil {
			blocks = append(blocks, id)
		}
	}
	require.Len(t, blocks, 2, "promtool wrote two 2h blocks: %s", out)

	minio := miniotest.Start(t)
	bucketYAML := minio.NewBucketYAML(t, "sidecar")
	bkt, err := objstore.NewBucket(ctx, bucketYAML, nil, nil)
	require.NoError(t, err)

	promAddr := freeAddr(t)
	cfgFile := filepath.Join(t.TempDir(), "prometheus.yml")
	ext := map[string]string{"cluster": "e2e", "prometheus_replica": "a"}
	writeSidecarPromConfig(t, cfgFile, `{cluster: "e2e", prometheus_replica: "a"}`)
	prom := startSidecarProm(t, promAddr, cfgFile, dataDir)
	startSidecar(t, prom, string(bucketYAML))

	metaOf := func(id ulid.ULID) (*block.Meta, error) {
		r, err := bkt.Get(ctx, path.Join(id.String(), block.MetaFilename))
		if err != nil {
			return nil, err
		}
		defer func() { _ = r.Close() }()
		var m block.Meta
		return &m, json.NewDecoder(r).Decode(&m)
	}
	require.Eventually(t, func() bool {
		for _, id := range blocks {
			if ok, err := bkt.Exists(ctx, path.Join(id.String(), block.MetaFilename)); err != nil || !ok {
				return false
			}
		}
		return true
	}, time.Minute, 200*time.Millisecond, "both blocks are uploaded")
	for _, id := range blocks {
		m, err := metaOf(id)
		require.NoError(t, err)
		require.Equal(t, id, m.ULID)
		require.Equal(t, ext, m.Thanos.Labels)
		require.Equal(t, block.SourceSidecar, m.Thanos.Source)
		require.Equal(t, int64(0), m.Thanos.Downsample.Resolution)
		require.Equal(t, 1, m.Compaction.Level)
		require.Zero(t, m.MinTime%(2*hour), "a 2h block")
		require.LessOrEqual(t, m.MaxTime, m.MinTime+2*hour, "a 2h block")
		var files []string
		for _, f := range m.Thanos.Files {
			attrs, err := bkt.Attributes(ctx, path.Join(id.String(), f.RelPath))
			require.NoError(t, err, f.RelPath)
			require.Equal(t, f.SizeBytes, attrs.Size, f.RelPath)
			files = append(files, f.RelPath)
		}
		require.Equal(t, []string{"chunks/000001", "index"}, files)
	}

	storeGRPC, storeHTTP := freeAddr(t), freeAddr(t)
	store := startProcess(t, "strata store", strataBin, "store",
		"--objstore.config="+string(bucketYAML),
		"--data-dir="+t.TempDir(),
		"--grpc-address="+storeGRPC,
		"--http-address="+storeHTTP,
	)
	waitHTTP(t, store, "http://"+storeHTTP+"/-/ready", time.Minute)
	queryURL := startQuerier(t, storeGRPC)

	// Every raw sample of the blocks, from Prometheus and from the bucket. The
	// store gateway's series keep the cluster label, which Prometheus' API does
	// not show; the replica label is deduplicated away.
	instant := url.Values{"query": {`e2e_sidecar_metric[4h]`}, "time": {formatMillis(base + 4*hour - 1)}}
	want := queryResult(t, prom.url, "/api/v1/query", instant)
	require.Len(t, want.series, 2)
	require.Equal(t, 2*int(4*hour/15_000), want.points())
	var got parityResult
	require.Eventually(t, func() bool {
		got, err = fetchQuery(ctx, queryURL, "/api/v1/query", instant)
		return err == nil && got.points() == want.points()
	}, time.Minute, 200*time.Millisecond, "the store gateway serves the uploaded blocks")
	for i := range got.series {
		require.Contains(t, got.series[i].labels, `cluster="e2e", `)
		got.series[i].labels = strings.Replace(got.series[i].labels, `cluster="e2e", `, "", 1)
	}
	var fc floatComparer
	require.NoError(t, diffQueryResults(want, got, false, &fc))
	require.Zero(t, fc.inexact, "raw samples are bit-identical")
}

// TestSidecarRefusesLocalCompaction starts a sidecar that would upload blocks
// next to a real Prometheus that compacts locally (its default block
// durations): the sidecar must exit and say how to fix it.
func TestSidecarRefusesLocalCompaction(t *testing.T) {
	t.Parallel() // see the note on the sidecar tests above sidecarProm
	promAddr := freeAddr(t)
	cfgFile := filepath.Join(t.TempDir(), "prometheus.yml")
	writeSidecarPromConfig(t, cfgFile, `{cluster: "e2e"}`)
	dataDir := t.TempDir()
	prom := startProcess(t, "prometheus", requireBinary(t, "prometheus"),
		"--config.file="+cfgFile, "--storage.tsdb.path="+dataDir, "--web.listen-address="+promAddr)
	waitHTTP(t, prom, "http://"+promAddr+"/-/ready", time.Minute)

	sc := startProcess(t, "strata sidecar", strataBin, "sidecar",
		"--prometheus.url=http://"+promAddr,
		"--tsdb.path="+dataDir,
		"--objstore.config=type: FILESYSTEM\nconfig: {directory: "+t.TempDir()+"}",
		"--grpc-address="+freeAddr(t),
		"--http-address="+freeAddr(t),
	)
	select {
	case <-sc.done:
	case <-time.After(time.Minute):
		t.Fatal("the sidecar kept running next to a compacting Prometheus")
	}
	require.Error(t, sc.err)
	require.Contains(t, sc.out.String(), "local compaction is on")
	require.Contains(t, sc.out.String(), "--storage.tsdb.min-block-duration=2h --storage.tsdb.max-block-duration=2h")
}
