package frontendbench

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/stratametrics/strata/internal/syncbuf"
)

// process is a running strata subcommand; its output is kept for failures.
type process struct {
	name    string
	httpURL string
	cmd     *exec.Cmd
	out     *syncbuf.Buffer
	done    chan struct{}
	err     error
}

// freeAddr returns a loopback address nothing listens on right now.
func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := l.Addr().String()
	require.NoError(t, l.Close())
	return addr
}

// start runs `strata <args>` with its HTTP API on httpAddr and waits until
// /-/ready answers 200.
func start(t *testing.T, name, httpAddr string, args ...string) *process {
	t.Helper()
	p := &process{name: name, httpURL: "http://" + httpAddr, out: &syncbuf.Buffer{}, done: make(chan struct{})}
	p.cmd = exec.Command(*strataBin, append(args, "--http-address="+httpAddr, "--log.level=warn")...)
	p.cmd.Stdout, p.cmd.Stderr = p.out, p.out
	require.NoError(t, p.cmd.Start(), "start %s", name)
	go func() {
		p.err = p.cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() { p.stop(t) })
	p.waitFor(t, "ready", func() bool {
		resp, err := http.Get(p.httpURL + "/-/ready")
		if err != nil {
			return false
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		_ = resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
	return p
}

// waitFor polls cond until it holds, failing when the process exits or after
// two minutes.
func (p *process) waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for !cond() {
		select {
		case <-p.done:
			t.Fatalf("%s exited before %s: %v\n%s", p.name, what, p.err, p.out.String())
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s not %s after 2m\n%s", p.name, what, p.out.String())
		}
	}
}

// stop ends the process with SIGTERM, then SIGKILL after ten seconds; it
// may be called more than once.
func (p *process) stop(t *testing.T) {
	select {
	case <-p.done:
		return
	default:
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
	if t.Failed() {
		t.Logf("--- output of %s ---\n%s", p.name, p.out.String())
	}
}

// metric returns the sum of every series of the metric name on the
// process's /metrics whose labels contain match (empty matches all).
func (p *process) metric(t *testing.T, name, match string) float64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, p.httpURL+"/metrics", nil)
	require.NoError(t, err)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer func() {
		_, _ = io.Copy(io.Discard, resp.Body)
		_ = resp.Body.Close()
	}()
	require.Equal(t, http.StatusOK, resp.StatusCode, "%s /metrics", p.name)
	var sum float64
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, name) {
			continue
		}
		rest := line[len(name):]
		if rest == "" || (rest[0] != ' ' && rest[0] != '{') {
			continue // a longer name with this prefix
		}
		if match != "" && !strings.Contains(rest, match) {
			continue
		}
		fields := strings.Fields(rest)
		v, err := strconv.ParseFloat(fields[len(fields)-1], 64)
		require.NoError(t, err, "parse %q", line)
		sum += v
	}
	require.NoError(t, sc.Err())
	return sum
}

// cpu returns the process's CPU seconds so far.
func (p *process) cpu(t *testing.T) float64 {
	return p.metric(t, "process_cpu_seconds_total", "")
}

func (p *process) String() string { return fmt.Sprintf("%s (%s)", p.name, p.httpURL) }
