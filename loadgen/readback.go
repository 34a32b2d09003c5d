package loadgen

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// ReadBackOptions says what ReadBack counts, where, and how long it waits.
type ReadBackOptions struct {
	// URL is the base of a Prometheus-compatible HTTP API: URL/api/v1/query is
	// queried.
	URL string
	// Client sends the queries; nil means http.DefaultClient.
	Client *http.Client
	// Header is added to every query (Authorization, a tenant header, ...).
	Header http.Header
	// MetricNames are the metric names whose samples are counted.
	MetricNames []string
	// MinTime and MaxTime, in milliseconds, are the first and the last sample
	// timestamp to count.
	MinTime, MaxTime int64
	// Want is the number of samples to wait for.
	Want int64
	// Timeout bounds the wait; Interval (1s by default) is the pause between two
	// counts; Stall (30s by default) gives up earlier when the count has not
	// changed for that long.
	Timeout, Interval, Stall time.Duration
	// Logger logs the progress; nil logs nothing.
	Logger *slog.Logger
}

// ReadBackResult is what ReadBack found.
type ReadBackResult struct {
	// Samples is the last count.
	Samples int64
	// Complete is whether Samples reached the wanted number. More than that is
	// possible: samples of requests that were answered with an error may have
	// been stored too.
	Complete bool
}

// ReadBack counts, with CountSamples, the samples the query API at o.URL holds
// for o.MetricNames between o.MinTime and o.MaxTime, again and again until the
// count reaches o.Want, stops changing for o.Stall, or o.Timeout passes. The
// error is that of the last count, if it failed.
func ReadBack(ctx context.Context, o ReadBackOptions) (ReadBackResult, error) {
	if o.Interval <= 0 {
		o.Interval = time.Second
	}
	if o.Stall <= 0 {
		o.Stall = 30 * time.Second
	}
	logger := o.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	ctx, cancel := context.WithTimeout(ctx, o.Timeout)
	defer cancel()

	var (
		res     ReadBackResult
		lastErr error
		changed = time.Now()
		tick    = time.NewTicker(o.Interval)
	)
	defer tick.Stop()
	for first := true; ; first = false {
		if !first {
			select {
			case <-ctx.Done():
				logger.Info("read-back gave up", "found", res.Samples, "want", o.Want, "reason", "timeout")
				return res, lastErr
			case <-tick.C:
			}
		}
		n, err := CountSamples(ctx, o.Client, o.Header, o.URL, o.MetricNames, o.MinTime, o.MaxTime)
		if err != nil {
			if ctx.Err() == nil {
				logger.Warn("read-back count", "err", err)
			}
			lastErr = err
			continue
		}
		lastErr = nil
		if n != res.Samples || first {
			changed = time.Now()
		}
		res = ReadBackResult{Samples: n, Complete: n >= o.Want}
		logger.Debug("read-back count", "found", n, "want", o.Want)
		if res.Complete {
			return res, nil
		}
		if time.Since(changed) >= o.Stall {
			logger.Info("read-back gave up", "found", res.Samples, "want", o.Want, "reason", "no new samples for "+o.Stall.String())
			return res, nil
		}
	}
}

// CountSamples returns the number of samples with timestamps in [minT, maxT]
// (milliseconds) of every metric in names, as the query API at baseURL sees
// them: the sum over the names of the instant query
// sum(count_over_time({__name__="NAME"}[R])) at maxT+1s, with R = maxT-minT+2s,
// so that the range covers the samples with a second to spare on either side.
func CountSamples(ctx context.Context, client *http.Client, header http.Header, baseURL string, names []string, minT, maxT int64) (int64, error) {
	if client == nil {
		client = http.DefaultClient
	}
	endpoint := strings.TrimSuffix(baseURL, "/") + "/api/v1/query"
	at := strconv.FormatFloat(float64(maxT+1000)/1000, 'f', 3, 64)
	rng := strconv.FormatInt(maxT-minT+2000, 10) + "ms"
	var total int64
	for _, name := range names {
		q := fmt.Sprintf("sum(count_over_time({__name__=%q}[%s]))", name, rng)
		n, err := instantScalar(ctx, client, header, endpoint, q, at)
		if err != nil {
			return 0, fmt.Errorf("count samples of %s: %w", name, err)
		}
		total += n
	}
	return total, nil
}

// instantScalar runs the instant query q at time at and returns the value of
// its only series as an integer, 0 for an empty result.
func instantScalar(ctx context.Context, client *http.Client, header http.Header, endpoint, q, at string) (_ int64, err error) {
	form := url.Values{"query": {q}, "time": {at}}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, strings.NewReader(form.Encode()))
	if err != nil {
		return 0, err
	}
	for k, vs := range header {
		req.Header[k] = vs
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := client.Do(req)
	if err != nil {
		return 0, err
	}
	defer func() {
		_, _ = io.Copy(io.Discard, resp.Body)
		err = errors.Join(err, resp.Body.Close())
	}()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return 0, err
	}
	var r struct {
		Status string `json:"status"`
		Error  string `json:"error"`
		Data   struct {
			ResultType string `json:"resultType"`
			Result     []struct {
				Value []json.RawMessage `json:"value"`
			} `json:"result"`
		} `json:"data"`
	}
	if err := json.Unmarshal(body, &r); err != nil {
		return 0, fmt.Errorf("%s: decode response: %w: %.200s", resp.Status, err, body)
	}
	if resp.StatusCode != http.StatusOK || r.Status != "success" {
		return 0, fmt.Errorf("%s: %s", resp.Status, r.Error)
	}
	if r.Data.ResultType != "vector" {
		return 0, fmt.Errorf("result type %q, want vector", r.Data.ResultType)
	}
	switch len(r.Data.Result) {
	case 0:
		return 0, nil
	case 1:
	default:
		return 0, fmt.Errorf("%d series, want 1", len(r.Data.Result))
	}
	v := r.Data.Result[0].Value
	var s string
	if len(v) != 2 || json.Unmarshal(v[1], &s) != nil {
		return 0, fmt.Errorf("value %s is not [time, \"number\"]", r.Data.Result[0].Value)
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return 0, fmt.Errorf("value: %w", err)
	}
	return int64(f), nil
}
