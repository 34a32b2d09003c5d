// Package e2e runs the strata binary as users do, as a separate process on
// loopback ports, against real Prometheus, MinIO and promtool binaries.
package e2e

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/stratametrics/strata/internal/syncbuf"
)

// strataBin is the binary under test, built once by TestMain.
var strataBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "strata-e2e-bin")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	strataBin = filepath.Join(dir, "strata")
	build := exec.Command("go", "build", "-o", strataBin, "github.com/stratametrics/strata/cmd/strata")
	build.Stdout, build.Stderr = os.Stdout, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "build strata:", err)
		os.Exit(1)
	}
	code := m.Run()
	_ = os.RemoveAll(dir)
	os.Exit(code)
}

// freeAddr returns a loopback address with a port that was free a moment ago.
func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := l.Addr().String()
	require.NoError(t, l.Close())
	return addr
}

// requireBinary returns the path of an external binary the test needs, failing
// (never skipping) when it is missing: CI installs them with .ci/install-deps.
func requireBinary(t *testing.T, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	require.NoError(t, err, "%s is required: run .ci/install-deps (Debian's prometheus package)", name)
	return p
}

// process is a child process whose output is kept for failure reports.
type process struct {
	name string
	cmd  *exec.Cmd
	out  *syncbuf.Buffer
	done chan struct{}
	err  error
}

func startProcess(t *testing.T, name, bin string, args ...string) *process {
	t.Helper()
	p := &process{name: name, cmd: exec.Command(bin, args...), out: &syncbuf.Buffer{}, done: make(chan struct{})}
	p.cmd.Stdout, p.cmd.Stderr = p.out, p.out
	require.NoError(t, p.cmd.Start(), "start %s", name)
	go func() {
		p.err = p.cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			_ = p.cmd.Process.Kill()
			<-p.done
		}
		if t.Failed() {
			t.Logf("--- output of %s ---\n%s", p.name, tail(p.out.String(), 60))
		}
	})
	return p
}

func tail(s string, lines int) string {
	parts := strings.Split(s, "\n")
	if len(parts) > lines {
		parts = parts[len(parts)-lines:]
	}
	return strings.Join(parts, "\n")
}

// stop sends sig and waits for the process to exit, returning its exit error.
func (p *process) stop(t *testing.T, sig syscall.Signal, timeout time.Duration) error {
	t.Helper()
	require.NoError(t, p.cmd.Process.Signal(sig))
	select {
	case <-p.done:
		return p.err
	case <-time.After(timeout):
		t.Fatalf("%s did not exit within %s after %s", p.name, timeout, sig)
		return nil
	}
}

// waitHTTP polls url until it answers 200.
func waitHTTP(t *testing.T, p *process, url string, timeout time.Duration) {
	t.Helper()
	require.Eventually(t, func() bool {
		select {
		case <-p.done:
			t.Fatalf("%s exited early: %v\n%s", p.name, p.err, tail(p.out.String(), 40))
		default:
		}
		resp, err := http.Get(url)
		if err != nil {
			return false
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		_ = resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	}, timeout, 100*time.Millisecond, "%s not ready at %s", p.name, url)
}

// strata is a running `strata receive`.
type strata struct {
	*process
	rwURL   string
	httpURL string
	dataDir string
}

func startReceive(t *testing.T, dataDir string, extra ...string) *strata {
	t.Helper()
	rw, httpAddr := freeAddr(t), freeAddr(t)
	args := append([]string{
		"receive",
		"--remote-write.address=" + rw,
		"--http-address=" + httpAddr,
		"--tsdb.path=" + dataDir,
		`--label=receive_replica="e2e"`,
		"--log.level=debug",
	}, extra...)
	s := &strata{
		process: startProcess(t, "strata receive", strataBin, args...),
		rwURL:   "http://" + rw + "/api/v1/receive",
		httpURL: "http://" + httpAddr,
		dataDir: dataDir,
	}
	waitHTTP(t, s.process, s.httpURL+"/-/ready", time.Minute)
	return s
}

// metricValue scrapes url and returns the sum of the samples of the named metric
// (all label sets), and whether it was present.
func metricValue(ctx context.Context, url, name string) (float64, bool, error) {
	return metricValueWith(ctx, url, name, "")
}

// metricValueWith is metricValue over the label sets whose text contains
// labels, such as `operation="get_range"`.
func metricValueWith(ctx context.Context, url, name, labels string) (float64, bool, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, false, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, false, err
	}
	defer func() { _ = resp.Body.Close() }()
	var sum float64
	found := false
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, name) {
			continue
		}
		rest := line[len(name):]
		if rest == "" || (rest[0] != ' ' && rest[0] != '{') || !strings.Contains(rest, labels) {
			continue
		}
		fields := strings.Fields(line[strings.LastIndex(line, "}")+1:])
		if strings.HasPrefix(rest, " ") {
			fields = strings.Fields(rest)
		}
		var v float64
		if _, err := fmt.Sscan(fields[0], &v); err != nil {
			return 0, false, fmt.Errorf("parse %q: %w", line, err)
		}
		sum += v
		found = true
	}
	return sum, found, sc.Err()
}
