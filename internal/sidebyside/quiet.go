package sidebyside

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"
)

// A benchmark on a shared machine measures the neighbours too. The harness
// checks that the machine was quiet: over the measured duration it takes the
// CPU time of the whole machine and of every process it knows (the system's
// servers and helpers, the load generator, itself), and reports the rest as
// used by other processes. The window is the harness's own estimate of the
// generator's, from when the generator started, so it is off by the
// generator's start-up; every number is taken over that same window, so the
// difference is not.

// userHZ is the unit of CPU times in /proc: USER_HZ, 100 on every Linux ABI.
const userHZ = 100

// busyShareLimit is the share of the machine's CPU time other processes may
// use during a measured duration before the report flags the row.
const busyShareLimit = 0.05

// cpuSample is the CPU time, in seconds, of the machine and of known processes
// at one moment.
type cpuSample struct {
	machine float64
	procs   float64
}

// takeCPUSample reads /proc/stat and /proc/<pid>/stat of pids and of the
// harness itself.
func takeCPUSample(pids []int) (cpuSample, error) {
	var s cpuSample
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return s, err
	}
	line, _, _ := bytes.Cut(b, []byte("\n"))
	f := strings.Fields(string(line))
	// cpu user nice system idle iowait irq softirq steal ...; guest time is
	// part of user already.
	if len(f) < 9 || f[0] != "cpu" {
		return s, fmt.Errorf("unexpected /proc/stat line %q", line)
	}
	for _, i := range []int{1, 2, 3, 6, 7, 8} {
		v, err := strconv.ParseFloat(f[i], 64)
		if err != nil {
			return s, fmt.Errorf("parse /proc/stat: %w", err)
		}
		s.machine += v / userHZ
	}
	for _, pid := range slices.Concat(pids, []int{os.Getpid()}) {
		v, err := procCPU(pid)
		if err != nil {
			return s, err
		}
		s.procs += v
	}
	return s, nil
}

// procCPU returns the user and system CPU seconds of pid.
func procCPU(pid int) (float64, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, err
	}
	// The command name, in parentheses, may hold spaces: fields are counted
	// after its closing parenthesis, from the state (field 3).
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, fmt.Errorf("unexpected /proc/%d/stat", pid)
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return 0, fmt.Errorf("unexpected /proc/%d/stat", pid)
	}
	var sum float64
	for _, v := range f[11:13] { // utime and stime, fields 14 and 15
		n, err := strconv.ParseFloat(v, 64)
		if err != nil {
			return 0, fmt.Errorf("parse /proc/%d/stat: %w", pid, err)
		}
		sum += n / userHZ
	}
	return sum, nil
}

// measureOthers waits for the measured window, from after to after+window,
// and returns the CPU seconds the machine spent in it outside of pids and the
// harness. It returns NaN when done closes first or /proc cannot be read.
func measureOthers(ctx context.Context, done <-chan struct{}, after, window time.Duration, pids []int) (float64, error) {
	wait := func(d time.Duration) error {
		t := time.NewTimer(d)
		defer t.Stop()
		select {
		case <-done:
			return errors.New("load generator ended before its measured duration")
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
			return nil
		}
	}
	if err := wait(after); err != nil {
		return math.NaN(), err
	}
	s0, err := takeCPUSample(pids)
	if err != nil {
		return math.NaN(), err
	}
	if err := wait(window); err != nil {
		return math.NaN(), err
	}
	s1, err := takeCPUSample(pids)
	if err != nil {
		return math.NaN(), err
	}
	return max(0, (s1.machine-s0.machine)-(s1.procs-s0.procs)), nil
}
