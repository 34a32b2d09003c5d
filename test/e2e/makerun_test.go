package e2e

import (
	"net"
	"os/exec"
	"path/filepath"
	"regexp"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/stratametrics/strata/internal/syncbuf"
)

// TestMakeRun does what the README tells a newcomer: `make run` in the
// repository, then a curl of the query URL it prints. Within a minute that
// returns strata's own metrics.
func TestMakeRun(t *testing.T) {
	for _, port := range []string{"19291", "10902"} {
		l, err := net.Listen("tcp", ":"+port)
		require.NoError(t, err, "make run needs port %s free", port)
		require.NoError(t, l.Close())
	}
	root, err := filepath.Abs("../..")
	require.NoError(t, err)

	cmd := exec.Command("make", "--no-print-directory", "-C", root, "run", "DATA_DIR="+t.TempDir(), "BUILD_DIR="+t.TempDir())
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	out := &syncbuf.Buffer{}
	cmd.Stdout, cmd.Stderr = out, out
	require.NoError(t, cmd.Start())
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	stopped := false
	stop := func() {
		if stopped {
			return
		}
		stopped = true
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGINT) // make and strata, as Ctrl-C would
		select {
		case <-done:
		case <-time.After(time.Minute):
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-done
		}
	}
	t.Cleanup(func() {
		stop()
		if t.Failed() {
			t.Logf("--- output of make run ---\n%s", tail(out.String(), 60))
		}
	})

	printed := regexp.MustCompile(`Query \(Grafana, PromQL\): (http://\S+)`)
	var queryURL string
	require.Eventually(t, func() bool {
		if m := printed.FindStringSubmatch(out.String()); m != nil {
			queryURL = m[1]
			return true
		}
		return false
	}, 3*time.Minute, 100*time.Millisecond, "make run prints the query URL (the build may take a while)")
	require.Regexp(t, `remote_write: url: http://localhost:19291/api/v1/receive`, out.String())

	require.Eventually(t, func() bool {
		return instantSeries(t, queryURL, "strata_receive_requests_total", true) > 0
	}, time.Minute, 500*time.Millisecond, "the printed query URL returns strata's own metrics within a minute")

	stop()
	require.Contains(t, out.String(), "shutdown complete")
}
