package loadgen

import (
	"context"
	"log/slog"
	"maps"
	"math"
	"net/http"
	"sync"
	"time"
)

// Run sends the load of cfg: a warm-up, then the measured window, then, with
// cfg.ReadBackURL, a read-back of what was stored. It returns when the window
// ended (or ctx was cancelled, which ends the load early and skips the
// read-back) and every request in flight was answered. Failed requests are
// counted in the report, not returned as errors; an error means the load could
// not run.
func Run(ctx context.Context, cfg Config, logger *slog.Logger) (*Report, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	w, err := NewWorkload(cfg.WorkloadConfig)
	if err != nil {
		return nil, err
	}
	batches := w.Batches()
	conc := min(cfg.Concurrency, len(batches))
	if conc < cfg.Concurrency {
		logger.Warn("fewer batches than senders: using one sender per batch", "batches", len(batches), "senders", conc)
	}

	var client *http.Client
	if cfg.Client != nil {
		c := *cfg.Client
		c.Timeout = cfg.RequestTimeout
		client = &c
	} else {
		client = NewClient(nil, conc, cfg.RequestTimeout)
		defer client.CloseIdleConnections()
	}
	sh := &shared{
		client: client,
		stop:   make(chan struct{}),
		prog:   newProgress(conc, cfg.ScrapeInterval),
		rate:   cfg.Rate / float64(conc),
	}
	byTenant := map[string]http.Header{}
	senders := make([]*sender, conc)
	for i := range senders {
		var mine []*Batch
		var hdrs []http.Header
		for j := i; j < len(batches); j += conc {
			b := batches[j]
			h, ok := byTenant[b.Tenant()]
			if !ok {
				h = requestHeader(&cfg, b.Tenant())
				byTenant[b.Tenant()] = h
			}
			mine = append(mine, b)
			hdrs = append(hdrs, h)
		}
		s, err := newSender(i, sh, cfg.URLs[i%len(cfg.URLs)], mine, hdrs)
		if err != nil {
			return nil, err
		}
		senders[i] = s
	}
	// Fail now, not after the run, if a server process cannot be measured.
	if _, err := serverCPU(cfg.PIDs); err != nil {
		return nil, err
	}

	logger.Info("starting load", "protocol", cfg.Protocol, "series", cfg.Series, "batches", len(batches),
		"senders", conc, "warmup", cfg.Warmup, "duration", cfg.Duration)
	var wg sync.WaitGroup
	for _, s := range senders {
		wg.Go(s.run)
	}

	var (
		start, end  time.Time
		cpu0, cpu1  snapshot
		interrupted = !sleep(ctx, cfg.Warmup)
	)
	if !interrupted {
		start, cpu0 = time.Now(), takeSnapshot(cfg.PIDs, logger)
		sh.phase.Store(phaseMeasure)
		logger.Info("warm-up done, measuring", "rounds", sh.prog.min())
		interrupted = !sleep(ctx, cfg.Duration)
		end = time.Now()
		sh.phase.Store(phaseDone)
		cpu1 = takeSnapshot(cfg.PIDs, logger)
	} else {
		// Interrupted in the warm-up: no measured window.
		start = time.Now()
		end = start
	}
	if interrupted {
		logger.Info("interrupted: stopping the load")
	}
	close(sh.stop)
	sh.prog.stop()
	wg.Wait()

	rep := newReport(&cfg, conc, senders)
	rep.Rounds = sh.prog.min()
	rep.setWindow(end.Sub(start), cpu0, cpu1, len(cfg.PIDs) > 0)
	rep.Errors = maps.Clone(sh.errs.counts)
	if rep.Errors == nil {
		rep.Errors = map[string]int64{}
	}
	rep.ErrorMessages = append([]string{}, sh.errs.messages...)
	rep.SeriesCreated = w.SeriesCreated()

	if cfg.ReadBackURL != "" && !interrupted && ctx.Err() == nil {
		res, err := ReadBack(ctx, ReadBackOptions{
			URL:         cfg.ReadBackURL,
			Client:      client,
			Header:      cfg.Header,
			MetricNames: w.MetricNames(),
			MinTime:     rep.FirstTimestampMs,
			MaxTime:     rep.LastTimestampMs,
			Want:        rep.AckedSamplesTotal,
			Timeout:     cfg.ReadBackTimeout,
			Logger:      logger,
		})
		if err != nil {
			logger.Error("read-back", "err", err)
		}
		rep.ReadBackSamples, rep.ReadBackComplete = res.Samples, res.Complete
	}
	return rep, nil
}

// sleep waits for d; false if ctx was done first.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// requestHeader returns the headers of the write requests of tenant.
func requestHeader(cfg *Config, tenant string) http.Header {
	h := http.Header{}
	for k, vs := range cfg.Header {
		h[k] = append([]string(nil), vs...)
	}
	h.Set("Content-Encoding", "snappy")
	h.Set("User-Agent", userAgent)
	if cfg.Protocol == ProtocolRW2 {
		h.Set("Content-Type", contentTypeRW2)
		h.Set("X-Prometheus-Remote-Write-Version", versionRW2)
	} else {
		h.Set("Content-Type", contentTypeRW1)
		h.Set("X-Prometheus-Remote-Write-Version", versionRW1)
	}
	if tenant != "" {
		h.Set(cfg.TenantHeader, tenant)
	}
	return h
}

// snapshot is the CPU time of this process and of the servers at a moment.
type snapshot struct {
	client, server time.Duration
	serverOK       bool
	rss            int64
}

func takeSnapshot(pids []int, logger *slog.Logger) snapshot {
	var s snapshot
	var err error
	if s.client, err = selfCPU(); err != nil {
		logger.Warn("measure client CPU", "err", err)
	}
	if len(pids) == 0 {
		return s
	}
	if s.server, err = serverCPU(pids); err != nil {
		logger.Warn("measure server CPU", "err", err)
		return s
	}
	if s.rss, err = serverRSS(pids); err != nil {
		logger.Warn("measure server memory", "err", err)
		return s
	}
	s.serverOK = true
	return s
}

// newReport sums up the senders' numbers.
func newReport(cfg *Config, conc int, senders []*sender) *Report {
	rep := &Report{
		Protocol:              string(cfg.Protocol),
		URLs:                  append([]string{}, cfg.URLs...),
		Series:                cfg.Series,
		BatchSize:             cfg.BatchSize,
		Concurrency:           conc,
		Tenants:               cfg.Tenants,
		ScrapeIntervalSeconds: cfg.ScrapeInterval.Seconds(),
		WarmupSeconds:         cfg.Warmup.Seconds(),
		ActiveSeries:          int64(cfg.Series),
		ReadBackSamples:       -1,
	}
	var (
		lat        histogram
		wireBytes  int64
		sent       int64
		minT, maxT = int64(math.MaxInt64), int64(math.MinInt64)
	)
	for _, s := range senders {
		rep.AckedSamples += s.window.acked
		rep.AckedSamplesTotal += s.ackedTotal
		rep.Requests += s.window.requests
		rep.FailedSamples += s.failedSamples
		wireBytes += s.window.bytes
		sent += s.window.samples
		lat.merge(&s.window.latency)
		minT, maxT = min(minT, s.minT), max(maxT, s.maxT)
	}
	if rep.AckedSamplesTotal > 0 {
		rep.FirstTimestampMs, rep.LastTimestampMs = minT, maxT
	}
	if sent > 0 {
		rep.WireBytesPerSample = float64(wireBytes) / float64(sent)
	}
	rep.LatencyP50Seconds = lat.quantile(0.5).Seconds()
	rep.LatencyP99Seconds = lat.quantile(0.99).Seconds()
	return rep
}

// setWindow fills in the numbers that depend on the measured window's length
// and the CPU snapshots at its ends.
func (r *Report) setWindow(d time.Duration, cpu0, cpu1 snapshot, servers bool) {
	r.DurationSeconds = d.Seconds()
	if d > 0 {
		r.AckedSamplesPerSecond = float64(r.AckedSamples) / d.Seconds()
	}
	r.ClientCPUSeconds = (cpu1.client - cpu0.client).Seconds()
	if servers && cpu0.serverOK && cpu1.serverOK {
		r.ServerCPUSeconds = (cpu1.server - cpu0.server).Seconds()
		r.ServerRSSBytes = cpu1.rss
		if r.ServerCPUSeconds > 0 {
			r.ServerSamplesPerCPUSecond = float64(r.AckedSamples) / r.ServerCPUSeconds
		}
	}
}
