package e2e

import (
	"bytes"
	"encoding/json"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// benchWriteReport is the part of `strata tools bench write --format=json`
// that the test checks.
type benchWriteReport struct {
	Protocol          string           `json:"protocol"`
	Series            int              `json:"series"`
	AckedSamples      int64            `json:"acked_samples"`
	AckedSamplesTotal int64            `json:"acked_samples_total"`
	Errors            map[string]int64 `json:"errors"`
	FailedSamples     int64            `json:"failed_samples"`
	ErrorMessages     []string         `json:"error_messages"`
	FirstTimestampMs  int64            `json:"first_timestamp_ms"`
	LastTimestampMs   int64            `json:"last_timestamp_ms"`
	ServerCPUSeconds  float64          `json:"server_cpu_seconds"`
	ServerRSSBytes    int64            `json:"server_rss_bytes"`
	ReadBackSamples   int64            `json:"read_back_samples"`
	ReadBackComplete  bool             `json:"read_back_complete"`
}

// TestBenchWrite runs `strata tools bench write` against a real `strata receive`
// and reads the load back through a real `strata query`, then counts the
// samples in the receiver's TSDB directory after it stopped: every
// acknowledged sample must be there, and nothing else.
func TestBenchWrite(t *testing.T) {
	for _, proto := range []string{"rw1", "rw2"} {
		t.Run(proto, func(t *testing.T) {
			grpcAddr, queryAddr := freeAddr(t), freeAddr(t)
			dataDir := t.TempDir()
			recv := startReceive(t, dataDir, "--grpc-address="+grpcAddr)
			query := startProcess(t, "strata query", strataBin, "query",
				"--endpoint="+grpcAddr,
				"--http-address="+queryAddr,
				"--endpoint.info-interval=1s",
			)
			waitHTTP(t, query, "http://"+queryAddr+"/-/ready", time.Minute)

			bench := exec.Command(strataBin, "tools", "bench", "write",
				"--url="+recv.rwURL,
				"--protocol="+proto,
				"--series=2000",
				"--batch-size=500",
				"--concurrency=2",
				"--warmup=1s",
				"--duration=3s",
				"--pid="+strconv.Itoa(recv.cmd.Process.Pid),
				"--read-back-url=http://"+queryAddr,
				"--read-back-timeout=1m",
				"--format=json",
			)
			var stdout, stderr bytes.Buffer
			bench.Stdout, bench.Stderr = &stdout, &stderr
			require.NoError(t, bench.Run(), "strata tools bench write:\n%s", stderr.String())

			var keys map[string]json.RawMessage
			require.NoError(t, json.Unmarshal(stdout.Bytes(), &keys), stdout.String())
			for _, k := range []string{"acked_samples_total", "errors", "read_back_samples", "read_back_complete", "server_cpu_seconds", "server_rss_bytes"} {
				require.Contains(t, keys, k)
			}
			var rep benchWriteReport
			require.NoError(t, json.Unmarshal(stdout.Bytes(), &rep))
			t.Logf("report: %s", stdout.String())

			require.Equal(t, proto, rep.Protocol)
			require.Empty(t, rep.Errors, "errors: %v", rep.ErrorMessages)
			require.Zero(t, rep.FailedSamples)
			require.Positive(t, rep.AckedSamples)
			require.Greater(t, rep.AckedSamplesTotal, rep.AckedSamples)
			require.True(t, rep.ReadBackComplete, "read back %d of %d samples", rep.ReadBackSamples, rep.AckedSamplesTotal)
			require.Equal(t, rep.AckedSamplesTotal, rep.ReadBackSamples)
			require.Positive(t, rep.ServerCPUSeconds)
			require.Positive(t, rep.ServerRSSBytes)

			// Independently of the tool and the querier: what the receiver stored.
			require.NoError(t, recv.stop(t, syscall.SIGTERM, time.Minute))
			stored := readTSDB(t, filepath.Join(dataDir, "default-tenant"))
			require.Len(t, stored, rep.Series)
			var total int64
			for ls, ss := range stored {
				require.Equal(t, rep.FirstTimestampMs, ss[0].t, ls)
				for i := 1; i < len(ss); i++ {
					require.Equal(t, int64(15000), ss[i].t-ss[i-1].t, "%s: samples one scrape interval apart", ls)
				}
				require.LessOrEqual(t, ss[len(ss)-1].t, rep.LastTimestampMs, ls)
				total += int64(len(ss))
			}
			require.Equal(t, rep.AckedSamplesTotal, total)
		})
	}
}
