package loadgen

import (
	"os"
	"runtime"
	"runtime/metrics"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestProcOfSelf(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("/proc is Linux only")
	}
	pid := os.Getpid()
	before, err := procCPU(pid)
	require.NoError(t, err)
	self0, err := selfCPU()
	require.NoError(t, err)

	// Burn some CPU.
	x := 0.0
	for start := time.Now(); time.Since(start) < 300*time.Millisecond; {
		for i := range 1000 {
			x += float64(i)
		}
	}
	require.NotZero(t, x)

	after, err := procCPU(pid)
	require.NoError(t, err)
	self1, err := selfCPU()
	require.NoError(t, err)
	require.Greater(t, after, before)
	// /proc and getrusage see the same CPU time, /proc in 10ms ticks; the
	// margin covers what the process's other threads use between the reads on
	// a busy machine, and is far below a unit error.
	require.InDelta(t, (self1 - self0).Seconds(), (after - before).Seconds(), 0.25)
	require.InDelta(t, self1.Seconds(), after.Seconds(), 0.25)

	rss, err := procRSS(pid)
	require.NoError(t, err)
	// The Go runtime's mapped memory is an upper bound of what is resident of it.
	s := []metrics.Sample{{Name: "/memory/classes/total:bytes"}}
	metrics.Read(s)
	require.Greater(t, rss, int64(1<<20))
	require.Less(t, rss, int64(s[0].Value.Uint64())+200<<20)

	_, err = procCPU(1 << 30)
	require.Error(t, err)
}

func TestParseProcStat(t *testing.T) {
	for _, c := range []struct {
		name         string
		in           string
		utime, stime uint64
		wantErr      string
	}{
		{
			name:  "plain",
			in:    "1234 (strata) S 1 1234 1234 0 -1 4194560 12345 0 0 0 1500 250 0 0 20 0 12 0 100 2000000000 30000 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0\n",
			utime: 1500, stime: 250,
		},
		{
			name:  "command with spaces and parentheses",
			in:    "77 (a) b (c) R 1 77 77 0 -1 0 0 0 0 0 42 7 0 0 20 0 1 0 5 1000 10 0\n",
			utime: 42, stime: 7,
		},
		{name: "truncated", in: "1 (x) S 1 2 3", wantErr: "fields"},
		{name: "no command", in: "garbage", wantErr: "command"},
		{name: "not a number", in: "1 (x) S 1 1 1 0 -1 0 0 0 0 0 ab 7 0 0\n", wantErr: "utime"},
	} {
		t.Run(c.name, func(t *testing.T) {
			u, s, err := parseProcStat([]byte(c.in))
			if c.wantErr != "" {
				require.ErrorContains(t, err, c.wantErr)
				return
			}
			require.NoError(t, err)
			require.Equal(t, c.utime, u)
			require.Equal(t, c.stime, s)
		})
	}
}

func TestParseStatusRSS(t *testing.T) {
	rss, err := parseStatusRSS([]byte("Name:\tstrata\nVmPeak:\t  900 kB\nVmRSS:\t  123456 kB\nRssAnon:\t 1 kB\n"))
	require.NoError(t, err)
	require.Equal(t, int64(123456*1024), rss)

	_, err = parseStatusRSS([]byte("Name:\tkthreadd\nState:\tS (sleeping)\n"))
	require.ErrorContains(t, err, "no VmRSS")
	_, err = parseStatusRSS([]byte("VmRSS:\t12 MB\n"))
	require.ErrorContains(t, err, "VmRSS line")
}
