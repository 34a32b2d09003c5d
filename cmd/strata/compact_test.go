package main

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestCompactFlags(t *testing.T) {
	c, err := parseCompactArgs(nil)
	require.NoError(t, err)
	require.Equal(t, "./data/compact", c.dataDir)
	require.Equal(t, ":10912", c.httpAddress)
	require.False(t, c.wait)
	require.Equal(t, 5*time.Minute, time.Duration(c.waitInterval))
	require.Equal(t, 30*time.Minute, time.Duration(c.consistencyDelay))
	require.Equal(t, 48*time.Hour, time.Duration(c.deleteDelay))
	require.Equal(t, 48*time.Hour, time.Duration(c.partialUploadAge))
	require.Zero(t, c.retentionRaw)
	require.Zero(t, c.retention5m)
	require.Zero(t, c.retention1h)
	require.Empty(t, c.replicaLabels)
	require.False(t, c.disableDownsampling)
	require.Equal(t, 1, c.concurrency)
	require.Equal(t, 20, c.blockSyncConcurrency)
	cfg, err := c.compactorConfig()
	require.NoError(t, err)
	require.Equal(t, 48*time.Hour, cfg.PartialUploadAge)

	c, err = parseCompactArgs([]string{
		"--wait", "--wait-interval=1m", "--consistency-delay=72h", "--compact.partial-upload-age=1h",
		"--retention.resolution-raw=30d", "--retention.resolution-5m=90d", "--retention.resolution-1h=2y",
		"--deduplication.replica-label=receive_replica", "--deduplication.replica-label=prometheus_replica",
		"--downsampling.disable", "--compact.concurrency=4",
	})
	require.NoError(t, err)
	cfg, err = c.compactorConfig()
	require.NoError(t, err)
	require.True(t, c.wait)
	require.Equal(t, time.Minute, time.Duration(c.waitInterval))
	require.Equal(t, 72*time.Hour, cfg.PartialUploadAge, "never below the consistency delay")
	require.Equal(t, 30*24*time.Hour, cfg.RetentionRaw)
	require.Equal(t, 90*24*time.Hour, cfg.Retention5m)
	require.Equal(t, 2*365*24*time.Hour, cfg.Retention1h)
	require.Equal(t, []string{"receive_replica", "prometheus_replica"}, cfg.ReplicaLabels)
	require.True(t, cfg.DisableDownsampling)
	require.Equal(t, 4, cfg.Concurrency)

	for _, args := range [][]string{{"--delete-delay=soon"}, {"--retention.resolution-raw=-1d"}} {
		_, err := parseCompactArgs(args)
		require.Error(t, err, "%v", args)
	}
	c, err = parseCompactArgs([]string{"--compact.concurrency=0"})
	require.NoError(t, err)
	_, err = c.compactorConfig()
	require.Error(t, err)
}

func TestCompactTenantRetentionFromLimitsFile(t *testing.T) {
	file := filepath.Join(t.TempDir(), "limits.yaml")
	require.NoError(t, os.WriteFile(file, []byte("tenants: {a: {retention: 7d}}\n"), 0o600))
	c, err := parseCompactArgs([]string{"--limits.config-file=" + file, "--limits.reload-interval=0s"})
	require.NoError(t, err)
	cfg, err := c.compactorConfig()
	require.NoError(t, err)
	require.NoError(t, c.tenantRetention(&cfg, nil, nil))
	require.Equal(t, 7*24*time.Hour, cfg.TenantRetention("a"))
	require.Zero(t, cfg.TenantRetention("b"))

	// Re-read on use once the interval passed (0 here): a change applies.
	require.NoError(t, os.WriteFile(file, []byte("defaults: {retention: 30d}\ntenants: {a: {retention: 1d}}\n"), 0o600))
	require.Equal(t, 24*time.Hour, cfg.TenantRetention("a"))
	require.Equal(t, 30*24*time.Hour, cfg.TenantRetention("b"))

	_, err = parseCompactArgs([]string{"--limits.config-file=" + filepath.Join(t.TempDir(), "missing.yaml")})
	require.NoError(t, err, "flags only name the file")
	c, _ = parseCompactArgs([]string{"--limits.config-file=" + filepath.Join(t.TempDir(), "missing.yaml")})
	cfg, _ = c.compactorConfig()
	require.Error(t, c.tenantRetention(&cfg, nil, nil), "a missing file fails the start")
}
