package main

import (
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/stretchr/testify/require"
)

func TestRuleFlags(t *testing.T) {
	c, err := parseRuleArgs([]string{"--query=http://q1:10902", "--query=http://q2:10902"})
	require.NoError(t, err)
	require.Equal(t, ":10903", c.httpAddress)
	cfg, err := c.rulerConfig()
	require.NoError(t, err)
	require.Equal(t, "./data/rule", cfg.DataDir)
	require.Equal(t, time.Minute, cfg.EvalInterval)
	require.Equal(t, []string{"http://q1:10902", "http://q2:10902"}, cfg.QueryURLs)
	require.False(t, cfg.PartialResponse)
	require.Equal(t, 30*time.Second, cfg.AlertmanagerRefreshInterval)
	require.Equal(t, 10*time.Minute, cfg.ForGracePeriod)
	require.Equal(t, time.Hour, cfg.OutageTolerance)
	require.Equal(t, []string{"tenant_id"}, cfg.ForStateDropLabels)

	c, err = parseRuleArgs([]string{
		"--endpoint=store:10901", "--endpoint=dns+receive:10901", "--query.replica-label=rule_replica",
		"--eval-interval=15s", `--label=ruler_replica="b"`, "--alertmanagers.url=http://am:9093",
		"--alertmanagers.dns-interval=5s", "--query.partial-response",
	})
	require.NoError(t, err)
	cfg, err = c.rulerConfig()
	require.NoError(t, err)
	require.Empty(t, cfg.QueryURLs)
	require.Equal(t, []string{"store:10901", "dns+receive:10901"}, cfg.Endpoints)
	require.Equal(t, []string{"rule_replica"}, cfg.ReplicaLabels)
	require.Equal(t, 15*time.Second, cfg.EvalInterval)
	require.Equal(t, labels.FromStrings("ruler_replica", "b"), cfg.ExternalLabels)
	require.Equal(t, 5*time.Second, cfg.AlertmanagerRefreshInterval)
	require.True(t, cfg.PartialResponse)

	// Each wanted error, by the arguments that give it.
	for want, args := range map[string][]string{
		"nothing to query": nil,
		"not both":         {"--query=http://q:10902", "--endpoint=s:10901"},
		"label":            {"--query=http://q:10902", "--label=nolabel"},
	} {
		c, err := parseRuleArgs(args)
		require.NoError(t, err)
		_, err = c.rulerConfig()
		require.ErrorContains(t, err, want)
	}
}
