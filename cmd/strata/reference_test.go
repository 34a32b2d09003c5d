package main

import (
	"io"
	"os"
	"strings"
	"testing"

	"github.com/alecthomas/kingpin/v2"
	"github.com/stretchr/testify/require"
)

// The node name defaults to the host name, which differs between machines:
// the reference shows a placeholder instead.
func TestReferenceIsDeterministicAndComplete(t *testing.T) {
	hostname, err := os.Hostname()
	require.NoError(t, err)
	render := func() string {
		app := kingpin.New("strata", "")
		registerCommands(app)
		referenceCommand(app, io.Discard)
		var b strings.Builder
		require.NoError(t, writeReference(&b, app.Model(), hostname))
		return b.String()
	}
	a := render()
	require.Equal(t, a, render())
	require.False(t, strings.Contains(a, referenceCommandName), "the hidden command is left out")
	for _, want := range []string{
		"## `strata receive`", "## `strata query`", "## `strata store`", "## `strata compact`",
		"## `strata rule`", "## `strata up`", "## `strata tools bucket ls`",
		"| `--remote-write.address=<value>` | `:19291` |", "| `--cluster.node-name=<value>` | *the host name* |",
	} {
		require.True(t, strings.Contains(a, want), "missing %q", want)
	}
}
