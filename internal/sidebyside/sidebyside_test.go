package sidebyside

import (
	"context"
	"errors"
	"log/slog"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/stratametrics/strata/loadgen"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// requireBinary fails, never skips, when an external binary is missing.
func requireBinary(t *testing.T, name string) {
	t.Helper()
	_, err := exec.LookPath(name)
	require.NoError(t, err, "%s is required: run .ci/install-deps (Debian's %s package)", name, name)
}

// TestRunAllSystems runs the whole harness at small sizes against every
// system, with the real binaries, and checks that each was measured.
func TestRunAllSystems(t *testing.T) {
	requireBinary(t, "prometheus")
	requireBinary(t, "victoria-metrics")

	strata := filepath.Join(t.TempDir(), "strata")
	build := exec.Command("go", "build", "-o", strata, "github.com/stratametrics/strata/cmd/strata")
	out, err := build.CombinedOutput()
	require.NoError(t, err, "build strata:\n%s", out)

	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	rep, err := Run(ctx, Config{
		Strata:          strata,
		Prometheus:      "prometheus",
		VictoriaMetrics: "victoria-metrics",
		Load: Load{
			Series:      2000,
			BatchSize:   500,
			Concurrency: 2,
			Duration:    2 * time.Second,
			Warmup:      time.Second,
		},
		TempDir: t.TempDir(),
		Logger:  slog.New(slog.NewTextHandler(t.Output(), nil)),
	})
	require.NoError(t, err)

	require.Len(t, rep.Results, len(Systems()))
	for i, res := range rep.Results {
		require.Equal(t, Systems()[i], res.System)
		require.NoError(t, res.Err, res.System)
		l := res.Load
		require.Positive(t, l.AckedSamples, res.System)
		require.Zero(t, l.FailedRequests(), "%s: failed requests %v: %s", res.System, l.Errors, l.ErrorMessages)
		require.True(t, l.ReadBackComplete, "%s: read back %v of %v samples", res.System, l.ReadBackSamples, l.AckedSamplesTotal)
		require.Equal(t, l.AckedSamplesTotal, l.ReadBackSamples, res.System)
		require.Positive(t, l.ServerCPUSeconds, res.System)
		require.Positive(t, l.ServerRSSBytes, res.System)
		require.False(t, math.IsNaN(res.OtherCPUSeconds), "%s: CPU of other processes not measured", res.System)
	}
	require.False(t, rep.Failed())

	md := filepath.Join(t.TempDir(), "benchmarks.md")
	require.NoError(t, rep.WriteMarkdown(md))
	b, err := os.ReadFile(md)
	require.NoError(t, err)
	for _, s := range Systems() {
		require.Contains(t, string(b), "\n| "+s+" | ", "row of %s", s)
	}
	require.Contains(t, string(b), "\n"+NotesMarker+"\n")
}

func TestWriteMarkdownKeepsNotes(t *testing.T) {
	rep := &Report{
		Start: time.Date(2026, 1, 2, 3, 4, 0, 0, time.UTC),
		Load:  DefaultLoad(),
		Results: []Result{
			{System: StrataRF1, Load: &LoadReport{loadgen.Report{AckedSamplesPerSecond: 1e6, ServerSamplesPerCPUSecond: 5e5, ServerRSSBytes: 4e8, ActiveSeries: 1e5, LatencyP99Seconds: 0.02, ReadBackComplete: true}}},
			{System: VictoriaMetrics, Err: errors.New("victoria-metrics binary: not found\nmore")},
		},
	}
	for _, tc := range []struct {
		name     string
		existing *string
		notes    string
	}{
		{name: "no file", notes: ""},
		{name: "no marker", existing: ptr("# old\n\nno marker here\n"), notes: ""},
		{name: "notes kept verbatim", existing: ptr("# old\n" + NotesMarker + "\nfirst\n\n| a | b |\n  trailing  "), notes: "first\n\n| a | b |\n  trailing  "},
		{name: "marker at the end", existing: ptr("# old\n" + NotesMarker), notes: ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "benchmarks.md")
			if tc.existing != nil {
				require.NoError(t, os.WriteFile(path, []byte(*tc.existing), 0o644))
			}
			require.NoError(t, rep.WriteMarkdown(path))
			b, err := os.ReadFile(path)
			require.NoError(t, err)
			_, notes, ok := strings.Cut(string(b), "\n"+NotesMarker+"\n")
			require.True(t, ok)
			require.Equal(t, tc.notes, notes)
			require.Contains(t, string(b), "| strata-rf1 | 1,000,000 | 500,000 | 4,000 B | 20 ms | 0 |")
			require.Contains(t, string(b), "| victoriametrics | **failed**: victoria-metrics binary: not found | ")

			// Regenerating keeps the notes again.
			require.NoError(t, rep.WriteMarkdown(path))
			again, err := os.ReadFile(path)
			require.NoError(t, err)
			require.Equal(t, string(b), string(again))
		})
	}
}

func TestParseLoadReport(t *testing.T) {
	full := `{"protocol":"rw1","urls":["http://a"],"series":10,"batch_size":5,"concurrency":1,"tenants":1,
		"scrape_interval_seconds":15,"warmup_seconds":1,"duration_seconds":2,"rounds":3,"first_timestamp_ms":1,
		"last_timestamp_ms":2,"acked_samples":20,"acked_samples_total":30,"acked_samples_per_second":10,
		"requests":6,"latency_p50_seconds":0.001,"latency_p99_seconds":0.002,"errors":{"503":2},
		"failed_samples":10,"error_messages":["x"],"wire_bytes_per_sample":1.5,"client_cpu_seconds":0.1,
		"server_cpu_seconds":0.2,"server_rss_bytes":1000,"server_samples_per_cpu_second":100,
		"active_series":10,"series_created":10,"read_back_samples":30,"read_back_complete":true}`
	for _, tc := range []struct {
		name    string
		in      string
		wantErr string
	}{
		{name: "complete", in: full},
		{name: "missing key", in: strings.Replace(full, `"read_back_complete":true`, `"other":true`, 1), wantErr: `lacks ["read_back_complete"]`},
		{name: "not json", in: "error: connection refused", wantErr: "decode load report"},
		{name: "wrong type", in: strings.Replace(full, `"series":10`, `"series":"ten"`, 1), wantErr: "decode load report"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, err := parseLoadReport([]byte(tc.in))
			if tc.wantErr != "" {
				require.ErrorContains(t, err, tc.wantErr)
				return
			}
			require.NoError(t, err)
			require.Equal(t, 2.0, r.FailedRequests())
			require.Equal(t, 100.0, r.RSSPerSeries())
			require.True(t, r.ReadBackComplete)
		})
	}
}

func ptr[T any](v T) *T { return &v }

func TestBusyMachineIsFlagged(t *testing.T) {
	load := Load{Series: 1, BatchSize: 1, Concurrency: 1, Duration: 10 * time.Second}
	for _, tc := range []struct {
		name   string
		others float64
		busy   bool
	}{
		{name: "quiet", others: 0.5},
		{name: "unknown", others: math.NaN()},
		{name: "busy", others: 1.5, busy: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rep := &Report{Env: Environment{Cores: 2}, Load: load, Results: []Result{
				{System: StrataRF1, Load: &LoadReport{}, OtherCPUSeconds: tc.others},
			}}
			// 5% of 2 cores for 10 s is 1 CPU-second.
			require.Equal(t, tc.busy, strings.Contains(rep.Tables(), "The machine was not quiet"))
		})
	}
}
