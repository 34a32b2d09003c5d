package sidebyside

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"os/exec"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/stratametrics/strata/loadgen"
)

// LoadReport is the JSON report of `strata tools bench write --format=json`,
// decoded into the generator's own report type.
type LoadReport struct{ loadgen.Report }

// loadReportKeys are the keys every report must have.
var loadReportKeys = []string{
	"protocol", "urls", "series", "batch_size", "concurrency", "tenants", "scrape_interval_seconds",
	"warmup_seconds", "duration_seconds", "rounds", "first_timestamp_ms", "last_timestamp_ms",
	"acked_samples", "acked_samples_total", "acked_samples_per_second", "requests",
	"latency_p50_seconds", "latency_p99_seconds", "errors", "failed_samples", "error_messages",
	"wire_bytes_per_sample", "client_cpu_seconds", "server_cpu_seconds", "server_rss_bytes", "server_samples_per_cpu_second",
	"active_series", "series_created", "read_back_samples", "read_back_complete",
}

// parseLoadReport decodes the generator's report, requiring every key.
func parseLoadReport(b []byte) (*LoadReport, error) {
	var keys map[string]json.RawMessage
	if err := json.Unmarshal(b, &keys); err != nil {
		return nil, fmt.Errorf("decode load report: %w", err)
	}
	var missing []string
	for _, k := range loadReportKeys {
		if _, ok := keys[k]; !ok {
			missing = append(missing, k)
		}
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("load report lacks %q", missing)
	}
	var r LoadReport
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("decode load report: %w", err)
	}
	return &r, nil
}

// FailedRequests is the number of requests that were not acknowledged.
func (r *LoadReport) FailedRequests() float64 {
	var n int64
	for _, c := range r.Errors {
		n += c
	}
	return float64(n)
}

// RSSPerSeries is the servers' resident memory per active series; 0 when
// there are no active series.
func (r *LoadReport) RSSPerSeries() float64 {
	if r.ActiveSeries <= 0 {
		return 0
	}
	return float64(r.ServerRSSBytes) / float64(r.ActiveSeries)
}

// generate runs the load generator against d and returns its report and the
// CPU seconds other processes used during the measured duration (NaN when
// unknown).
func (h *harness) generate(ctx context.Context, d *deployment, logger *slog.Logger) (_ *LoadReport, others float64, _ error) {
	l := h.cfg.Load
	args := []string{
		"tools", "bench", "write",
		"--protocol=rw1",
		"--format=json",
		"--series=" + strconv.Itoa(l.Series),
		"--batch-size=" + strconv.Itoa(l.BatchSize),
		"--concurrency=" + strconv.Itoa(l.Concurrency),
		"--duration=" + l.Duration.String(),
		"--warmup=" + l.Warmup.String(),
	}
	for _, u := range d.writeURLs {
		args = append(args, "--url="+u)
	}
	for _, p := range d.servers {
		args = append(args, "--pid="+strconv.Itoa(p.pid()))
	}
	if d.readBackURL != "" {
		args = append(args, "--read-back-url="+d.readBackURL)
	}

	ctx, cancel := context.WithTimeout(ctx, l.Warmup+l.Duration+readBackSlack)
	defer cancel()
	var stdout bytes.Buffer
	stderr := newTailBuffer(64 << 10)
	cmd := exec.CommandContext(ctx, h.cfg.Strata, args...)
	cmd.Stdout, cmd.Stderr = &stdout, stderr
	cmd.SysProcAttr = childAttr()
	if err := cmd.Start(); err != nil {
		return nil, math.NaN(), fmt.Errorf("start load generator: %w", err)
	}

	done := make(chan struct{})
	var wg sync.WaitGroup
	known := []int{cmd.Process.Pid}
	for _, p := range slices.Concat(d.servers, d.helpers) {
		known = append(known, p.pid())
	}
	wg.Go(func() {
		var err error
		if others, err = measureOthers(ctx, done, l.Warmup, l.Duration, known); err != nil {
			logger.Warn("measure the CPU of other processes", "err", err)
		}
	})
	if d.afterLoad != nil {
		// A second after the generator's measured window, so as not to add to
		// the server CPU it measures.
		wg.Go(func() { runAfterLoad(ctx, done, l.Warmup+l.Duration+time.Second, d.afterLoad, logger) })
	}
	runErr := cmd.Wait()
	close(done)
	wg.Wait()

	rep, err := parseLoadReport(stdout.Bytes())
	if err != nil {
		if runErr != nil {
			err = errors.Join(fmt.Errorf("load generator: %w", runErr), err)
		}
		return nil, others, fmt.Errorf("%w\n  last output of the load generator:\n%s", err, stderr.tail(15))
	}
	if runErr != nil {
		// The report says what went wrong (errors, an incomplete read-back);
		// the exit status adds nothing to it.
		logger.Warn("load generator exited with an error after reporting", "err", runErr, "stderr", stderr.tail(5))
	}
	if !slices.Equal(rep.URLs, d.writeURLs) {
		logger.Warn("load generator reports other URLs than it was given", "got", rep.URLs, "want", d.writeURLs)
	}
	logger.Info("load done",
		"acked_samples_per_second", rep.AckedSamplesPerSecond,
		"server_samples_per_cpu_second", rep.ServerSamplesPerCPUSecond,
		"failed_requests", rep.FailedRequests(),
		"read_back_complete", rep.ReadBackComplete,
		"other_processes_cpu_seconds", others)
	return rep, others, nil
}

// runAfterLoad calls f every second from when the measured load should be
// over until done is closed. A failure is logged: the read-back shows
// whether the data became searchable.
func runAfterLoad(ctx context.Context, done <-chan struct{}, after time.Duration, f func(context.Context) error, logger *slog.Logger) {
	t := time.NewTimer(after)
	defer t.Stop()
	select {
	case <-done:
		return
	case <-ctx.Done():
		return
	case <-t.C:
	}
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		if err := f(ctx); err != nil && ctx.Err() == nil {
			logger.Warn("after-load call", "err", err)
		}
		select {
		case <-done:
			return
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}
