package main

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestSidecarFlags(t *testing.T) {
	c, err := parseCommandArgs(registerSidecar, nil)
	require.NoError(t, err)
	require.Equal(t, "http://localhost:9090", c.prometheusURL)
	require.Equal(t, "./data", c.tsdbPath)
	require.Equal(t, ":10901", c.grpcAddress)
	require.Equal(t, ":10902", c.httpAddress)
	require.Equal(t, 30*time.Second, c.refreshInterval)

	c, err = parseCommandArgs(registerSidecar, []string{
		"--prometheus.url=http://prom:9090", "--tsdb.path=/prometheus", "--objstore.config-file=/etc/bucket.yml",
		"--grpc-address=:19091", "--http-address=:19092",
	})
	require.NoError(t, err)
	require.Equal(t, "http://prom:9090", c.prometheusURL)
	require.Equal(t, "/prometheus", c.tsdbPath)
	require.Equal(t, "/etc/bucket.yml", c.objstore.file)
	require.Equal(t, ":19091", c.grpcAddress)
	require.Equal(t, ":19092", c.httpAddress)
}
