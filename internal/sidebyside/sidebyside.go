package sidebyside

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"math"
	"net/http"
	"os"
	"os/exec"
	"slices"
	"strings"
	"time"
)

// System names, in the order they run.
const (
	StrataRF1       = "strata-rf1"
	StrataRF3       = "strata-rf3"
	Prometheus      = "prometheus"
	VictoriaMetrics = "victoriametrics"
)

// Systems returns the names of every system the harness can run, in the order
// it runs them.
func Systems() []string {
	return []string{StrataRF1, StrataRF3, Prometheus, VictoriaMetrics}
}

// Load is what the load generator sends to every system.
type Load struct {
	// Series is the number of distinct series.
	Series int
	// BatchSize is the number of samples in one remote-write request.
	BatchSize int
	// Concurrency is the number of senders with a request in flight each.
	Concurrency int
	// Warmup is sent first and not measured.
	Warmup time.Duration
	// Duration is the measured time after the warm-up.
	Duration time.Duration
}

// DefaultLoad is the load of `make bench`.
func DefaultLoad() Load {
	return Load{Series: 100_000, BatchSize: 2000, Concurrency: 4, Warmup: 15 * time.Second, Duration: 60 * time.Second}
}

// Validate reports a load that cannot be run.
func (l Load) Validate() error {
	switch {
	case l.Series < 1:
		return fmt.Errorf("series must be at least 1, got %d", l.Series)
	case l.BatchSize < 1:
		return fmt.Errorf("batch size must be at least 1, got %d", l.BatchSize)
	case l.Concurrency < 1:
		return fmt.Errorf("concurrency must be at least 1, got %d", l.Concurrency)
	case l.Duration <= 0:
		return fmt.Errorf("duration must be positive, got %s", l.Duration)
	case l.Warmup < 0:
		return fmt.Errorf("warm-up must not be negative, got %s", l.Warmup)
	}
	return nil
}

// Config is one run of the harness.
type Config struct {
	// Strata is the strata binary: the receivers, the querier and the load
	// generator (`strata tools bench write`).
	Strata string
	// Prometheus and VictoriaMetrics are the peers' binaries, as paths or
	// names looked up in PATH.
	Prometheus      string
	VictoriaMetrics string
	// Systems are the systems to run, a subset of Systems(); empty runs all.
	Systems []string
	// Load is sent to every system.
	Load Load
	// TempDir holds each system's data while it runs; empty is os.TempDir().
	TempDir string
	// Logger receives progress; nil discards it.
	Logger *slog.Logger
}

// Validate reports a configuration that cannot be run.
func (c Config) Validate() error {
	if err := c.Load.Validate(); err != nil {
		return err
	}
	if c.Strata == "" {
		return errors.New("no strata binary given")
	}
	for _, s := range c.Systems {
		if !slices.Contains(Systems(), s) {
			return fmt.Errorf("unknown system %q: pick from %s", s, strings.Join(Systems(), ", "))
		}
	}
	return nil
}

// Result is what one system did under the load.
type Result struct {
	// System is the system's name.
	System string
	// Err is why the system could not be measured: a missing binary, a server
	// that did not start, a load generator that printed no report. Load is
	// nil then.
	Err error
	// Load is the load generator's report.
	Load *LoadReport
	// OtherCPUSeconds is the CPU time that processes other than the system's,
	// the load generator and the harness used during the measured duration;
	// NaN when unknown. More than a few percent of the machine makes the
	// row unreliable.
	OtherCPUSeconds float64
}

// Report is a whole run.
type Report struct {
	// Start is when the run started.
	Start time.Time
	// Env describes the machine and the binaries.
	Env Environment
	// Load is what was sent to every system.
	Load Load
	// Results has one entry per system run, in the order they ran.
	Results []Result
}

// Failed reports whether any system could not be measured.
func (r *Report) Failed() bool {
	for _, res := range r.Results {
		if res.Err != nil {
			return true
		}
	}
	return false
}

// result returns the measured report of the named system, or nil.
func (r *Report) result(system string) *LoadReport {
	for _, res := range r.Results {
		if res.System == system && res.Err == nil {
			return res.Load
		}
	}
	return nil
}

// Time bounds of every step, so that a stuck system cannot stall the run.
const (
	startTimeout = time.Minute
	stopGrace    = 15 * time.Second
	// startAttempts covers a port taken by another process between picking
	// it and the server binding it.
	startAttempts = 3
	// readBackSlack bounds what the load generator does besides sending:
	// connecting, measuring and reading everything back.
	readBackSlack = 3 * time.Minute
)

// Run runs every configured system in turn, each alone, and reports them. A
// system that fails is reported in its Result and the others still run. The
// error is for a configuration that cannot run at all (the report is nil
// then), or for a run cut short by ctx (the report holds what was done).
func Run(ctx context.Context, cfg Config) (*Report, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if len(cfg.Systems) == 0 {
		cfg.Systems = Systems()
	}
	h := &harness{
		cfg:    cfg,
		logger: cfg.Logger,
		client: &http.Client{Timeout: time.Minute},
	}
	defer h.client.CloseIdleConnections()

	rep := &Report{
		Start: time.Now().UTC(),
		Env:   environment(ctx, cfg),
		Load:  cfg.Load,
	}
	for _, s := range systems() {
		if !slices.Contains(cfg.Systems, s.name) {
			continue
		}
		res := h.run(ctx, s)
		if res.Err != nil {
			h.logger.Error("system failed", "system", s.name, "err", res.Err)
		}
		rep.Results = append(rep.Results, res)
	}
	return rep, ctx.Err()
}

// harness holds what every system's run shares.
type harness struct {
	cfg    Config
	logger *slog.Logger
	client *http.Client
}

// system is one storage under test.
type system struct {
	name string
	// deploy starts the system with its data under dir, recording every
	// process it starts in d as soon as it started, and returns once the
	// system accepts writes and answers queries.
	deploy func(ctx context.Context, h *harness, dir string, d *deployment) error
}

// deployment is a running system.
type deployment struct {
	writeURLs   []string
	readBackURL string
	// servers are measured: the load generator sums their CPU and RSS.
	servers []*process
	// helpers are started for the run but not measured: strata's querier.
	helpers []*process
	// afterLoad, if set, is called repeatedly once the measured load is
	// over and until the generator ends, to make written data searchable.
	afterLoad func(ctx context.Context) error
}

// stop stops the helpers, then the servers, each within stopGrace.
func (d *deployment) stop() error {
	var errs []error
	for _, p := range slices.Concat(d.helpers, d.servers) {
		if err := p.stop(stopGrace); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// run deploys s in a fresh directory, loads it, stops it and removes its data.
func (h *harness) run(ctx context.Context, s system) Result {
	res := Result{System: s.name, OtherCPUSeconds: math.NaN()}
	for attempt := 1; ; attempt++ {
		logger := h.logger.With("system", s.name)
		logger.Info("starting", "attempt", attempt)
		started, load, others, err := h.runOnce(ctx, s, logger)
		if err == nil {
			res.Load, res.OtherCPUSeconds = load, others
			return res
		}
		missing := errors.Is(err, exec.ErrNotFound) || errors.Is(err, fs.ErrNotExist)
		if started || missing || attempt == startAttempts || ctx.Err() != nil {
			res.Err = err
			return res
		}
		logger.Warn("start failed, retrying with new ports", "err", err)
	}
}

// runOnce is one attempt of run; started reports whether the system got as
// far as receiving load, after which a failure is not retried.
func (h *harness) runOnce(ctx context.Context, s system, logger *slog.Logger) (started bool, _ *LoadReport, others float64, err error) {
	dir, err := os.MkdirTemp(h.cfg.TempDir, "sidebyside-"+s.name+"-")
	if err != nil {
		return false, nil, 0, fmt.Errorf("create data directory: %w", err)
	}
	d := &deployment{}
	defer func() {
		if stopErr := d.stop(); stopErr != nil {
			logger.Warn("stop", "err", stopErr)
		}
		if rmErr := os.RemoveAll(dir); rmErr != nil {
			err = errors.Join(err, fmt.Errorf("remove data: %w", rmErr))
		}
		logger.Info("stopped, data removed")
	}()

	startedAt := time.Now()
	if err := s.deploy(ctx, h, dir, d); err != nil {
		for _, p := range slices.Concat(d.servers, d.helpers) {
			err = fmt.Errorf("%w\n  last output of %s:\n%s", err, p.name, p.out.tail(15))
		}
		return false, nil, 0, fmt.Errorf("deploy: %w", err)
	}
	logger.Info("ready, sending load", "took", time.Since(startedAt).Round(time.Millisecond), "urls", d.writeURLs)
	load, others, err := h.generate(ctx, d, logger)
	return true, load, others, err
}
