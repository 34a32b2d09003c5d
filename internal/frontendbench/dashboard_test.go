package frontendbench

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// panels is the dashboard: ten range queries over the generated node-like
// counters, the kinds a host overview dashboard holds. Rates and increases
// use a 1h window, what Grafana's $__rate_interval is at a 1h step.
var panels = []struct{ title, expr string }{
	{"rate by instance", `sum by (instance) (rate(node_metric_00_total{job="node"}[1h]))`},
	{"max by instance", `max by (instance) (rate(node_metric_01_total{job="node"}[1h]))`},
	{"avg", `avg(rate(node_metric_02_total{job="node"}[1h]))`},
	{"topk", `topk(5, rate(node_metric_03_total{job="node"}[1h]))`},
	{"count", `count by (job) (node_metric_04_total{job="node"})`},
	{"increase 1h by instance", `sum by (instance) (increase(node_metric_05_total{job="node"}[1h]))`},
	{"quantile", `quantile(0.9, rate(node_metric_06_total{job="node"}[1h]))`},
	{"single series", `rate(node_metric_07_total{instance="host-00001",job="node"}[1h])`},
	{"regex __name__", `count by (__name__) ({__name__=~"node_metric_1[0-9]_total",job="node"})`},
	{"ratio", `sum(rate(node_metric_08_total{job="node"}[1h])) / sum(rate(node_metric_09_total{job="node"}[1h]))`},
}

// answer is one panel's answer: its latency, the results cache header of a
// frontend, and the result matrix.
type answer struct {
	latency time.Duration
	cache   string
	series  map[string][]point // by the series' labels, printed sorted
}

type point struct {
	t int64 // milliseconds
	v float64
}

// load requests every panel at once, as Grafana does on opening a
// dashboard, and returns the answers in panel order and the time until the
// last one arrived.
func load(ctx context.Context, baseURL string, start, end time.Time, step time.Duration) ([]answer, time.Duration, error) {
	answers := make([]answer, len(panels))
	errs := make([]error, len(panels))
	var wg sync.WaitGroup
	t0 := time.Now()
	for i, p := range panels {
		wg.Go(func() {
			answers[i], errs[i] = queryRange(ctx, baseURL, p.expr, start, end, step)
			if errs[i] != nil {
				errs[i] = fmt.Errorf("panel %q: %w", p.title, errs[i])
			}
		})
	}
	wg.Wait()
	total := time.Since(t0)
	for _, err := range errs {
		if err != nil {
			return nil, 0, err
		}
	}
	return answers, total, nil
}

func queryRange(ctx context.Context, baseURL, expr string, start, end time.Time, step time.Duration) (answer, error) {
	form := url.Values{
		"query": {expr},
		"start": {strconv.FormatInt(start.Unix(), 10)},
		"end":   {strconv.FormatInt(end.Unix(), 10)},
		"step":  {strconv.FormatFloat(step.Seconds(), 'f', -1, 64)},
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, baseURL+"/api/v1/query_range", strings.NewReader(form.Encode()))
	if err != nil {
		return answer{}, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	t0 := time.Now()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return answer{}, err
	}
	body, err := io.ReadAll(resp.Body)
	latency := time.Since(t0)
	_ = resp.Body.Close()
	if err != nil {
		return answer{}, err
	}
	if resp.StatusCode != http.StatusOK {
		return answer{}, fmt.Errorf("status %d: %.500s", resp.StatusCode, body)
	}
	a := answer{latency: latency, cache: resp.Header.Get("X-Strata-Results-Cache")}
	a.series, err = parseMatrix(body)
	return a, err
}

func parseMatrix(body []byte) (map[string][]point, error) {
	var env struct {
		Status string `json:"status"`
		Data   struct {
			ResultType string `json:"resultType"`
			Result     []struct {
				Metric map[string]string `json:"metric"`
				Values [][2]any          `json:"values"`
			} `json:"result"`
		} `json:"data"`
		Warnings []string `json:"warnings"`
	}
	if err := json.Unmarshal(body, &env); err != nil {
		return nil, fmt.Errorf("decode answer: %w", err)
	}
	if env.Status != "success" || env.Data.ResultType != "matrix" {
		return nil, fmt.Errorf("answer is %s %s: %.500s", env.Status, env.Data.ResultType, body)
	}
	if len(env.Warnings) > 0 {
		return nil, fmt.Errorf("answer has warnings: %v", env.Warnings)
	}
	out := make(map[string][]point, len(env.Data.Result))
	for _, s := range env.Data.Result {
		names := make([]string, 0, len(s.Metric))
		for n := range s.Metric {
			names = append(names, n)
		}
		slices.Sort(names)
		var key strings.Builder
		for _, n := range names {
			fmt.Fprintf(&key, "%s=%q,", n, s.Metric[n])
		}
		pts := make([]point, 0, len(s.Values))
		for _, v := range s.Values {
			ts, ok1 := v[0].(float64)
			vs, ok2 := v[1].(string)
			if !ok1 || !ok2 {
				return nil, fmt.Errorf("malformed point %v", v)
			}
			f, err := strconv.ParseFloat(vs, 64)
			if err != nil {
				return nil, fmt.Errorf("point value %q: %w", vs, err)
			}
			pts = append(pts, point{t: int64(math.Round(ts * 1000)), v: f})
		}
		out[key.String()] = pts
	}
	return out, nil
}

// diff compares got with want: the same series with the same points. Values
// are compared exactly, or within relTol relative difference when relTol is
// positive, counting the inexact points in inexact.
func diff(want, got map[string][]point, relTol float64, inexact *int) error {
	if len(want) != len(got) {
		return fmt.Errorf("%d series, want %d", len(got), len(want))
	}
	for key, wp := range want {
		gp, ok := got[key]
		if !ok {
			return fmt.Errorf("series {%s} missing", key)
		}
		if len(gp) != len(wp) {
			return fmt.Errorf("series {%s}: %d points, want %d", key, len(gp), len(wp))
		}
		for i := range wp {
			w, g := wp[i], gp[i]
			if w.t != g.t {
				return fmt.Errorf("series {%s} point %d at %d, want %d", key, i, g.t, w.t)
			}
			if w.v == g.v || (math.IsNaN(w.v) && math.IsNaN(g.v)) {
				continue
			}
			if relTol > 0 && !math.IsInf(w.v, 0) && math.Abs(w.v-g.v) <= relTol*math.Max(math.Abs(w.v), math.Abs(g.v)) {
				*inexact++
				continue
			}
			return fmt.Errorf("series {%s} at %d: %v, want %v", key, w.t, g.v, w.v)
		}
	}
	return nil
}
