package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/http"
	"sort"
	"strconv"
	"time"

	"github.com/golang/snappy"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/prometheus/prompb"
)

// selfScraper collects the process' own metrics every interval, as a scrape of
// its /metrics would, and remote-writes them to url, so that a new installation
// has data to look at from the first minute.
type selfScraper struct {
	gatherer prometheus.Gatherer
	url      string
	job      string
	instance string
	interval time.Duration
	ready    func() bool // scrapes are skipped until it reports true
	client   *http.Client
	logger   *slog.Logger
}

func (s *selfScraper) run(ctx context.Context) error {
	t := time.NewTicker(s.interval)
	defer t.Stop()
	for {
		if s.ready == nil || s.ready() {
			if err := s.scrapeOnce(ctx, time.Now()); err != nil && ctx.Err() == nil {
				s.logger.Debug("self-scrape", "err", err)
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

func (s *selfScraper) scrapeOnce(ctx context.Context, now time.Time) error {
	mfs, err := s.gatherer.Gather()
	if err != nil {
		return fmt.Errorf("gather: %w", err)
	}
	series := familiesToSeries(mfs, now.UnixMilli(), s.job, s.instance)
	raw, err := (&prompb.WriteRequest{Timeseries: series}).Marshal()
	if err != nil {
		return fmt.Errorf("encode: %w", err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.url, bytes.NewReader(snappy.Encode(nil, raw)))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/x-protobuf")
	req.Header.Set("Content-Encoding", "snappy")
	req.Header.Set("X-Prometheus-Remote-Write-Version", "0.1.0")
	resp, err := s.client.Do(req)
	if err != nil {
		return fmt.Errorf("remote write: %w", err)
	}
	defer func() { _ = resp.Body.Close() }()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1024))
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("remote write: %s: %s", resp.Status, body)
	}
	return nil
}

// familiesToSeries turns gathered metric families into remote-write series the
// way a scrape would store them: histograms and summaries as their _bucket,
// _sum, _count and quantile series, every series with job and instance labels.
func familiesToSeries(mfs []*dto.MetricFamily, ts int64, job, instance string) []prompb.TimeSeries {
	var out []prompb.TimeSeries
	add := func(name string, m *dto.Metric, v float64, extra ...string) {
		ls := make([]prompb.Label, 0, len(m.GetLabel())+3+len(extra)/2)
		ls = append(ls, prompb.Label{Name: "__name__", Value: name}, prompb.Label{Name: "instance", Value: instance}, prompb.Label{Name: "job", Value: job})
		for _, l := range m.GetLabel() {
			if l.GetName() == "job" || l.GetName() == "instance" {
				continue // the target's labels win, as with honor_labels: false
			}
			ls = append(ls, prompb.Label{Name: l.GetName(), Value: l.GetValue()})
		}
		for i := 0; i+1 < len(extra); i += 2 {
			ls = append(ls, prompb.Label{Name: extra[i], Value: extra[i+1]})
		}
		sort.Slice(ls, func(i, j int) bool { return ls[i].Name < ls[j].Name })
		out = append(out, prompb.TimeSeries{Labels: ls, Samples: []prompb.Sample{{Value: v, Timestamp: ts}}})
	}
	for _, mf := range mfs {
		name := mf.GetName()
		for _, m := range mf.GetMetric() {
			switch mf.GetType() {
			case dto.MetricType_COUNTER:
				add(name, m, m.GetCounter().GetValue())
			case dto.MetricType_GAUGE:
				add(name, m, m.GetGauge().GetValue())
			case dto.MetricType_UNTYPED:
				add(name, m, m.GetUntyped().GetValue())
			case dto.MetricType_SUMMARY:
				sm := m.GetSummary()
				for _, q := range sm.GetQuantile() {
					add(name, m, q.GetValue(), "quantile", formatFloat(q.GetQuantile()))
				}
				add(name+"_sum", m, sm.GetSampleSum())
				add(name+"_count", m, float64(sm.GetSampleCount()))
			case dto.MetricType_HISTOGRAM, dto.MetricType_GAUGE_HISTOGRAM:
				h := m.GetHistogram()
				infSeen := false
				for _, b := range h.GetBucket() {
					if math.IsInf(b.GetUpperBound(), 1) {
						infSeen = true
					}
					add(name+"_bucket", m, float64(b.GetCumulativeCount()), "le", formatFloat(b.GetUpperBound()))
				}
				if !infSeen {
					add(name+"_bucket", m, float64(h.GetSampleCount()), "le", "+Inf")
				}
				add(name+"_sum", m, h.GetSampleSum())
				add(name+"_count", m, float64(h.GetSampleCount()))
			}
		}
	}
	return out
}

func formatFloat(f float64) string {
	if math.IsInf(f, 1) {
		return "+Inf"
	}
	return strconv.FormatFloat(f, 'g', -1, 64)
}
