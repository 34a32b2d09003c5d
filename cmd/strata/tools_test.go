package main

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/alecthomas/kingpin/v2"
	"github.com/stretchr/testify/require"

	"github.com/stratametrics/strata/loadgen"
)

func parseBenchWrite(t *testing.T, args ...string) *benchWriteConfig {
	t.Helper()
	app := kingpin.New("strata", "")
	cmd, c := registerBenchWrite(app)
	require.Equal(t, "tools bench write", cmd.FullCommand())
	got, err := app.Parse(append([]string{"tools", "bench", "write"}, args...))
	require.NoError(t, err)
	require.Equal(t, cmd.FullCommand(), got)
	return c
}

func TestBenchWriteFlags(t *testing.T) {
	c := parseBenchWrite(t)
	require.Equal(t, []string{"http://127.0.0.1:19291/api/v1/receive"}, c.cfg.URLs)
	require.Equal(t, loadgen.DefaultSeries, c.cfg.Series)
	require.Equal(t, loadgen.DefaultBatchSize, c.cfg.BatchSize)
	require.Equal(t, loadgen.DefaultConcurrency, c.cfg.Concurrency)
	require.Equal(t, "rw1", c.protocol)
	require.Equal(t, 15*time.Second, c.cfg.ScrapeInterval)
	require.Equal(t, 10*time.Minute, c.cfg.ChurnInterval)
	require.Equal(t, 10*time.Second, c.cfg.Warmup)
	require.Equal(t, time.Minute, c.cfg.Duration)
	require.Equal(t, 30*time.Second, c.cfg.RequestTimeout)
	require.Equal(t, 2*time.Minute, c.cfg.ReadBackTimeout)
	require.Equal(t, "THANOS-TENANT", c.cfg.TenantHeader)
	require.Equal(t, 1, c.cfg.Tenants)
	require.Equal(t, "text", c.format)
	require.Empty(t, c.cfg.PIDs)

	c = parseBenchWrite(t, "--url=http://a/api/v1/receive", "--url=http://b/api/v1/receive", "--pid=1", "--pid=2",
		"--protocol=rw2", "--churn=0.1", "--tenants=3", "--format=json", "--rate=1000")
	require.Equal(t, []string{"http://a/api/v1/receive", "http://b/api/v1/receive"}, c.cfg.URLs)
	require.Equal(t, []int{1, 2}, c.cfg.PIDs)
	require.Equal(t, "rw2", c.protocol)
	require.Equal(t, 0.1, c.cfg.Churn)
	require.Equal(t, 3, c.cfg.Tenants)
	require.Equal(t, "json", c.format)
	require.Equal(t, 1000.0, c.cfg.Rate)
}

func TestBenchWriteRejects(t *testing.T) {
	for _, c := range []struct {
		name    string
		args    []string
		wantErr string
	}{
		{"both bearer tokens", []string{"--bearer-token=a", "--bearer-token-file=/nonexistent"}, "only one of"},
		{"missing token file", []string{"--bearer-token-file=/nonexistent"}, "read bearer token"},
		{"bad start time", []string{"--start-time=yesterday"}, "neither RFC 3339 nor Unix seconds"},
		{"bad URL", []string{"--url=localhost:19291"}, "not an http or https URL"},
		{"missing CA", []string{"--tls.ca-file=/nonexistent"}, "TLS configuration"},
	} {
		t.Run(c.name, func(t *testing.T) {
			cfg := parseBenchWrite(t, c.args...)
			var out strings.Builder
			err := runBenchWrite(context.Background(), cfg, nil, &out)
			require.ErrorContains(t, err, c.wantErr)
			require.Empty(t, out.String())
		})
	}
}

func TestParseStartTime(t *testing.T) {
	now := time.UnixMilli(1_800_000_000_123)
	for _, c := range []struct {
		in      string
		want    time.Time
		wantErr bool
	}{
		{"", now, false},
		{"2026-01-02T03:04:05Z", time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), false},
		{"2026-01-02T03:04:05.5+01:00", time.Date(2026, 1, 2, 2, 4, 5, 500e6, time.UTC), false},
		{"1700000000", time.UnixMilli(1_700_000_000_000), false},
		{"1700000000.25", time.UnixMilli(1_700_000_000_250), false},
		{"soon", time.Time{}, true},
	} {
		got, err := parseStartTime(c.in, now)
		if c.wantErr {
			require.Error(t, err, c.in)
			continue
		}
		require.NoError(t, err, c.in)
		require.True(t, c.want.Equal(got), "%q: %s, want %s", c.in, got, c.want)
	}
}
