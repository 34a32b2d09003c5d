// Package tutorials_test runs every tutorial in docs/tutorials as written, so
// that the documents cannot drift from what strata does.
//
// A tutorial is a Markdown file NN-name.md in this directory. Its fenced code
// blocks are run in order, in a fresh directory, according to their info
// string; blocks with any other info string are prose:
//
//	```sh step            run with bash -euo pipefail; must exit 0
//	```sh background      start, and leave running until the tutorial ends
//	```sh check           retried until it exits 0, for up to checkTimeout
//	```yaml file=NAME     written to NAME (any language: the first word)
//
// strata on PATH is the binary built from this tree; prometheus, promtool and
// prometheus-alertmanager are Debian's. Every local port the tutorial names
// (":NNNN", four or five digits, 1024 and above) is replaced by a free port,
// the same one everywhere, so that tutorials run next to other tests.
// Background processes get SIGTERM at the end, in reverse order.
//
// Adding a tutorial is adding its Markdown file and a line in README.md.
package tutorials_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/stratametrics/strata/internal/syncbuf"
)

// checkTimeout is how long a check block may keep failing.
const checkTimeout = 2 * time.Minute

var strataBin string

func TestMain(m *testing.M) {
	os.Exit(func() int {
		dir, err := os.MkdirTemp("", "strata-tutorials-")
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		defer os.RemoveAll(dir)
		strataBin = filepath.Join(dir, "strata")
		build := exec.Command("go", "build", "-o", strataBin, "github.com/stratametrics/strata/cmd/strata")
		if out, err := build.CombinedOutput(); err != nil {
			fmt.Fprintf(os.Stderr, "build strata: %v\n%s", err, out)
			return 1
		}
		return m.Run()
	}())
}

// block is one fenced code block a tutorial runs.
type block struct {
	kind string // step, background, check or file
	file string
	text string
	line int
}

var fence = regexp.MustCompile("^```+\\s*(\\S*)\\s*(.*)$")

// parseTutorial returns the blocks of a tutorial that run, in order.
func parseTutorial(md string) ([]block, error) {
	var blocks []block
	sc := bufio.NewScanner(strings.NewReader(md))
	sc.Buffer(nil, 1<<20)
	line := 0
	var cur *block
	var text strings.Builder
	for sc.Scan() {
		line++
		l := sc.Text()
		if cur == nil {
			m := fence.FindStringSubmatch(strings.TrimSpace(l))
			if m == nil {
				continue
			}
			lang, attrs := m[1], strings.Fields(m[2])
			b := block{line: line}
			switch {
			case len(attrs) > 0 && strings.HasPrefix(attrs[0], "file="):
				b.kind, b.file = "file", strings.TrimPrefix(attrs[0], "file=")
			case lang == "sh" && len(attrs) > 0 && (attrs[0] == "step" || attrs[0] == "background" || attrs[0] == "check"):
				b.kind = attrs[0]
			default:
				b.kind = "prose"
			}
			cur = &b
			text.Reset()
			continue
		}
		if strings.HasPrefix(strings.TrimSpace(l), "```") {
			cur.text = text.String()
			if cur.kind != "prose" {
				blocks = append(blocks, *cur)
			}
			cur = nil
			continue
		}
		text.WriteString(l + "\n")
	}
	if cur != nil {
		return nil, fmt.Errorf("line %d: unterminated code block", cur.line)
	}
	return blocks, sc.Err()
}

var portRef = regexp.MustCompile(`:(\d{4,5})\b`)

// substitutePorts replaces every local port of the blocks with a free one.
func substitutePorts(blocks []block) error {
	ports := map[string]string{}
	for i := range blocks {
		var err error
		blocks[i].text = portRef.ReplaceAllStringFunc(blocks[i].text, func(m string) string {
			n, _ := strconv.Atoi(m[1:])
			if n < 1024 {
				return m
			}
			if p, ok := ports[m[1:]]; ok {
				return ":" + p
			}
			var p int
			p, err = freePort()
			ports[m[1:]] = strconv.Itoa(p)
			return ":" + ports[m[1:]]
		})
		if err != nil {
			return err
		}
	}
	return nil
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// runTutorial runs the blocks of the tutorial md in dir, and returns the
// first failure, with the output of the failed block and of every process
// started in the background.
func runTutorial(md, dir, binDir string, checkTimeout time.Duration, logf func(string, ...any)) (err error) {
	blocks, err := parseTutorial(md)
	if err != nil {
		return err
	}
	if len(blocks) == 0 {
		return errors.New("no runnable blocks: mark them ```sh step, background or check")
	}
	if err := substitutePorts(blocks); err != nil {
		return err
	}
	env := append(os.Environ(), "PATH="+binDir+string(os.PathListSeparator)+os.Getenv("PATH"))

	type bg struct {
		cmd  *exec.Cmd
		out  *syncbuf.Buffer
		line int
		done chan struct{}
	}
	var bgs []*bg
	defer func() {
		for i := len(bgs) - 1; i >= 0; i-- {
			b := bgs[i]
			_ = syscall.Kill(-b.cmd.Process.Pid, syscall.SIGTERM)
			select {
			case <-b.done:
			case <-time.After(60 * time.Second):
				_ = syscall.Kill(-b.cmd.Process.Pid, syscall.SIGKILL)
				<-b.done
			}
		}
		if err != nil {
			var logs strings.Builder
			for _, b := range bgs {
				fmt.Fprintf(&logs, "\n--- background process of line %d:\n%s\n", b.line, tail(b.out.String(), 40))
			}
			err = fmt.Errorf("%w%s", err, logs.String())
		}
	}()

	command := func(ctx context.Context, text string) *exec.Cmd {
		cmd := exec.CommandContext(ctx, "bash", "-euo", "pipefail", "-c", text)
		cmd.Dir = dir
		cmd.Env = env
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		// Kill the whole group, not just bash, when ctx ends.
		cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
		cmd.WaitDelay = 5 * time.Second
		return cmd
	}

	for _, b := range blocks {
		switch b.kind {
		case "file":
			p := filepath.Join(dir, b.file)
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				return err
			}
			if err := os.WriteFile(p, []byte(b.text), 0o644); err != nil {
				return fmt.Errorf("line %d: %w", b.line, err)
			}
		case "step":
			start := time.Now()
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
			out, err := command(ctx, b.text).CombinedOutput()
			cancel()
			logf("line %d: step (%s)", b.line, time.Since(start).Round(time.Millisecond))
			if err != nil {
				return fmt.Errorf("line %d: step failed: %v\n%s\n--- output:\n%s", b.line, err, b.text, tail(string(out), 40))
			}
		case "background":
			out := &syncbuf.Buffer{}
			cmd := command(context.Background(), b.text)
			cmd.Stdout, cmd.Stderr = out, out
			if err := cmd.Start(); err != nil {
				return fmt.Errorf("line %d: start: %w", b.line, err)
			}
			p := &bg{cmd: cmd, out: out, line: b.line, done: make(chan struct{})}
			go func() { _ = cmd.Wait(); close(p.done) }()
			bgs = append(bgs, p)
		case "check":
			start := time.Now()
			deadline := start.Add(checkTimeout)
			var last []byte
			for {
				ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
				out, err := command(ctx, b.text).CombinedOutput()
				cancel()
				if err == nil {
					break
				}
				last = out
				for _, p := range bgs {
					select {
					case <-p.done:
						return fmt.Errorf("line %d: the background process of line %d exited while waiting", b.line, p.line)
					default:
					}
				}
				if time.Now().After(deadline) {
					return fmt.Errorf("line %d: check did not pass within %s:\n%s\n--- last output:\n%s", b.line, checkTimeout, b.text, tail(string(last), 40))
				}
				time.Sleep(500 * time.Millisecond)
			}
			logf("line %d: check passed after %s", b.line, time.Since(start).Round(time.Millisecond))
		}
	}
	return nil
}

func TestTutorials(t *testing.T) {
	files, err := filepath.Glob("[0-9][0-9]-*.md")
	require.NoError(t, err)
	require.NotEmpty(t, files)
	index, err := os.ReadFile("README.md")
	require.NoError(t, err)
	for _, f := range files {
		t.Run(strings.TrimSuffix(f, ".md"), func(t *testing.T) {
			require.Contains(t, string(index), "("+f+")", "the index links every tutorial")
			md, err := os.ReadFile(f)
			require.NoError(t, err)
			start := time.Now()
			require.NoError(t, runTutorial(string(md), t.TempDir(), filepath.Dir(strataBin), checkTimeout, t.Logf))
			t.Logf("%s ran in %s", f, time.Since(start).Round(time.Millisecond))
		})
	}
}

// The harness must be able to fail: a failing step, a check that never
// passes and a background process that dies each fail the tutorial.
func TestHarnessFails(t *testing.T) {
	for _, tc := range []struct {
		name, md, wantErr string
	}{
		{"step", "```sh step\ntrue\n```\n```sh step\nfalse\n```\n", "line 4: step failed"},
		{"check", "```sh check\ntest -e never\n```\n", "check did not pass"},
		{"background", "```sh background\nexit 3\n```\n```sh check\ntest -e never\n```\n", "exited while waiting"},
		{"nothing to run", "```sh\nstrata up\n```\n", "no runnable blocks"},
		{"file", "```yaml file=a/b.yml\nx: 1\n```\n```sh check\ngrep -q 'x: 2' a/b.yml\n```\n", "check did not pass"},
		{"ports", "```sh step\ntest ':19291' != \":19291\"\n```\n", "step failed"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := runTutorial(tc.md, t.TempDir(), filepath.Dir(strataBin), 2*time.Second, t.Logf)
			require.ErrorContains(t, err, tc.wantErr)
		})
	}
	// And pass when everything does; ports are substituted consistently.
	md := "```sh step\ntest ':19291' = ':19291' && test ':19291' != ':1929'\n```\n```yaml file=p.yml\nport: :19291\n```\n```sh check\ngrep -q 'port: :19291' p.yml\n```\n"
	require.NoError(t, runTutorial(md, t.TempDir(), filepath.Dir(strataBin), 2*time.Second, t.Logf))
}
