package e2e

import (
	"context"
	"fmt"
	"net/http"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/prompb"
	"github.com/stretchr/testify/require"
)

// TestReceiveKillLosesNoAcknowledgedSample streams writes to strata, kills it
// with SIGKILL mid-stream, restarts it on the same directory, and proves that every
// sample acknowledged with a 2xx is there after WAL replay.
func TestReceiveKillLosesNoAcknowledgedSample(t *testing.T) {
	dir := t.TempDir()
	s := startReceive(t, dir)

	const (
		workers          = 4
		seriesPerRequest = 200
	)
	type ack struct {
		worker int
		ts     int64
	}
	var (
		mtx    sync.Mutex
		acked  []ack
		killed atomic.Bool
		wg     sync.WaitGroup
	)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	client := &http.Client{Timeout: 10 * time.Second}
	start := time.Now().Add(-time.Hour).UnixMilli()
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := int64(0); ctx.Err() == nil; i++ {
				ts := start + i*1000
				series := make([]prompb.TimeSeries, seriesPerRequest)
				for j := range series {
					series[j] = prompb.TimeSeries{
						Labels: []prompb.Label{
							{Name: "__name__", Value: "kill_test"},
							{Name: "series", Value: fmt.Sprint(j)},
							{Name: "worker", Value: fmt.Sprint(w)},
						},
						Samples: []prompb.Sample{{Timestamp: ts, Value: float64(i)}},
					}
				}
				code, body, err := pushRW1(ctx, client, s.rwURL, "kill", series)
				if err != nil || code/100 != 2 {
					if !killed.Load() && ctx.Err() == nil {
						t.Errorf("write before the kill: code %d, %q, %v", code, body, err)
					}
					return
				}
				mtx.Lock()
				acked = append(acked, ack{w, ts})
				mtx.Unlock()
			}
		}()
	}
	ackedCount := func() int {
		mtx.Lock()
		defer mtx.Unlock()
		return len(acked)
	}
	require.Eventually(t, func() bool { return ackedCount() >= 1000 }, time.Minute, 10*time.Millisecond)

	// Kill while the writers are still sending.
	killed.Store(true)
	_ = s.stop(t, syscall.SIGKILL, 30*time.Second)
	wg.Wait()
	cancel()
	require.GreaterOrEqual(t, ackedCount(), 1000)

	// A restart replays the WAL before it reports ready; then a graceful stop.
	s2 := startReceive(t, dir)
	require.NoError(t, s2.stop(t, syscall.SIGTERM, time.Minute))

	stored := readTSDB(t, filepath.Join(dir, "kill"))
	for _, a := range acked {
		for j := range seriesPerRequest {
			ls := labels.FromStrings("__name__", "kill_test", "series", fmt.Sprint(j), "worker", fmt.Sprint(a.worker)).String()
			require.True(t, hasTimestamp(stored[ls], a.ts), "acknowledged sample %s @%d lost", ls, a.ts)
		}
	}
	t.Logf("%d acknowledged requests (%d samples) all present after SIGKILL and replay", len(acked), len(acked)*seriesPerRequest)
}

func hasTimestamp(ss []sample, ts int64) bool {
	for _, s := range ss {
		if s.t == ts {
			return true
		}
	}
	return false
}
