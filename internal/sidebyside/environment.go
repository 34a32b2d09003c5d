package sidebyside

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"
)

// Environment describes where a run happened and with what.
type Environment struct {
	// Commit is strata's git commit, with "-dirty" when the tree has changes.
	Commit string
	// CPU is the processor model.
	CPU string
	// Cores is the number of logical CPUs.
	Cores int
	// MemoryBytes is the machine's RAM.
	MemoryBytes uint64
	// Kernel is the kernel release.
	Kernel string
	// GoVersion is the Go toolchain the harness was built with.
	GoVersion string
	// PrometheusVersion and VictoriaMetricsVersion are what the binaries say
	// about themselves.
	PrometheusVersion      string
	VictoriaMetricsVersion string
}

// commandTimeout bounds each command that describes the environment.
const commandTimeout = 10 * time.Second

func environment(ctx context.Context, cfg Config) Environment {
	e := Environment{
		Commit:    gitCommit(ctx),
		CPU:       cpuModel(),
		Cores:     runtime.NumCPU(),
		Kernel:    "unknown",
		GoVersion: runtime.Version(),
	}
	e.MemoryBytes = memTotal()
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		e.Kernel = strings.TrimSpace(string(b))
	}
	e.PrometheusVersion = binaryVersion(ctx, cfg.Prometheus, "--version")
	e.VictoriaMetricsVersion = binaryVersion(ctx, cfg.VictoriaMetrics, "-version")
	return e
}

// output runs a command and returns its combined output.
func output(ctx context.Context, name string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, commandTimeout)
	defer cancel()
	out, err := exec.CommandContext(ctx, name, args...).CombinedOutput()
	return string(out), err
}

func gitCommit(ctx context.Context) string {
	head, err := output(ctx, "git", "rev-parse", "--short", "HEAD")
	if err != nil {
		return "unknown"
	}
	commit := strings.TrimSpace(head)
	if status, err := output(ctx, "git", "status", "--porcelain"); err != nil || strings.TrimSpace(status) != "" {
		commit += "-dirty"
	}
	return commit
}

// binaryVersion is the first non-empty line bin prints for its version flag,
// or its Debian package's version when it prints none: Debian builds
// VictoriaMetrics without its version stamped in.
func binaryVersion(ctx context.Context, bin, flag string) string {
	path, err := exec.LookPath(bin)
	if err != nil {
		return "not found"
	}
	out, _ := output(ctx, path, flag)
	for line := range strings.Lines(out) {
		if line = strings.TrimSpace(line); line != "" {
			return line
		}
	}
	if resolved, err := filepath.EvalSymlinks(path); err == nil {
		path = resolved
	}
	owner, err := output(ctx, "dpkg-query", "--search", path)
	if err != nil {
		return "unknown (prints no version)"
	}
	pkg, _, _ := strings.Cut(strings.TrimSpace(owner), ":")
	version, err := output(ctx, "dpkg-query", "--show", "--showformat=${Version}", pkg)
	if err != nil {
		return "unknown (prints no version)"
	}
	return fmt.Sprintf("%s %s (Debian package; the binary prints no version)", pkg, strings.TrimSpace(version))
}

func cpuModel() string {
	b, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return "unknown"
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return "unknown"
}

func memTotal() uint64 {
	b, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		return 0
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) >= 2 && f[0] == "MemTotal:" {
			kb, err := strconv.ParseUint(f[1], 10, 64)
			if err != nil {
				return 0
			}
			return kb << 10
		}
	}
	return 0
}
