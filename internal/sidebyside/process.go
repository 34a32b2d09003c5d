package sidebyside

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"
)

// process is a child process. Its combined output is kept, the tail of it, for
// the report of a failure.
type process struct {
	name string
	cmd  *exec.Cmd
	out  *tailBuffer
	done chan struct{} // closed once Wait returned
	err  error         // Wait's result, set before done is closed
}

// startProcess starts bin with args. The child gets SIGKILL if the harness dies
// first, so an interrupted run leaves nothing behind.
func startProcess(name, bin string, args ...string) (*process, error) {
	p := &process{name: name, cmd: exec.Command(bin, args...), out: newTailBuffer(64 << 10), done: make(chan struct{})}
	p.cmd.Stdout, p.cmd.Stderr = p.out, p.out
	p.cmd.SysProcAttr = childAttr()
	if err := p.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	go func() {
		p.err = p.cmd.Wait()
		close(p.done)
	}()
	return p, nil
}

func (p *process) pid() int { return p.cmd.Process.Pid }

// exitErr returns why the process ended, or nil while it runs.
func (p *process) exitErr() error {
	select {
	case <-p.done:
		return fmt.Errorf("%s exited: %v", p.name, p.err)
	default:
		return nil
	}
}

// stop sends SIGTERM and waits up to grace for the process to exit, then kills
// it. It reports a kill, not the exit status: a benchmark does not judge how a
// system shuts down.
func (p *process) stop(grace time.Duration) error {
	select {
	case <-p.done:
		return nil
	default:
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
		return nil
	case <-time.After(grace):
	}
	_ = p.cmd.Process.Kill()
	<-p.done
	return fmt.Errorf("%s did not exit within %s of SIGTERM and was killed", p.name, grace)
}

// tailBuffer keeps the last max bytes written to it. It is safe for concurrent use.
type tailBuffer struct {
	mtx sync.Mutex
	max int
	buf []byte
}

func newTailBuffer(maxBytes int) *tailBuffer { return &tailBuffer{max: maxBytes} }

func (b *tailBuffer) Write(p []byte) (int, error) {
	b.mtx.Lock()
	defer b.mtx.Unlock()
	b.buf = append(b.buf, p...)
	if over := len(b.buf) - b.max; over > 0 {
		b.buf = append(b.buf[:0], b.buf[over:]...)
	}
	return len(p), nil
}

// tail returns the last n complete lines, indented for a log message.
func (b *tailBuffer) tail(n int) string {
	b.mtx.Lock()
	s := string(b.buf)
	b.mtx.Unlock()
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return "    " + strings.Join(lines, "\n    ")
}

// freeAddrs returns n distinct loopback addresses whose ports were free a
// moment ago. Another process may take one before the child binds it; start
// retries with new ports when that happens.
func freeAddrs(n int) ([]string, error) {
	var (
		addrs []string
		lis   []net.Listener
	)
	defer func() {
		for _, l := range lis {
			_ = l.Close()
		}
	}()
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("find a free port: %w", err)
		}
		lis = append(lis, l)
		addrs = append(addrs, l.Addr().String())
	}
	return addrs, nil
}

// pollInterval is how often readiness conditions are checked.
const pollInterval = 100 * time.Millisecond

// waitFor polls cond until it returns nil, any of procs exits, or timeout
// passes; the error names what was last wrong.
func waitFor(ctx context.Context, what string, timeout time.Duration, procs []*process, cond func(context.Context) error) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	t := time.NewTicker(pollInterval)
	defer t.Stop()
	for {
		for _, p := range procs {
			if err := p.exitErr(); err != nil {
				return fmt.Errorf("wait for %s: %w", what, err)
			}
		}
		last := cond(ctx)
		if last == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s not within %s: %w", what, timeout, last)
		case <-t.C:
		}
	}
}

// get fetches url and returns the body of a 200 answer.
func get(ctx context.Context, client *http.Client, url string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, err
	}
	defer func() {
		_, _ = io.Copy(io.Discard, resp.Body)
		_ = resp.Body.Close()
	}()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", url, err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s: %s", url, resp.Status, strings.TrimSpace(string(body[:min(len(body), 200)])))
	}
	return body, nil
}

// ready200 is a readiness condition: url answers 200.
func ready200(client *http.Client, url string) func(context.Context) error {
	return func(ctx context.Context) error {
		_, err := get(ctx, client, url)
		return err
	}
}

// metricSum sums the samples of metric whose label set contains every one of
// matchers (each `name="value"`) in a text exposition.
func metricSum(exposition []byte, metric string, matchers ...string) (float64, bool) {
	var (
		sum   float64
		found bool
	)
	sc := bufio.NewScanner(strings.NewReader(string(exposition)))
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		rest, ok := strings.CutPrefix(line, metric)
		if !ok || rest == "" || (rest[0] != ' ' && rest[0] != '{') {
			continue
		}
		lbls, value := "", rest
		if rest[0] == '{' {
			end := strings.LastIndexByte(rest, '}')
			if end < 0 {
				continue
			}
			lbls, value = rest[:end+1], rest[end+1:]
		}
		if !containsAll(lbls, matchers) {
			continue
		}
		var v float64
		if _, err := fmt.Sscan(strings.Fields(value)[0], &v); err != nil {
			continue
		}
		sum += v
		found = true
	}
	return sum, found
}

func containsAll(s string, subs []string) bool {
	for _, sub := range subs {
		if !strings.Contains(s, sub) {
			return false
		}
	}
	return true
}
