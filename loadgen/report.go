package loadgen

import (
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"time"
)

// Report is the outcome of a run. Its JSON form is a contract: other tools parse
// it by these keys. "Measured window" numbers count requests that ended in the
// window; "whole run" ones include the warm-up and the requests that were in
// flight when the window ended.
type Report struct {
	Protocol              string   `json:"protocol"`
	URLs                  []string `json:"urls"`
	Series                int      `json:"series"`
	BatchSize             int      `json:"batch_size"`
	Concurrency           int      `json:"concurrency"` // senders really used
	Tenants               int      `json:"tenants"`
	ScrapeIntervalSeconds float64  `json:"scrape_interval_seconds"`
	WarmupSeconds         float64  `json:"warmup_seconds"`
	// DurationSeconds is the length of the measured window, shorter than
	// configured when the run was interrupted.
	DurationSeconds float64 `json:"duration_seconds"`
	// Rounds is the number of rounds the slowest sender completed.
	Rounds int `json:"rounds"`
	// FirstTimestampMs and LastTimestampMs are the oldest and the newest
	// acknowledged sample's timestamps (whole run); 0 when none was.
	FirstTimestampMs int64 `json:"first_timestamp_ms"`
	LastTimestampMs  int64 `json:"last_timestamp_ms"`
	// AckedSamples are acknowledged in the measured window, AckedSamplesTotal in
	// the whole run.
	AckedSamples          int64   `json:"acked_samples"`
	AckedSamplesTotal     int64   `json:"acked_samples_total"`
	AckedSamplesPerSecond float64 `json:"acked_samples_per_second"`
	// Requests and latencies are of the measured window, failed ones included.
	Requests          int64   `json:"requests"`
	LatencyP50Seconds float64 `json:"latency_p50_seconds"`
	LatencyP99Seconds float64 `json:"latency_p99_seconds"`
	// Errors counts the failed requests of the whole run by HTTP status code, or
	// "transport" for requests without a response; FailedSamples their samples.
	Errors        map[string]int64 `json:"errors"`
	FailedSamples int64            `json:"failed_samples"`
	// ErrorMessages are the first few failures, as received.
	ErrorMessages []string `json:"error_messages"`
	// WireBytesPerSample is the compressed request bytes per sample sent in the
	// measured window.
	WireBytesPerSample float64 `json:"wire_bytes_per_sample"`
	// ClientCPUSeconds is the CPU time of this process in the measured window.
	ClientCPUSeconds float64 `json:"client_cpu_seconds"`
	// ServerCPUSeconds is the CPU time of the measured server processes in the
	// measured window, ServerRSSBytes their resident memory at its end; both 0
	// without server processes.
	ServerCPUSeconds          float64 `json:"server_cpu_seconds"`
	ServerRSSBytes            int64   `json:"server_rss_bytes"`
	ServerSamplesPerCPUSecond float64 `json:"server_samples_per_cpu_second"`
	// ActiveSeries is the number of series at any time; SeriesCreated counts
	// the churned-away ones too.
	ActiveSeries  int64 `json:"active_series"`
	SeriesCreated int64 `json:"series_created"`
	// ReadBackSamples is the number of samples the query API found, -1 without
	// a read-back; ReadBackComplete whether that is at least AckedSamplesTotal.
	ReadBackSamples  int64 `json:"read_back_samples"`
	ReadBackComplete bool  `json:"read_back_complete"`
}

// WriteJSON writes the report as one JSON object on one line.
func (r *Report) WriteJSON(w io.Writer) error {
	return json.NewEncoder(w).Encode(r)
}

// WriteText writes the report for people.
func (r *Report) WriteText(w io.Writer) error {
	var b strings.Builder
	tenants := "1 tenant"
	if r.Tenants > 1 {
		tenants = fmt.Sprintf("%d tenants", r.Tenants)
	}
	fmt.Fprintf(&b, "%s to %s: %d series in batches of %d, %d senders, %s, one sample per series every %s\n",
		r.Protocol, strings.Join(r.URLs, ", "), r.Series, r.BatchSize, r.Concurrency, tenants, seconds(r.ScrapeIntervalSeconds))
	fmt.Fprintf(&b, "measured   %s after %s of warm-up; %d rounds by the slowest sender\n",
		seconds(r.DurationSeconds), seconds(r.WarmupSeconds), r.Rounds)
	fmt.Fprintf(&b, "acked      %.0f samples/s (%d samples in %d requests; %d in the whole run)\n",
		r.AckedSamplesPerSecond, r.AckedSamples, r.Requests, r.AckedSamplesTotal)
	fmt.Fprintf(&b, "latency    p50 %s, p99 %s\n", seconds(r.LatencyP50Seconds), seconds(r.LatencyP99Seconds))
	if len(r.Errors) == 0 {
		fmt.Fprintf(&b, "errors     none\n")
	} else {
		var parts []string
		for _, k := range slices.Sorted(maps.Keys(r.Errors)) {
			parts = append(parts, fmt.Sprintf("%s: %d", k, r.Errors[k]))
		}
		fmt.Fprintf(&b, "errors     %s failed requests (%d samples)\n", strings.Join(parts, ", "), r.FailedSamples)
		for _, m := range r.ErrorMessages {
			fmt.Fprintf(&b, "           %s\n", m)
		}
	}
	fmt.Fprintf(&b, "wire       %.2f bytes/sample\n", r.WireBytesPerSample)
	fmt.Fprintf(&b, "client     %.2f CPU seconds\n", r.ClientCPUSeconds)
	if r.ServerCPUSeconds > 0 || r.ServerRSSBytes > 0 {
		fmt.Fprintf(&b, "server     %.2f CPU seconds, %.0f samples per CPU second, %.1f MiB resident\n",
			r.ServerCPUSeconds, r.ServerSamplesPerCPUSecond, float64(r.ServerRSSBytes)/(1<<20))
	}
	if r.SeriesCreated > r.ActiveSeries {
		fmt.Fprintf(&b, "churn      %d series created, %d active\n", r.SeriesCreated, r.ActiveSeries)
	}
	if r.ReadBackSamples >= 0 {
		state := "INCOMPLETE"
		if r.ReadBackComplete {
			state = "complete"
		}
		fmt.Fprintf(&b, "read-back  %d of %d acknowledged samples found: %s\n", r.ReadBackSamples, r.AckedSamplesTotal, state)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// seconds formats s seconds as a rounded duration.
func seconds(s float64) string {
	d := time.Duration(s * float64(time.Second))
	switch {
	case d >= time.Second:
		return d.Round(10 * time.Millisecond).String()
	case d >= time.Millisecond:
		return d.Round(10 * time.Microsecond).String()
	default:
		return d.String()
	}
}
