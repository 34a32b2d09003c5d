// Package memcachedtest runs a real memcached server for tests.
package memcachedtest

import (
	"bufio"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// Server is a real memcached process on a loopback port.
type Server struct {
	// Addr is the server's host:port.
	Addr string
	cmd  *exec.Cmd
}

// FreePort returns a loopback port nothing listens on right now.
func FreePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	port := l.Addr().(*net.TCPAddr).Port
	require.NoError(t, l.Close())
	return port
}

// Start starts memcached on port (a free one if 0) and waits until it
// accepts connections. It is killed when the test ends. The test is skipped
// when there is no memcached binary; .ci/install-deps installs Debian's.
func Start(t testing.TB, port int) *Server {
	t.Helper()
	bin, err := exec.LookPath("memcached")
	if err != nil {
		t.Skip("memcached binary not found; .ci/install-deps installs Debian's memcached")
	}
	if port == 0 {
		port = FreePort(t)
	}
	args := []string{"-p", strconv.Itoa(port), "-l", "127.0.0.1", "-U", "0", "-m", "64"}
	if os.Geteuid() == 0 {
		args = append(args, "-u", "root") // memcached refuses to run as root otherwise
	}
	s := &Server{Addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), cmd: exec.Command(bin, args...)}
	require.NoError(t, s.cmd.Start())
	t.Cleanup(s.Stop)
	require.Eventually(t, func() bool {
		c, err := net.DialTimeout("tcp", s.Addr, time.Second)
		if err != nil {
			return false
		}
		_ = c.Close()
		return true
	}, 10*time.Second, 20*time.Millisecond, "memcached on %s did not start", s.Addr)
	return s
}

// Port returns the server's port.
func (s *Server) Port() int {
	_, p, _ := net.SplitHostPort(s.Addr)
	n, _ := strconv.Atoi(p)
	return n
}

// Stop kills the server and waits for it to exit; stopping twice is fine.
func (s *Server) Stop() {
	if s.cmd.ProcessState != nil {
		return
	}
	_ = s.cmd.Process.Kill()
	_ = s.cmd.Wait()
}

// Stat asks the server directly for one of its statistics, such as
// curr_items or get_hits.
func (s *Server) Stat(t testing.TB, name string) int {
	t.Helper()
	c, err := net.DialTimeout("tcp", s.Addr, time.Second)
	require.NoError(t, err)
	defer c.Close()
	_, err = c.Write([]byte("stats\r\n"))
	require.NoError(t, err)
	r := bufio.NewReader(c)
	for {
		line, err := r.ReadString('\n')
		require.NoError(t, err)
		line = strings.TrimSpace(line)
		require.NotEqual(t, "END", line, "no %s in stats", name)
		if v, ok := strings.CutPrefix(line, "STAT "+name+" "); ok {
			n, err := strconv.Atoi(v)
			require.NoError(t, err)
			return n
		}
	}
}
