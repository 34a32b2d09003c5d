package sidecar

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/oklog/ulid/v2"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/tsdb"
	"github.com/stretchr/testify/require"

	"github.com/stratametrics/strata/block"
	"github.com/stratametrics/strata/block/blocktest"
	"github.com/stratametrics/strata/objstore"
	"github.com/stratametrics/strata/storeapi"
	"github.com/stratametrics/strata/storeapi/infopb"
	"github.com/stratametrics/strata/storeapi/storeapitest"
	"github.com/stratametrics/strata/storeapi/storepb"
	"github.com/stratametrics/strata/tsdbshard"
)

// openTSDB returns an empty TSDB in a temporary directory, closed when the
// test ends.
func openTSDB(t *testing.T) *tsdb.DB {
	t.Helper()
	db, err := tsdb.Open(t.TempDir(), nil, nil, tsdb.DefaultOptions(), nil)
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, db.Close()) })
	return db
}

// TestAcceptance runs the Store API contract against a sidecar of a
// Prometheus that holds the fixture in its head.
func TestAcceptance(t *testing.T) {
	storeapitest.AcceptanceTest(t, func(t *testing.T, data []storeapitest.Series, ext labels.Labels) (storepb.StoreClient, infopb.InfoClient) {
		db := openTSDB(t)
		app := db.AppenderV2(context.Background())
		require.NoError(t, storeapitest.AppendAll(app, data))
		require.NoError(t, app.Commit())
		prom := newTestPrometheus(t, db, ext)
		s, err := New(Config{PrometheusURL: prom.URL, RefreshInterval: 50 * time.Millisecond}, nil, nil)
		require.NoError(t, err)
		runSidecar(t, s)
		return storeapitest.Serve(t, s.Server(), s.Server())
	})
}

// TestSeriesWithoutChunks checks that a Series request with skip_chunks is
// answered from Prometheus' series API, not by reading chunks.
func TestSeriesWithoutChunks(t *testing.T) {
	db := openTSDB(t)
	app := db.Appender(context.Background())
	for i, job := range []string{"api", "web"} {
		_, err := app.Append(0, labels.FromStrings("__name__", "up", "job", job), 1000, float64(i))
		require.NoError(t, err)
	}
	require.NoError(t, app.Commit())
	prom := newTestPrometheus(t, db, labels.FromStrings("cluster", "eu"))
	s, err := New(Config{PrometheusURL: prom.URL}, nil, nil)
	require.NoError(t, err)
	runSidecar(t, s)
	store, _ := storeapitest.Serve(t, s.Server(), s.Server())

	stream, err := store.Series(context.Background(), &storepb.SeriesRequest{
		MinTime: 0, MaxTime: 2000, SkipChunks: true,
		Matchers: []*storepb.LabelMatcher{{Type: storepb.LabelMatcher_NEQ, Name: "job", Value: "web"}},
	})
	require.NoError(t, err)
	var got []string
	for {
		resp, err := stream.Recv()
		if err == io.EOF {
			break
		}
		require.NoError(t, err)
		require.Empty(t, resp.GetSeries().GetChunks())
		got = append(got, storeapi.LabelsFromProto(resp.GetSeries().GetLabels()).String())
	}
	require.Equal(t, []string{`{__name__="up", cluster="eu", job="api"}`}, got)
	prom.set(func(p *testPrometheus) { require.Equal(t, 1, p.series) })
}

// TestReadiness checks that the sidecar is ready only while Prometheus is,
// and follows changes of Prometheus' external labels.
func TestReadiness(t *testing.T) {
	prom := newTestPrometheus(t, openTSDB(t), labels.FromStrings("cluster", "eu", "prometheus_replica", "a"))
	prom.set(func(p *testPrometheus) { p.ready = false })
	s, err := New(Config{PrometheusURL: prom.URL, RefreshInterval: 20 * time.Millisecond}, nil, nil)
	require.NoError(t, err)

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	defer func() {
		cancel()
		require.NoError(t, <-done)
	}()
	_, info := storeapitest.Serve(t, s.Server(), s.Server())

	// Not ready, and nothing to advertise, while Prometheus is not ready. The
	// sidecar polls Prometheus several times in this window.
	require.Never(t, s.Ready, 300*time.Millisecond, testPoll)
	resp, err := info.Info(ctx, &infopb.InfoRequest{})
	require.NoError(t, err)
	require.Equal(t, ComponentType, resp.GetComponentType())
	require.Empty(t, resp.GetLabelSets())

	prom.set(func(p *testPrometheus) { p.ready = true })
	require.Eventually(t, s.Ready, testTimeout, testPoll)
	require.Equal(t, `{cluster="eu", prometheus_replica="a"}`, s.ExternalLabels().String())
	require.Equal(t, map[string]string{"cluster": "eu", "prometheus_replica": "a"}, s.Status().ExternalLabels)

	prom.set(func(p *testPrometheus) { p.ready = false })
	require.Eventually(t, func() bool { return !s.Ready() }, testTimeout, testPoll)

	prom.set(func(p *testPrometheus) { p.ready, p.ext = true, labels.FromStrings("cluster", "us") })
	require.Eventually(t, func() bool {
		resp, err := info.Info(ctx, &infopb.InfoRequest{})
		require.NoError(t, err)
		return s.Ready() && len(resp.GetLabelSets()) == 1 &&
			storeapi.LabelsFromProto(resp.GetLabelSets()[0].GetLabels()).String() == `{cluster="us"}`
	}, testTimeout, testPoll)
}

// TestStartChecks checks the configurations Run refuses at start, and that it
// explains the fix.
func TestStartChecks(t *testing.T) {
	cases := []struct {
		name    string
		ext     labels.Labels
		flags   map[string]string
		bucket  bool
		ready   bool
		timeout time.Duration
		wantErr error
		wantMsg string
	}{
		{
			name: "compaction on", ext: labels.FromStrings("cluster", "eu"), bucket: true, ready: true,
			flags:   map[string]string{minBlockDurationFlag: "2h", maxBlockDurationFlag: "1d"},
			wantErr: ErrCompactionEnabled, wantMsg: "--storage.tsdb.min-block-duration=2h --storage.tsdb.max-block-duration=2h",
		},
		{
			name: "compaction flags missing", ext: labels.FromStrings("cluster", "eu"), bucket: true, ready: true,
			flags: map[string]string{}, wantErr: ErrCompactionEnabled,
		},
		{
			name: "no external labels", ext: labels.EmptyLabels(), ready: true,
			wantErr: ErrNoExternalLabels, wantMsg: "global.external_labels",
		},
		{
			name: "not ready in time", ext: labels.FromStrings("cluster", "eu"), timeout: 100 * time.Millisecond,
			wantErr: context.DeadlineExceeded, wantMsg: "503",
		},
		{
			name: "compaction on without a bucket", ext: labels.FromStrings("cluster", "eu"), ready: true,
			flags: map[string]string{minBlockDurationFlag: "2h", maxBlockDurationFlag: "1d"},
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			prom := newTestPrometheus(t, openTSDB(t), c.ext)
			prom.set(func(p *testPrometheus) {
				p.ready = c.ready
				if c.flags != nil {
					p.flags = c.flags
				}
			})
			cfg := Config{PrometheusURL: prom.URL, RefreshInterval: 20 * time.Millisecond, ReadyTimeout: c.timeout}
			if c.bucket {
				bkt, err := objstore.NewFilesystem(t.TempDir())
				require.NoError(t, err)
				cfg.Bucket, cfg.TSDBPath = bkt, t.TempDir()
			}
			s, err := New(cfg, nil, nil)
			require.NoError(t, err)
			if c.wantErr == nil {
				runSidecar(t, s)
				return
			}
			err = s.Run(context.Background())
			require.ErrorIs(t, err, c.wantErr)
			require.Contains(t, err.Error(), c.wantMsg)
			require.False(t, s.Ready())
		})
	}
}

// writeLevel rewrites the Prometheus meta.json of a local block with another
// compaction level.
func writeLevel(t *testing.T, blockDir string, level int) {
	t.Helper()
	m, err := block.ReadMetaFromDir(blockDir)
	require.NoError(t, err)
	m.Compaction.Level = level
	b, err := json.Marshal(m.BlockMeta)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(blockDir, block.MetaFilename), b, 0o644))
}

// bucketMeta returns the meta.json of block id in bkt, or nil if it has none.
func bucketMeta(t *testing.T, bkt objstore.Bucket, id ulid.ULID) *block.Meta {
	t.Helper()
	ctx := context.Background()
	name := path.Join(id.String(), block.MetaFilename)
	ok, err := bkt.Exists(ctx, name)
	require.NoError(t, err)
	if !ok {
		return nil
	}
	r, err := bkt.Get(ctx, name)
	require.NoError(t, err)
	defer func() { require.NoError(t, r.Close()) }()
	var m block.Meta
	require.NoError(t, json.NewDecoder(r).Decode(&m))
	return &m
}

// TestShip checks that the sidecar uploads Prometheus' finished level-1
// blocks with its external labels, skips unfinished and locally compacted
// ones, and after a restart uploads only what it had not uploaded.
func TestShip(t *testing.T) {
	const hour = int64(time.Hour / time.Millisecond)
	dataDir := t.TempDir()
	first := blocktest.Create(t, dataDir, 0, 2*hour, 3)
	second := blocktest.Create(t, dataDir, 2*hour, 4*hour, 3)
	compacted := blocktest.Create(t, dataDir, 4*hour, 10*hour, 3)
	writeLevel(t, filepath.Join(dataDir, compacted.String()), 2)
	// A block Prometheus is still writing: no meta.json yet.
	unfinished := blocktest.Create(t, dataDir, 10*hour, 12*hour, 3)
	unfinishedMeta := filepath.Join(dataDir, unfinished.String(), block.MetaFilename)
	metaBytes, err := os.ReadFile(unfinishedMeta)
	require.NoError(t, err)
	require.NoError(t, os.Remove(unfinishedMeta))
	require.NoError(t, os.Mkdir(filepath.Join(dataDir, ulid.Make().String()+".tmp-for-creation"), 0o755))

	fs, err := objstore.NewFilesystem(t.TempDir())
	require.NoError(t, err)
	ext := labels.FromStrings("cluster", "eu", "prometheus_replica", "a")
	prom := newTestPrometheus(t, openTSDB(t), ext)

	startSidecar := func() (*blocktest.RecordingBucket, func()) {
		bkt := blocktest.NewRecordingBucket(fs)
		s, err := New(Config{PrometheusURL: prom.URL, TSDBPath: dataDir, Bucket: bkt, ShipInterval: 20 * time.Millisecond}, nil, nil)
		require.NoError(t, err)
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- s.Run(ctx) }()
		return bkt, func() {
			cancel()
			require.NoError(t, <-done)
		}
	}

	bkt, stop := startSidecar()
	require.Eventually(t, func() bool {
		return bucketMeta(t, fs, first) != nil && bucketMeta(t, fs, second) != nil
	}, testTimeout, testPoll, "the finished level-1 blocks are uploaded")
	stop()
	for _, id := range []ulid.ULID{first, second} {
		m := bucketMeta(t, fs, id)
		require.Equal(t, ext.Map(), m.Thanos.Labels)
		require.Equal(t, block.SourceSidecar, m.Thanos.Source)
		require.NotEmpty(t, m.Thanos.Files)
		require.Equal(t, 1, m.Compaction.Level)
	}
	require.Nil(t, bucketMeta(t, fs, compacted), "a locally compacted block is not uploaded")
	require.Nil(t, bucketMeta(t, fs, unfinished), "an unfinished block is not uploaded")
	firstUploads := bkt.Uploads()
	for _, name := range firstUploads {
		id := strings.SplitN(name, "/", 2)[0]
		require.Contains(t, []string{first.String(), second.String()}, id, "uploaded %s", name)
	}
	state, err := os.ReadFile(filepath.Join(dataDir, tsdbshard.ShipperStateFilename))
	require.NoError(t, err)
	require.Contains(t, string(state), first.String())
	require.Contains(t, string(state), second.String())

	// Prometheus finishes its block while the sidecar is down; after the
	// restart only that block goes up.
	require.NoError(t, os.WriteFile(unfinishedMeta, metaBytes, 0o644))
	bkt, stop = startSidecar()
	defer stop()
	require.Eventually(t, func() bool { return bucketMeta(t, fs, unfinished) != nil }, testTimeout, testPoll)
	for _, name := range bkt.Uploads() {
		require.True(t, strings.HasPrefix(name, unfinished.String()+"/"), "after the restart %s was uploaded again", name)
	}
	require.False(t, slices.ContainsFunc(bkt.Uploads(), func(n string) bool { return strings.HasPrefix(n, compacted.String()) }))
}

func TestCheckCompactionOff(t *testing.T) {
	cases := []struct {
		name    string
		flags   map[string]string
		wantErr bool
	}{
		{"equal", map[string]string{minBlockDurationFlag: "2h", maxBlockDurationFlag: "2h"}, false},
		{"equal, other units", map[string]string{minBlockDurationFlag: "2h", maxBlockDurationFlag: "120m"}, false},
		{"not 2h but equal", map[string]string{minBlockDurationFlag: "1h", maxBlockDurationFlag: "1h"}, false},
		{"default max", map[string]string{minBlockDurationFlag: "2h", maxBlockDurationFlag: "3d"}, true},
		{"missing", map[string]string{minBlockDurationFlag: "2h"}, true},
		{"unparsable", map[string]string{minBlockDurationFlag: "2x", maxBlockDurationFlag: "2h"}, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := checkCompactionOff(c.flags, slog.New(slog.DiscardHandler))
			if c.wantErr {
				require.Error(t, err)
				return
			}
			require.NoError(t, err)
		})
	}
}

func TestParseExternalLabels(t *testing.T) {
	cases := []struct {
		name    string
		yaml    string
		want    string
		wantErr bool
	}{
		{"labels", "global:\n  scrape_interval: 1s\n  external_labels:\n    replica: a\n    cluster: eu\nscrape_configs: []\n", `{cluster="eu", replica="a"}`, false},
		{"none", "global:\n  scrape_interval: 1s\n", `{}`, false},
		{"empty value", "global:\n  external_labels:\n    cluster: ''\n", "", true},
		{"not yaml", "global: [", "", true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ls, err := parseExternalLabels([]byte(c.yaml))
			if c.wantErr {
				require.Error(t, err)
				return
			}
			require.NoError(t, err)
			require.Equal(t, c.want, ls.String())
		})
	}
}

func TestSelector(t *testing.T) {
	m := func(typ labels.MatchType, name, value string) *labels.Matcher {
		return labels.MustNewMatcher(typ, name, value)
	}
	cases := []struct {
		name string
		ms   []*labels.Matcher
		want string
		all  bool
	}{
		{"none", nil, `{__name__=~".+"}`, true},
		{"all-series marker", []*labels.Matcher{m(labels.MatchEqual, "", "")}, `{__name__=~".+"}`, true},
		{"plain", []*labels.Matcher{m(labels.MatchEqual, "job", "a\"b"), m(labels.MatchRegexp, "i", "x.+")}, `{job="a\"b",i=~"x.+"}`, false},
		{"only empty-matching", []*labels.Matcher{m(labels.MatchNotEqual, "job", "web")}, `{job!="web",__name__=~".+"}`, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, all := selector(c.ms)
			require.Equal(t, c.want, got)
			require.Equal(t, c.all, all)
			require.Len(t, remoteMatchers(c.ms), strings.Count(c.want, ",")+1)
		})
	}
}

func TestFormatMillis(t *testing.T) {
	for ms, want := range map[int64]string{0: "0.000", 1500: "1.500", -1500: "-1.500", 1_699_999_200_007: "1699999200.007"} {
		require.Equal(t, want, formatMillis(ms))
	}
}
